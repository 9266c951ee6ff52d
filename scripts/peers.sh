#!/usr/bin/env bash
# Installs the real peers the interop tests talk to, on a fresh Debian machine:
# curl, tinyproxy, squid (squid-openssl, the build that serves `https_port`: an HTTPS proxy)
# and Dante (Debian; plus the system user Dante checks SOCKS5 passwords against,
# `tethersocks`, with no shell and no home), Apache and lighttpd (Debian; the Digest
# authentication servers, started by the tests on loopback ports; the system services the
# packages bring are stopped and disabled so nothing stays on port 80), a Python venv with
# h11, websockets and aiohttp (PyPI) under target/peers-venv, and Node's ws (npm) under
# target/peers-node.
# Prints nothing but progress; exports nothing (scripts/test.sh sets TETHER_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
# The real proxies of the client's proxy tests (started by the tests, on loopback ports).
command -v tinyproxy >/dev/null || missing+=(tinyproxy)
[ -x /usr/sbin/danted ] || missing+=(dante-server)
# The real servers of the client's Digest tests: Apache's mod_auth_digest (MD5) and
# lighttpd's mod_auth (MD5 and SHA-256).
servers=()
[ -x /usr/sbin/apache2 ] || servers+=(apache2)
[ -x /usr/sbin/lighttpd ] || servers+=(lighttpd)
missing+=("${servers[@]}")
# squid-openssl, not squid: only the OpenSSL build has `https_port`. Checked by package,
# not by binary: both builds install /usr/sbin/squid.
dpkg-query -W -f='${Status}' squid-openssl 2>/dev/null | grep -q 'ok installed' ||
  missing+=(squid-openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "peers: installing ${missing[*]} from Debian"
  as_root apt-get update -qq
  # No service started by the install (squid's would listen on 3128): a policy-rc.d that
  # says no, for the install only, unless the machine has one already.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" ||
    { [ -z "$own_policy" ] || as_root rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -z "$own_policy" ] || as_root rm -f /usr/sbin/policy-rc.d
fi
# The tests start their own squid: none left running as a service, nor started at boot.
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet squid 2>/dev/null; then
  as_root systemctl disable --now squid
fi
# The tests run their own Apache and lighttpd; the services Debian may start on port 80 at
# install are not wanted (only the ones this script installed are touched).
for service in "${servers[@]}"; do
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now "$service" >/dev/null 2>&1 || true
  else
    as_root service "$service" stop >/dev/null 2>&1 || true
  fi
done

# Dante's username/password method checks the system's password database.
if ! id tethersocks >/dev/null 2>&1; then
  echo "peers: adding the system user tethersocks (SOCKS5 tests)"
  as_root useradd --system --no-create-home --shell /usr/sbin/nologin tethersocks
  echo 'tethersocks:s0cks-pass' | as_root chpasswd
fi

venv=target/peers-venv
if [ ! -x "$venv/bin/python" ]; then
  echo "peers: creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import h11, websockets, aiohttp' 2>/dev/null; then
  echo "peers: installing h11, websockets, aiohttp from PyPI"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    'h11==0.16.0' 'websockets==17.4' 'aiohttp==3.14.5'
fi

node_dir=target/peers-node
if ! command -v node >/dev/null; then
  echo "peers: installing nodejs and npm from Debian"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
if [ ! -d "$node_dir/node_modules/ws" ] || [ ! -d "$node_dir/node_modules/undici" ]; then
  echo "peers: installing ws and undici from npm"
  mkdir -p "$node_dir"
  # undici 7: the last major that runs on Node 20.
  npm install --silent --no-audit --no-fund --prefix "$node_dir" 'ws@8.23.0' 'undici@7.30.2' >/dev/null
fi
