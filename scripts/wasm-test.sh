#!/usr/bin/env bash
# The WebAssembly package's tests in every JS runtime it supports, from a fresh machine:
# builds the test package (scripts/wasm-build.sh --test), installs the peers
# (scripts/peers.sh: curl, ws, undici) and the runtimes from the npm registry (Deno, Bun,
# workerd, under target/js-runtimes), builds the tokio demo the tests talk to, then runs
# `node --test`, the same tests under Deno and Bun, and the workerd test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/wasm-build.sh --test
scripts/peers.sh

runtimes=target/js-runtimes/node_modules
DENO=$runtimes/@deno/linux-x64-glibc/deno
BUN=$runtimes/@oven/bun-linux-x64/bin/bun
WORKERD=$runtimes/@cloudflare/workerd-linux-64/bin/workerd
if [[ ! -x $DENO || ! -x $BUN || ! -x $WORKERD ]]; then
    echo "wasm-test: installing Deno, Bun and workerd from npm (once)" >&2
    npm install --silent --no-audit --no-fund --prefix target/js-runtimes \
        @deno/linux-x64-glibc @oven/bun-linux-x64 @cloudflare/workerd-linux-64 >/dev/null
fi

cargo build --quiet -p tether-tokio --example demo
export TETHER_DEMO="${CARGO_TARGET_DIR:-$PWD/target}/debug/examples/demo"
export TETHER_WORKERD="$PWD/$WORKERD"
export TETHER_REQUIRE_PEERS=1

echo "wasm-test: node $(node --version)" >&2
node --test --test-concurrency=1 wasm/test/*.test.mjs
echo "wasm-test: $("$DENO" --version | head -1)" >&2
"$DENO" run -A wasm/test/run.mjs
echo "wasm-test: bun $("$BUN" --version)" >&2
"$BUN" wasm/test/run.mjs
