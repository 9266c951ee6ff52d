//! Real web servers with HTTP authentication, for the client's authentication tests, each
//! started on a free loopback port with a configuration, documents and user file written by
//! the test, and stopped when dropped: Apache's `mod_auth_digest` (Digest with MD5 only; a
//! nonce lifetime to provoke `stale=true`) and lighttpd's `mod_auth` (Digest with MD5,
//! SHA-256 or both). Both are Debian packages `scripts/peers.sh` installs.
//!
//! Every server serves [`HELLO`] at `/public/hello.txt` without authentication and at
//! `/private/hello.txt` to [`DIGEST_USER`] in the realm [`DIGEST_REALM`].

use crate::daemons::{find, free_port, scratch, start};
use md5::{Digest, Md5};
use std::net::SocketAddr;
use std::path::Path;

/// The user the servers accept, and its password (RFC 2617's example user).
pub const DIGEST_USER: (&str, &str) = ("mufasa", "Circle of Life");

/// The realm of every protected location.
pub const DIGEST_REALM: &str = "tether digest";

/// The content of every `hello.txt`.
pub const HELLO: &str = "hello from behind the door\n";

/// A web server process, stopped when dropped.
pub type AuthServer = crate::daemons::Daemon;

/// Where Debian's Apache keeps its modules (loaded by absolute path, nothing else).
const APACHE_MODULES: &str = "/usr/lib/apache2/modules";

/// Writes `docs/<dir>/hello.txt` under `root` for each of `dirs`.
fn documents(root: &Path, dirs: &[&str]) {
    for dir in dirs {
        let dir = root.join("docs").join(dir);
        std::fs::create_dir_all(&dir).expect("documents");
        std::fs::write(dir.join("hello.txt"), HELLO).expect("hello.txt");
    }
}

/// Apache on a free port, Digest (MD5, `qop="auth"`) from its `mod_auth_digest`:
///
/// * `/public/hello.txt`: no authentication;
/// * `/private/hello.txt`: [`DIGEST_USER`] (a `POST` is answered 200 with the file too);
/// * `/private/echo`: [`DIGEST_USER`]; a `POST` is answered 200 with its body and
///   content type (`mod_reflector`); other methods 405;
/// * `/stale/hello.txt`: [`DIGEST_USER`], with nonces that expire after 1 s: a request
///   with an older nonce (but the right password) gets 401 with `stale=true`.
///
/// Started as root (as in a container), its worker runs as `nobody`.
pub fn apache_digest() -> Option<AuthServer> {
    let program = find("apache2")?;
    let port = free_port();
    let dir = scratch("apache", port);
    documents(&dir, &["public", "private", "stale"]);
    let (user, password) = DIGEST_USER;
    let ha1 = Md5::digest(format!("{user}:{DIGEST_REALM}:{password}"));
    std::fs::write(
        dir.join("users"),
        format!("{user}:{DIGEST_REALM}:{ha1:x}\n"),
    )
    .expect("user file");
    let root = dir.to_string_lossy();
    let modules = [
        "mpm_event",
        "authn_core",
        "authn_file",
        "authz_core",
        "authz_user",
        "auth_digest",
        // Content-Type for .txt.
        "mime",
        // 200 for a POST: its body sent back.
        "reflector",
    ]
    .iter()
    .map(|name| format!("LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so\n"))
    .collect::<String>();
    let digest = format!(
        "AuthType Digest\n  AuthName \"{DIGEST_REALM}\"\n  AuthDigestProvider file\n  \
         AuthUserFile \"{root}/users\"\n  Require valid-user\n"
    );
    let config = format!(
        "{modules}\
         ServerRoot \"{root}\"\nServerName 127.0.0.1:{port}\nListen 127.0.0.1:{port}\n\
         User nobody\nGroup nogroup\n\
         PidFile \"{root}/apache.pid\"\nErrorLog \"{root}/log\"\nLogLevel info\n\
         DefaultRuntimeDir \"{root}\"\nMutex \"file:{root}\" default\n\
         StartServers 1\nServerLimit 1\nThreadsPerChild 16\nMaxRequestWorkers 16\n\
         MinSpareThreads 1\nMaxSpareThreads 16\n\
         TypesConfig /dev/null\nAddType text/plain .txt\n\
         DocumentRoot \"{root}/docs\"\n\
         <Directory \"{root}/docs\">\n  Require all granted\n</Directory>\n\
         <Location /private/>\n  {digest}</Location>\n\
         <Location /private/echo>\n  SetHandler reflector\n</Location>\n\
         <Location /stale/>\n  {digest}  AuthDigestNonceLifetime 1\n</Location>\n"
    );
    let path = dir.join("apache.conf");
    std::fs::write(&path, config).expect("config");
    let path = path.to_string_lossy().into_owned();
    Some(start(
        &program,
        &["-f", &path, "-DFOREGROUND"],
        dir,
        SocketAddr::from(([127, 0, 0, 1], port)),
    ))
}

/// lighttpd on a free port, Digest (`qop="auth"`) from its `mod_auth` with `algorithm`:
/// `"MD5"`, `"SHA-256"`, or both as `"SHA-256|MD5"` (one `WWW-Authenticate` per algorithm,
/// in that order).
///
/// * `/public/hello.txt`: no authentication;
/// * `/private/hello.txt`: [`DIGEST_USER`]; a `POST` to it is answered 200 with the file.
pub fn lighttpd_digest(algorithm: &str) -> Option<AuthServer> {
    let program = find("lighttpd")?;
    let port = free_port();
    let dir = scratch("lighttpd", port);
    documents(&dir, &["public", "private"]);
    let (user, password) = DIGEST_USER;
    std::fs::write(dir.join("users"), format!("{user}:{password}\n")).expect("user file");
    let root = dir.to_string_lossy();
    // No server.errorlog: lighttpd logs to stderr, which goes to the log file.
    let config = format!(
        "server.bind = \"127.0.0.1\"\nserver.port = {port}\n\
         server.document-root = \"{root}/docs\"\n\
         server.modules = (\"mod_auth\", \"mod_authn_file\")\n\
         mimetype.assign = (\".txt\" => \"text/plain\")\n\
         auth.backend = \"plain\"\nauth.backend.plain.userfile = \"{root}/users\"\n\
         auth.require = (\"/private/\" => (\n  \"method\" => \"digest\",\n  \
         \"algorithm\" => \"{algorithm}\",\n  \"realm\" => \"{DIGEST_REALM}\",\n  \
         \"require\" => \"valid-user\"\n))\n"
    );
    let path = dir.join("lighttpd.conf");
    std::fs::write(&path, config).expect("config");
    let path = path.to_string_lossy().into_owned();
    Some(start(
        &program,
        &["-D", "-f", &path],
        dir,
        SocketAddr::from(([127, 0, 0, 1], port)),
    ))
}
