//! Real proxies for the client's proxy tests, each started on a free loopback port with a
//! configuration written by the test and stopped when dropped: tinyproxy (HTTP, `CONNECT`,
//! Basic authentication) and Dante (SOCKS5, username/password checked against a system
//! user that `scripts/peers.sh` creates). Both are Debian packages `scripts/peers.sh`
//! installs.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Dante user (created by `scripts/peers.sh`, shell `nologin`) and its password.
pub const SOCKS_USER: (&str, &str) = ("tethersocks", "s0cks-pass");

/// The Basic credentials tinyproxy is started with when asked to require them.
pub const HTTP_PROXY_USER: (&str, &str) = ("alice", "s3cret");

/// A proxy process, killed when dropped.
pub struct Proxy {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Proxy {
    /// What the proxy logged so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn scratch(name: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tether-{name}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Starts `program` with `args`, logging to `dir`, and waits until `addr` accepts.
fn start(program: &Path, args: &[&str], dir: PathBuf, addr: SocketAddr) -> Proxy {
    let log = std::fs::File::create(dir.join("log")).expect("log file");
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let proxy = Proxy { child, addr, dir };
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} did not listen on {addr}: {}",
            program.display(),
            std::fs::read_to_string(proxy.dir.join("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy
}

/// Finds `program` (in `PATH` or `/usr/sbin`), or skips (fails under
/// `TETHER_REQUIRE_PEERS`).
fn find(program: &str) -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = candidates
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|path| path.is_file());
    if found.is_none() {
        assert!(
            !crate::peers_required(),
            "{program} missing: run scripts/test.sh, which installs it"
        );
        eprintln!("skipping: {program} not installed (scripts/test.sh installs it)");
    }
    found
}

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
