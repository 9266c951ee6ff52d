//! Real proxies for the client's proxy tests, each started on a free loopback port with a
//! configuration written by the test and stopped when dropped: tinyproxy (HTTP, `CONNECT`,
//! Basic authentication) and Dante (SOCKS5, username/password checked against a system
//! user that `scripts/peers.sh` creates). Both are Debian packages `scripts/peers.sh`
//! installs.

use crate::daemons::{find, free_port, scratch, start};
use std::net::SocketAddr;

/// The Dante user (created by `scripts/peers.sh`, shell `nologin`) and its password.
pub const SOCKS_USER: (&str, &str) = ("tethersocks", "s0cks-pass");

/// The Basic credentials tinyproxy is started with when asked to require them.
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
