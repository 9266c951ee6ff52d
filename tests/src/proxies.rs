//! Real proxies for the client's proxy tests, each started on a free loopback port with a
//! configuration written by the test and stopped when dropped: tinyproxy (HTTP, `CONNECT`,
//! Basic authentication), squid (HTTP, and HTTPS on its `https_port`: TLS to the proxy;
//! Basic authentication against a password file) and Dante (SOCKS5, username/password
//! checked against a system user that `scripts/peers.sh` creates). All are Debian packages
//! `scripts/peers.sh` installs.

use crate::daemons::{find, free_port, scratch, spawn, start};
use std::net::SocketAddr;
use std::process::Command;

use crate::pki::Pki;

/// The Dante user (created by `scripts/peers.sh`, shell `nologin`) and its password.
pub const SOCKS_USER: (&str, &str) = ("tethersocks", "s0cks-pass");

/// The Basic credentials tinyproxy and squid are started with when asked to require them.
pub const HTTP_PROXY_USER: (&str, &str) = ("alice", "s3cret");

/// A proxy process, stopped when dropped.
pub type Proxy = crate::daemons::Daemon;

/// tinyproxy on a free port; with `auth`, it requires [`HTTP_PROXY_USER`].
pub fn tinyproxy(auth: bool) -> Option<Proxy> {
    let program = find("tinyproxy")?;
    let port = free_port();
    let dir = scratch("tinyproxy", port);
    let mut config = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 100\n\
         Allow 127.0.0.1\nDisableViaHeader Yes\n"
    );
    if auth {
        config.push_str(&format!(
            "BasicAuth {} {}\n",
            HTTP_PROXY_USER.0, HTTP_PROXY_USER.1
        ));
    }
    let path = dir.join("tinyproxy.conf");
    std::fs::write(&path, config).expect("config");
    let path = path.to_string_lossy().into_owned();
    Some(start(
        &program,
        &["-d", "-c", &path],
        dir,
        SocketAddr::from(([127, 0, 0, 1], port)),
    ))
}

/// squid on a free port, and with `tls` on a second one too (`https_port`, serving that
/// chain: an HTTPS proxy); with `auth`, it requires [`HTTP_PROXY_USER`]. It allows
/// `CONNECT` to any port and requests to loopback origins (a default squid.conf allows
/// neither: the test origins listen on loopback ports), caches nothing, and keeps all its
/// files in its scratch directory; its service name (`-n`, which names its shared memory)
/// is its own, so instances run side by side.
pub fn squid(auth: bool, tls: Option<&Pki>) -> Option<Proxy> {
    let auth = if auth {
        SquidAuth::Basic
    } else {
        SquidAuth::None
    };
    squid_with(auth, tls)
}

/// How squid authenticates its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquidAuth {
    /// Not at all.
    None,
    /// Basic, [`HTTP_PROXY_USER`] against an Apache-MD5 password file.
    Basic,
    /// Digest (MD5, `qop=auth`), [`HTTP_PROXY_USER`] against a plain password file
    /// (`digest_file_auth`), in the realm `tether-proxy`.
    Digest,
}

/// [`squid`] with Basic, Digest or no authentication.
pub fn squid_with(auth: SquidAuth, tls: Option<&Pki>) -> Option<Proxy> {
    let program = find("squid")?;
    let openssl = if auth == SquidAuth::Basic {
        Some(find("openssl")?)
    } else {
        None
    };
    let port = free_port();
    let dir = scratch("squid", port);
    // Run as root, squid drops to the `proxy` user, which writes its logs and pid file here.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("scratch dir mode");
    let at = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let mut config = format!(
        "http_port 127.0.0.1:{port}\nvisible_hostname tether-squid-{port}\n\
         pid_filename {}\naccess_log stdio:{}\ncache_log {}\ncache_store_log none\n\
         coredump_dir {}\ncache deny all\nworkers 1\nmemory_cache_shared off\n\
         pinger_enable off\nsslproxy_session_cache_size 0\nshutdown_lifetime 0 seconds\n\
         acl loopback src 127.0.0.0/8 ::1\nhttp_access deny !loopback\n",
        at("squid.pid"),
        at("access.log"),
        at("cache.log"),
        dir.display()
    );
    let tls_port = tls.map(|pki| {
        let files = pki.write(&dir, "squid");
        let tls_port = std::iter::repeat_with(free_port)
            .find(|&p| p != port)
            .expect("a second port");
        config.push_str(&format!(
            "https_port 127.0.0.1:{tls_port} tls-cert={} tls-key={}\n",
            files.chain.display(),
            files.key.display()
        ));
        tls_port
    });
    if let Some(openssl) = openssl {
        // An Apache MD5 hash (`$apr1$`), one of those basic_ncsa_auth checks.
        let (user, password) = HTTP_PROXY_USER;
        let hash = Command::new(openssl)
            .args(["passwd", "-apr1", password])
            .output()
            .expect("openssl passwd");
        assert!(hash.status.success(), "openssl passwd: {hash:?}");
        let hash = String::from_utf8(hash.stdout).expect("a hash");
        std::fs::write(dir.join("passwd"), format!("{user}:{}\n", hash.trim())).expect("passwd");
        config.push_str(&format!(
            "auth_param basic program /usr/lib/squid/basic_ncsa_auth {}\n\
             auth_param basic realm tether\nacl authed proxy_auth REQUIRED\n\
             http_access allow authed\n",
            at("passwd")
        ));
    } else if auth == SquidAuth::Digest {
        let (user, password) = HTTP_PROXY_USER;
        std::fs::write(dir.join("digest"), format!("{user}:{password}\n")).expect("digest file");
        config.push_str(&format!(
            "auth_param digest program /usr/lib/squid/digest_file_auth {}\n\
             auth_param digest realm tether-proxy\nacl authed proxy_auth REQUIRED\n\
             http_access allow authed\n",
            at("digest")
        ));
    } else {
        config.push_str("http_access allow loopback\n");
    }
    config.push_str("http_access deny all\n");
    let path = dir.join("squid.conf");
    std::fs::write(&path, config).expect("config");
    let path = path.to_string_lossy().into_owned();
    let service = format!("tether{}p{port}", std::process::id());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut proxy = spawn(
        &program,
        &["-N", "-d", "1", "-n", &service, "-f", &path],
        dir,
        addr,
    );
    proxy.shm_prefix = Some(format!("{service}-"));
    proxy.wait_for(addr, &program);
    if let Some(tls_port) = tls_port {
        let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
        proxy.wait_for(tls_addr, &program);
        proxy.tls_addr = Some(tls_addr);
    }
    Some(proxy)
}

/// Dante on a free port; with `auth`, it requires [`SOCKS_USER`], else no authentication.
pub fn dante(auth: bool) -> Option<Proxy> {
    let program = find("danted")?;
    let port = free_port();
    let dir = scratch("dante", port);
    let method = if auth { "username" } else { "none" };
    let config = format!(
        "logoutput: stderr\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
         socksmethod: {method}\nclientmethod: none\nuser.privileged: root\n\
         user.unprivileged: nobody\n\
         client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
         socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }}\n"
    );
    let path = dir.join("danted.conf");
    std::fs::write(&path, config).expect("config");
    let pid = dir.join("danted.pid").to_string_lossy().into_owned();
    let path = path.to_string_lossy().into_owned();
    Some(start(
        &program,
        &["-f", &path, "-p", &pid],
        dir,
        SocketAddr::from(([127, 0, 0, 1], port)),
    ))
}
