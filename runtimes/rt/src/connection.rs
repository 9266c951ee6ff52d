//! The loop that serves one HTTP/1.1 connection: socket bytes into the core's
//! [`ServerConnection`], its events to the handler, the handler's response back.
//!
//! It only moves bytes and values. Every protocol decision (framing, keep-alive, limits,
//! `100 Continue`, error answers, head/idle/body deadlines) is the core's: the loop reads
//! while the core wants input, sleeps until `poll_timeout()` and calls `handle_timeout`.
//! Two rules keep a request body honest:
//!
//! * its end is recorded, never inferred: the core's `End` finishes the [`Body`], its
//!   `Error` fails it with the cause, an abort fails it with `Shutdown`, and a loop that
//!   ends any other way drops the writer, which fails it with `ConnectionLost`;
//! * for a request that expects `100 Continue`, the loop does not ask the core for body
//!   events (which is what sends the `100`) until the handler asks for the body.

use crate::body::{Body, BodyError, BodyWriter};
use crate::io::{Read, Write};
use crate::request::{ConnectionInfo, Request, RequestContext};
use crate::response::{Piece, Response, ResponseBody, StreamedBody, Upgrade};
use crate::runtime::{poll_once, BoxFuture, Guarded, MaybeSend, Runtime, TaskError, Timer};
use crate::service::{Shared, Stage};
use crate::transport::{Input, Transport};
use crate::websocket;
use bytes::Bytes;
use log::{Access, ConnectionLog, End};
use std::future::poll_fn;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tether_core::h1::{GeneratedFields, ServerConnection, ServerEvent};
use tether_core::time::Instant;

mod log;

/// The handler of the current request, polled by the connection's own task (no task per
/// request); a panic becomes a 500.
type Running = Guarded<BoxFuture<Response>>;

/// Size of a connection's read buffer.
const READ_BUFFER: usize = 16 * 1024;

/// How many bytes of a streamed response body that are ready at once are queued with the
/// head, before the loop's flush.
const READY_BUDGET: usize = 64 * 1024;

/// The request body being received.
#[derive(Default)]
struct Inbound {
    writer: Option<BodyWriter>,
    /// A piece waiting for room in the body (no more events are taken until it fits).
    held: Option<Bytes>,
    /// The request expects `100 Continue` and its handler has not asked for the body yet.
    awaiting_want: bool,
}

impl Inbound {
    /// Whether the loop may take the next event from the core.
    fn may_take_event(&mut self, conn: &ServerConnection) -> bool {
        if let Some(piece) = self.held.take() {
            self.data(piece);
            if self.held.is_some() {
                return false;
            }
        }
        if self.awaiting_want {
            let wanted = self.writer.as_ref().is_none_or(BodyWriter::is_wanted);
            // Once the response has started, the core will not send `100` any more.
            if wanted || !conn.is_waiting_for_continue() {
                self.awaiting_want = false;
            }
        }
        !self.awaiting_want
    }

    fn data(&mut self, data: Bytes) {
        if let Some(writer) = &self.writer {
            if writer.has_room() {
                writer.push(data);
            } else {
                self.held = Some(data);
            }
        }
    }

    fn finish(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.finish();
        }
    }

    fn fail(&mut self, error: BodyError) {
        self.held = None;
        if let Some(writer) = self.writer.take() {
            writer.fail(error);
        }
    }

    /// The connection is over: hands the body everything the core still has for it, and
    /// its end (the core's, or `ConnectionLost`), whatever room is left.
    fn settle(&mut self, conn: &mut ServerConnection) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        if let Some(piece) = self.held.take() {
            writer.push(piece);
        }
        while let Some(event) = conn.poll_event() {
            match event {
                ServerEvent::Data(data) => writer.push(data),
                ServerEvent::End { .. } => return writer.finish(),
                ServerEvent::Error(e) => return writer.fail(BodyError::Protocol(e)),
                _ => break,
            }
        }
        writer.fail(BodyError::ConnectionLost);
    }
}

