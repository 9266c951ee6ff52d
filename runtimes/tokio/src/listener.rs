//! What a [`Server`](crate::Server) accepts connections from: a TCP listener (bound by the
//! server or handed over by the user: port 0 in tests, systemd socket activation), or a Unix
//! domain socket.

use std::io;
use std::net::SocketAddr;
use tether_rt::ConnectionInfo;
use tokio::net::{TcpListener, TcpStream};

#[cfg(unix)]
use std::path::PathBuf;
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};

/// A listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix {
        listener: UnixListener,
        /// The socket file the server created, removed when the server stops (`None` for a
        /// listener the user bound).
        created: Option<PathBuf>,
    },
}

/// An accepted connection.
pub(crate) enum Accepted {
    Tcp(TcpStream, ConnectionInfo),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Listener {
    pub(crate) async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                let info = ConnectionInfo::new(Some(peer), stream.local_addr().ok());
                Ok(Accepted::Tcp(stream, info))
            }
            #[cfg(unix)]
            Listener::Unix { listener, .. } => {
                let (stream, _) = listener.accept().await?;
                Ok(Accepted::Unix(stream))
            }
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr(),
            #[cfg(unix)]
            Listener::Unix { .. } => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Unix domain socket has no IP address",
            )),
        }
    }

    /// Binds a Unix domain socket at `path`. A socket file left there by a server that is
    /// gone (nothing accepts on it) is replaced, as asyncio does; a live one is
    /// `AddrInUse`; any other file is left alone (the bind fails).
    #[cfg(unix)]
    pub(crate) async fn bind_unix(path: PathBuf) -> io::Result<Listener> {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if meta.file_type().is_socket() {
                match UnixStream::connect(&path).await {
                    Ok(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("a server is listening on {}", path.display()),
                        ))
                    }
                    Err(_) => std::fs::remove_file(&path)?,
                }
            }
        }
        let listener = UnixListener::bind(&path)?;
        Ok(Listener::Unix {
            listener,
            created: Some(path),
        })
    }
}

#[cfg(unix)]
impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix {
            created: Some(path),
            ..
        } = self
        {
            let _ = std::fs::remove_file(path);
        }
    }
}
