//! Real server processes the tests start (proxies, web servers): each on a free loopback port
//! with a configuration the test writes to a scratch directory of its own, logging there, and
//! stopped when dropped.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, stopped when dropped (its scratch directory removed).
pub struct Daemon {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where it listens for TLS (squid's `https_port`), when started with a certificate.
    pub tls_addr: Option<SocketAddr>,
    dir: PathBuf,
    /// The prefix of the shared memory segments it made, removed after it (squid makes
    /// some even as a single process, and removes them only on a clean exit).
    pub(crate) shm_prefix: Option<String>,
}

impl Daemon {
    /// What the process logged so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM first: a server that forks workers (Apache) stops them on SIGTERM, while
        // after SIGKILL they would live on, holding the port.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let asked = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && asked.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let (Some(prefix), Ok(entries)) = (&self.shm_prefix, std::fs::read_dir("/dev/shm")) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(prefix.as_str())
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub(crate) fn scratch(name: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tether-{name}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Starts `program` with `args`, its output appended to `dir/log` (where a server may write
/// its own log too), and waits until `addr` accepts.
pub(crate) fn start(program: &Path, args: &[&str], dir: PathBuf, addr: SocketAddr) -> Daemon {
    let daemon = spawn(program, args, dir, addr);
    daemon.wait_for(addr, program);
    daemon
}

/// Starts `program` with `args`, its output appended to `dir/log`, to listen on `addr`
/// (not waited for: see [`Daemon::wait_for`]).
pub(crate) fn spawn(program: &Path, args: &[&str], dir: PathBuf, addr: SocketAddr) -> Daemon {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .expect("log file");
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    Daemon {
        child,
        addr,
        tls_addr: None,
        dir,
        shm_prefix: None,
    }
}

impl Daemon {
    /// Waits until `addr` accepts (panics with the log after 10 s).
    pub(crate) fn wait_for(&self, addr: SocketAddr, program: &Path) {
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} did not listen on {addr}: {}",
                program.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Finds `program` (in `PATH` or `/usr/sbin`), or skips (fails under
/// `TETHER_REQUIRE_PEERS`).
pub(crate) fn find(program: &str) -> Option<PathBuf> {
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