/// Serves one connection until it ends.
pub(crate) async fn serve<S, IO>(io: IO, shared: Arc<Shared<S>>, info: ConnectionInfo)
where
    S: Send + Sync + 'static,
    IO: Read + Write + Unpin + MaybeSend + 'static,
{
    use tracing::Instrument;
    serve_in_span(io, shared, info)
        .instrument(log::connection_span(info.peer))
        .await;
}

async fn serve_in_span<S, IO>(io: IO, shared: Arc<Shared<S>>, info: ConnectionInfo)
where
    S: Send + Sync + 'static,
    IO: Read + Write + Unpin + MaybeSend + 'static,
{
    let mut log = ConnectionLog::default();
    let mut access = Access::default();
    let rt = shared.rt.clone();
    // One clock read per turn of the loop (on some hosts reading the clock is a system
    // call): what the wake is handled with, and what the flush that follows uses.
    let mut now = rt.now();
    let mut conn = ServerConnection::new(shared.config.http.clone(), now);
    let context = RequestContext {
        state: shared.routes.state.clone(),
        connection: info,
        scheduler: shared.scheduler.clone(),
        ws_config: shared.ws_config.clone(),
    };
    let mut transport = Transport::new(io, READ_BUFFER, READ_BUFFER);
    let mut inbound = Inbound::default();
    let mut running: Option<Running> = None;
    // What the handler answered, to be sent before this turn's flush (one place for both
    // the handler that answers at once and the one that answers later).
    let mut answer: Option<Result<Response, TaskError>> = None;
    let mut streaming: Option<StreamedBody> = None;
    let mut upgrade: Option<Box<Upgrade>> = None;
    let mut peer_gone = false;
    let mut timer = Timer::default();
    let mut stage_rx = shared.stage.subscribe();
    let mut stage = stage_rx.borrow_and_update();
    match stage {
        Stage::Running => {}
        Stage::Draining => {
            log.ending(End::Shutdown);
            conn.shutdown();
        }
        Stage::Abort => return,
    }
    loop {
        // An answer goes out before any further event is taken: asking the core for body
        // events is what sends `100 Continue`, which a response must come before.
        while answer.is_none() && inbound.may_take_event(&conn) {
            let Some(event) = conn.poll_event() else {
                break;
            };
            match event {
                ServerEvent::Request { head, body } => {
                    let body = if body.is_empty() {
                        Body::empty()
                    } else {
                        let (writer, body) = Body::channel();
                        inbound.writer = Some(writer);
                        inbound.awaiting_want = conn.is_waiting_for_continue();
                        body
                    };
                    log.request();
                    access.start(head.method(), head.uri().path(), now);
                    let request = Request::new(head, body, &context);
                    let mut handler = Guarded::new(shared.routes.dispatch(request));
                    // Most handlers answer at once: take the answer now, and write it with
                    // this turn's flush, instead of a turn of the select below.
                    match poll_once(&mut handler).await {
                        Some(done) => answer = Some(done),
                        None => running = Some(handler),
                    }
                }
                ServerEvent::Data(data) => {
                    access.received(data.len());
                    inbound.data(data);
                }
                ServerEvent::End { .. } => {
                    inbound.finish();
                    access.request_ended();
                }
                ServerEvent::Upgraded { trailing } => {
                    log.ending(End::Upgraded);
                    if flush(now, &mut conn, &mut transport).await.is_err() {
                        return;
                    }
                    let io = transport.into_inner();
                    if let Some((negotiated, tx)) = upgrade.take().map(|boxed| *boxed) {
                        let core = tether_core::ws::WebSocket::server(
                            shared.config.websocket.clone(),
                            negotiated.deflate,
                            rt.now(),
                        );
                        let protocol = negotiated.protocol.as_deref();
                        let socket = websocket::spawn_session(&rt, io, core, trailing, protocol);
                        shared.track(&socket);
                        if stage_rx.with(|stage| *stage != Stage::Running) {
                            let _ = socket.close_going_away().await;
                        }
                        let _ = tx.send(socket);
                    }
                    return;
                }
                ServerEvent::Closed => {
                    log.ending(End::PeerClosed);
                    peer_gone = true;
                }
                ServerEvent::Error(e) => {
                    log.protocol_error(&e);
                    inbound.fail(BodyError::Protocol(e));
                }
                _ => {}
            }
        }
        if let Some(done) = answer.take() {
            access.answered(&done, &*rt);
            (streaming, upgrade) = respond(&*rt, now, &mut conn, done);
            if write_ready_pieces(&mut conn, &mut streaming, &mut access) == BodyEnd::Aborted {
                log.ending(End::ResponseAborted);
                let _ = flush(now, &mut conn, &mut transport).await;
                return;
            }
            // The core may have events again (the upgrade, the next pipelined request):
            // take them before this turn's flush.
            continue;
        }
        if flush(now, &mut conn, &mut transport).await.is_err() {
            log.ending(End::WriteFailed);
            peer_gone = true;
            // Nothing more can be delivered: a streamed body's source is dropped (a
            // `BodySender` sees `ResponseClosed`), rather than pulled and thrown away for as
            // long as it produces.
            streaming = None;
        }
        if conn.is_closed() {
            inbound.settle(&mut conn);
            if !shared.config.cancel_on_disconnect {
                // The connection is over (EOF, a protocol error answered, a timeout) but
                // the handler runs to completion by default, still owned by this task
                // (which the server waits for, and cuts at the shutdown timeout).
                if let Some(mut handler) = running.take() {
                    let mut aborted = pin!(stage_rx.wait_for(|stage| *stage == Stage::Abort));
                    poll_fn(|cx| match Pin::new(&mut handler).poll(cx) {
                        Poll::Ready(_) => Poll::Ready(()),
                        Poll::Pending => aborted.as_mut().poll(cx).map(drop),
                    })
                    .await;
                }
            }
        }
        if conn.is_closed() || (peer_gone && running.is_none() && streaming.is_none()) {
            log.ending(if peer_gone {
                End::PeerClosed
            } else {
                End::NotKeptAlive
            });
            // Dropping `running` here cancels the handler (`cancel_on_disconnect`).
            transport.shutdown().await;
            return;
        }
        if peer_gone && shared.config.cancel_on_disconnect {
            log.ending(End::PeerClosed);
            inbound.fail(BodyError::ConnectionLost);
            return;
        }
        let deadline = conn.poll_timeout();
        let reading = conn.wants_input() && inbound.held.is_none() && !peer_gone;
        let woke = {
            let mut sleep = pin!(timer.sleep_until(&*rt, deadline));
            poll_fn(|cx| {
                // In a fixed order: the peer's bytes, the body's reader, the handler, its
                // streamed body, the deadline, the shutdown stage.
                if reading {
                    if let Poll::Ready(input) = transport.poll_read(cx) {
                        return Poll::Ready(Wake::Input(input));
                    }
                }
                if let Some(writer) = &inbound.writer {
                    if inbound.held.is_some() && writer.poll_ready(cx).is_ready() {
                        return Poll::Ready(Wake::Body);
                    }
                    if inbound.awaiting_want && writer.poll_wanted(cx).is_ready() {
                        return Poll::Ready(Wake::Body);
                    }
                }
                if let Some(handler) = &mut running {
                    if let Poll::Ready(done) = Pin::new(handler).poll(cx) {
                        return Poll::Ready(Wake::Handler(done));
                    }
                }
                if let Some(pieces) = &mut streaming {
                    if let Poll::Ready(piece) = pieces.poll_piece(cx) {
                        return Poll::Ready(Wake::Piece(piece));
                    }
                }
                if deadline.is_some() && sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Deadline);
                }
                if stage != Stage::Abort {
                    if let Poll::Ready(changed) = stage_rx.poll_changed(cx) {
                        return Poll::Ready(Wake::Stage(changed.is_ok()));
                    }
                }
                Poll::Pending
            })
            .await
        };
        now = rt.now();
        match woke {
            // The core turns EOF into Closed, or an incomplete-message error mid-request;
            // for handler cancellation, EOF means the client has gone.
            Wake::Input(Input::Eof | Input::Failed(_)) => {
                conn.handle_eof();
                if shared.config.cancel_on_disconnect {
                    peer_gone = true;
                }
            }
            Wake::Input(Input::Data(n)) => conn.handle_input(now, transport.received(n)),
            // Room for a held piece, or the handler asked for the body: the next turn takes
            // events again.
            Wake::Body => {}
            Wake::Handler(done) => {
                running = None;
                answer = Some(done);
            }
            Wake::Piece(piece) => {
                if write_piece(&mut conn, &mut streaming, &mut access, piece) == BodyEnd::Aborted {
                    log.ending(End::ResponseAborted);
                    // What was sent goes out; then the connection ends without the body's
                    // end, so the client cannot take the body for complete.
                    let _ = flush(now, &mut conn, &mut transport).await;
                    return;
                }
            }
            Wake::Deadline => {
                // An idle connection's deadline closes it quietly; any other is an error
                // event (a 408), logged as such.
                let idle = conn.is_idle();
                conn.handle_timeout(now);
                if idle && conn.is_closed() {
                    log.idle_timeout();
                }
            }
            Wake::Stage(changed) => {
                // A service gone (it never is while its connections run) means: end.
                stage = if changed {
                    stage_rx.borrow_and_update()
                } else {
                    Stage::Abort
                };
                match stage {
                    Stage::Running => {}
                    Stage::Draining => {
                        log.ending(End::Shutdown);
                        conn.shutdown();
                    }
                    Stage::Abort => {
                        log.ending(End::Aborted);
                        inbound.fail(BodyError::Shutdown);
                        return;
                    }
                }
            }
        }
    }
}

