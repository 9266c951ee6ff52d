//! `futures-io` streams as `tether-rt`'s transport: [`FuturesIo`], the adapter's IO glue.

use futures_io::{AsyncRead, AsyncWrite};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A `futures-io` stream (async-net or async-std TCP, TLS, a pipe...) as
/// [`tether_rt::io::Read`] and [`tether_rt::io::Write`], the two traits the shared drivers
/// read and write through. `poll_close` is the shutdown of the write side.
#[derive(Debug)]
pub struct FuturesIo<T>(pub T);

impl<T: AsyncRead + Unpin> tether_rt::io::Read for FuturesIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> tether_rt::io::Write for FuturesIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    /// `futures-io` has no way to ask; async-io's sockets (under async-net and async-std)
    /// write vectored, and a stream that does not still writes correctly (one buffer).
    fn is_write_vectored(&self) -> bool {
        true
    }
}

/// The other way round: a transport of the shared layer (a proxy's tunnel) as a
/// `futures-io` stream, for rustls to run TLS over it.
pub(crate) struct RtIo(pub(crate) Box<dyn tether_rt::client::Io>);

impl AsyncRead for RtIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        tether_rt::io::Read::poll_read(Pin::new(&mut self.0), cx, buf)
    }
}

impl AsyncWrite for RtIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        tether_rt::io::Write::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tether_rt::io::Write::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tether_rt::io::Write::poll_shutdown(Pin::new(&mut self.0), cx)
    }
}