/// Where a streamed response body stands after a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyEnd {
    /// More may come.
    Open,
    /// Complete, its end sent.
    Ended,
    /// Failed: the connection must end without the body's end.
    Aborted,
}

/// Hands one piece of a streamed response body to the core.
fn write_piece(
    conn: &mut ServerConnection,
    streaming: &mut Option<StreamedBody>,
    access: &mut Access,
    piece: Piece,
) -> BodyEnd {
    match piece {
        Piece::Data(piece) => {
            access.sent(piece.len());
            let _ = conn.send_data(piece);
            return BodyEnd::Open;
        }
        Piece::End => {
            let _ = conn.send_end(None);
        }
        Piece::Trailers(trailers) => {
            // Trailers go out with chunked framing only; otherwise they are dropped (as
            // hyper does) and the body simply ends.
            if conn.send_end(Some(&trailers)).is_err() {
                let _ = conn.send_end(None);
            }
        }
        Piece::Aborted => return BodyEnd::Aborted,
    }
    *streaming = None;
    access.response_ended();
    BodyEnd::Ended
}

/// Writes what a streamed body has ready now, without waiting (a tower service's body that
/// is already whole goes out with its head, in this turn's flush, instead of one turn of the
/// loop per piece), up to [`READY_BUDGET`] bytes: a body that always has more goes on a piece
/// per turn, each turn flushed (backpressure). Polled with a no-op waker: the loop polls the
/// body again with its own before it waits.
fn write_ready_pieces(
    conn: &mut ServerConnection,
    streaming: &mut Option<StreamedBody>,
    access: &mut Access,
) -> BodyEnd {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut budget = READY_BUDGET;
    while let Some(body) = streaming {
        if budget == 0 {
            return BodyEnd::Open;
        }
        let Poll::Ready(piece) = body.poll_piece(&mut cx) else {
            return BodyEnd::Open;
        };
        if let Piece::Data(data) = &piece {
            budget = budget.saturating_sub(data.len().max(1));
        }
        match write_piece(conn, streaming, access, piece) {
            BodyEnd::Open => {}
            end => return end,
        }
    }
    BodyEnd::Ended
}

/// What woke the connection's loop.
enum Wake {
    Input(Input),
    Body,
    Handler(Result<Response, TaskError>),
    Piece(Piece),
    Deadline,
    /// The shutdown stage changed (`false`: the service is gone).
    Stage(bool),
}

/// Sends what the handler returned (a 500 if it panicked); returns the streamed body to
/// pump, and the upgrade to complete once the core hands the transport over.
fn respond(
    rt: &dyn Runtime,
    now: Instant,
    conn: &mut ServerConnection,
    done: Result<Response, TaskError>,
) -> (Option<StreamedBody>, Option<Box<Upgrade>>) {
    match done {
        Ok(mut response) => {
            let upgrade = response.upgrade.take();
            let switching = upgrade.is_some();
            (start_response(rt, now, conn, response, switching), upgrade)
        }
        Err(_) => {
            let response = Response::empty(http::StatusCode::INTERNAL_SERVER_ERROR);
            (start_response(rt, now, conn, response, false), None)
        }
    }
}

/// Sends a handler's response head (and whole body); returns the stream to pump for a
/// streamed body.
fn start_response(
    rt: &dyn Runtime,
    now: Instant,
    conn: &mut ServerConnection,
    response: Response,
    switching: bool,
) -> Option<StreamedBody> {
    // The core writes `Date` and the length of a whole body itself: no map insertions.
    let length = response.body_len();
    let head = http::Response::from_parts(response.head, ());
    let sent = with_http_date(rt, now, |date| {
        let mut generated = GeneratedFields::new().date(date);
        if let Some(n) = length {
            generated = generated.content_length(n);
        }
        conn.send_response_with(&head, generated)
    });
    if sent.is_err() {
        // The core refused the head (e.g. a 204 with a body length): answer 500 instead.
        let fallback = http::Response::builder()
            .status(500)
            .header("content-length", "0")
            .body(())
            .unwrap_or_default();
        if conn.send_response(&fallback).is_ok() {
            let _ = conn.send_end(None);
        }
        return None;
    }
    if switching {
        return None;
    }
    match response.body {
        ResponseBody::Empty => {
            let _ = conn.send_end(None);
            None
        }
        ResponseBody::Full(bytes) => {
            let _ = conn.send_data(bytes);
            let _ = conn.send_end(None);
            None
        }
        ResponseBody::Stream(rx) => Some(rx),
    }
}

/// Calls `f` with the runtime's wall clock as an HTTP date, formatted at most once a second
/// per thread (an origin server with a clock must send `Date`, RFC 9110 §6.6.1). The wall
/// clock is read only when the monotonic `now` has passed the end of the cached second.
fn with_http_date<T>(rt: &dyn Runtime, now: Instant, f: impl FnOnce(&http::HeaderValue) -> T) -> T {
    use std::cell::RefCell;
    struct Cached {
        /// The monotonic time at which the cached second ends.
        until: Instant,
        value: http::HeaderValue,
    }
    thread_local! {
        static CACHE: RefCell<Cached> = const {
            RefCell::new(Cached {
                until: Instant::ZERO,
                value: http::HeaderValue::from_static(""),
            })
        };
    }
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        // Refreshed when the second is over, and when `now` is from before the cached
        // reading (another runtime's clock on this thread).
        let second = Duration::from_secs(1);
        if now >= cache.until || now + second < cache.until || cache.value.is_empty() {
            let since_epoch = rt.unix_time();
            let left =
                Duration::from_secs(1) - Duration::from_nanos(since_epoch.subsec_nanos().into());
            let wall = std::time::UNIX_EPOCH + since_epoch;
            cache.value = http::HeaderValue::try_from(httpdate::fmt_http_date(wall)).unwrap_or(
                http::HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
            );
            cache.until = now + left;
        }
        f(&cache.value)
    })
}

/// Writes out everything the core has to send.
async fn flush<IO: Read + Write + Unpin>(
    now: Instant,
    conn: &mut ServerConnection,
    transport: &mut Transport<IO>,
) -> io::Result<()> {
    transport.queue_from(|| conn.poll_transmit(now));
    transport.flush().await
}

#[cfg(all(test, feature = "axum"))]
mod axum_tests;
#[cfg(test)]
mod tests;
#[cfg(all(test, feature = "tower"))]
mod tower_tests;
