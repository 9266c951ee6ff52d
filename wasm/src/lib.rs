//! tether in a WebAssembly host: the module runs `tether-rt`'s client and server loops (and
//! so every protocol decision of the core: framing, limits, keep-alive, timeouts, the pool,
//! WebSocket heartbeats and closes) on its own executor; JavaScript, the host, owns the
//! sockets, one timer and the clock.
//!
//! The boundary is pull-only (smoldot's model): JavaScript calls in to hand over input
//! (received bytes, a socket's state, a request to start an operation) and to `run` the
//! woken tasks, then pulls what the module has for it: socket actions (connect, write,
//! end, close) and outbox entries (operation results, server requests). No call into the
//! module ever calls back into JavaScript, so nothing re-enters. Bytes cross once each way:
//! received data is copied into the module; pending output leaves as one merged copy per
//! socket and pull.
//!
//! These exports are the glue's, not an API: the npm package (`wasm/js`) wraps them in
//! `Client`, `WebSocket` and `Server` classes with typed errors.

#![deny(missing_docs)]

mod client;
mod errors;
mod executor;
mod host;
mod outbox;
mod server;
mod settings;
mod socket;
// The replay of the shared test vectors: in test builds only (it is the tests' tool, and
// the package is smaller without it).
#[cfg(feature = "testing")]
mod vectors;
mod wire;
mod ws;

use js_sys::Array;
use outbox::ErrorInfo;
use wasm_bindgen::prelude::*;

/// Most task polls one round of a turn makes before the host gets to do its IO.
const RUN_BUDGET: usize = 4096;

/// Most rounds (run, then take the output) one turn makes.
const TURN_ROUNDS: usize = 16;

/// A typed error thrown to JavaScript: `{ code, message, status }`; the JS side makes it
/// an error class.
fn thrown(error: ErrorInfo) -> JsValue {
    let object = js_sys::Object::new();
    let set = |name: &str, value: JsValue| {
        // Setting a property of a fresh plain object cannot fail.
        let _ = js_sys::Reflect::set(&object, &JsValue::from_str(name), &value);
    };
    set("code", JsValue::from_str(error.code));
    set("message", JsValue::from_str(&error.message));
    if let Some(status) = error.status {
        set("status", JsValue::from(status));
    }
    object.into()
}

// ---- the host loop ----

/// Seeds the module's random source with host entropy (32 bytes of
/// `crypto.getRandomValues`); called once, before anything else.
#[wasm_bindgen]
pub fn init(entropy: &[u8]) {
    host::seed(entropy);
}

/// One turn of the host loop: sets the clocks (`performance.now()`, `Date.now()`), wakes
/// due timers, polls woken tasks, and hands over everything they produced, in one crossing
/// of the boundary: `[json, ...payloads]` (see `wire.rs`). Taking a socket's output wakes
/// the tasks that waited for room, so the turn runs until nothing is woken (or the budget
/// is spent: then `more` says to turn again after the host's own IO).
#[wasm_bindgen]
pub fn turn(monotonic_ms: f64, unix_ms: f64) -> Array {
    host::set_clock(monotonic_ms, unix_ms);
    let mut actions = Vec::new();
    let mut events = Vec::new();
    let mut more = false;
    for _ in 0..TURN_ROUNDS {
        more = executor::run(RUN_BUDGET);
        actions.extend(socket::take_actions());
        events.extend(outbox::take());
        if more || !executor::has_ready() {
            break;
        }
    }
    let more = more || executor::has_ready();
    let turn = wire::encode(more, host::next_deadline_ms(), &mut actions, &mut events);
    let out = Array::new_with_length(1 + turn.payloads.len() as u32);
    out.set(0, JsValue::from_str(&turn.json));
    for (i, payload) in turn.payloads.iter().enumerate() {
        out.set(
            1 + i as u32,
            js_sys::Uint8Array::from(payload.as_slice()).into(),
        );
    }
    out
}

/// Drops operation `op` if it still runs (an aborted request, a cancelled read).
#[wasm_bindgen]
pub fn cancel(op: u32) {
    outbox::cancel(op);
}

/// `[tasks, timers, sockets, operations, websockets, polls]`: what is alive (for leak
/// checks), and the task polls made so far (for the benchmarks' per-request counts).
#[wasm_bindgen]
pub fn stats() -> Vec<f64> {
    [
        executor::live_tasks(),
        host::armed_timers(),
        socket::open_sockets(),
        outbox::running(),
        ws::open(),
    ]
    .map(|n| n as f64)
    .into_iter()
    .chain([executor::polls() as f64])
    .collect()
}

/// Panics inside the module (test builds only), to check that the host recovers.
#[cfg(feature = "testing")]
#[wasm_bindgen]
pub fn debug_panic() {
    panic!("deliberate panic (test build)");
}

/// Serves `n` requests inside the module with no JavaScript between them (test builds: the
/// module's own cost, apart from the boundary's).
#[cfg(feature = "testing")]
#[wasm_bindgen]
pub fn debug_request_loop(n: u32) {
    server::request_loop(n);
}

// ---- sockets ----

/// The host opened socket `id` (TLS included).
#[wasm_bindgen]
pub fn socket_connected(id: u32) {
    socket::connected(id);
}

/// The host could not open socket `id`: `kind` 0 = DNS, 1 = connect, 2 = TLS.
#[wasm_bindgen]
pub fn socket_connect_failed(id: u32, kind: u8, message: String) {
    let failure = match kind {
        0 => socket::ConnectFailure::Dns,
        2 => socket::ConnectFailure::Tls,
        _ => socket::ConnectFailure::Connect,
    };
    socket::connect_failed(id, failure, message);
}

/// Bytes received on socket `id` (moved into the module: one copy). `false`: pause
/// reading the socket until a `resume` action (the module holds enough unread bytes).
#[wasm_bindgen]
pub fn socket_data(id: u32, data: Vec<u8>) -> bool {
    socket::data(id, data)
}

/// The peer ended its side of socket `id`.
#[wasm_bindgen]
pub fn socket_eof(id: u32) {
    socket::eof(id);
}

/// Socket `id` failed.
#[wasm_bindgen]
pub fn socket_failed(id: u32, message: String) {
    socket::failed(id, message);
}

/// The host's write buffers of socket `id` are full (`true`) or drained (`false`).
#[wasm_bindgen]
pub fn socket_paused(id: u32, paused: bool) {
    socket::set_paused(id, paused);
}

// ---- client ----

/// A client with `settings` (JSON): its handle.
#[wasm_bindgen]
pub fn client_new(settings: &str) -> Result<u32, JsValue> {
    client::create(settings).map_err(thrown)
}

/// Starts a request as operation `op`. `body_kind`: 0 none, 1 `body`, 2 streamed (the
/// returned upload handle takes the pieces). `timeouts`: JSON overrides, or empty.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn client_request(
    client: u32,
    op: u32,
    method: String,
    url: String,
    headers: Vec<String>,
    timeouts: String,
    follow_redirects: bool,
    body_kind: u8,
    body: Vec<u8>,
) -> Result<u32, JsValue> {
    let spec = client::RequestSpec {
        method,
        url,
        headers,
        timeouts,
        follow_redirects,
    };
    let body = match body_kind {
        0 => client::RequestBody::None,
        2 => client::RequestBody::Stream,
        _ => client::RequestBody::Bytes(body),
    };
    client::request(client, op, spec, body).map_err(thrown)
}

/// Writes a piece of a streamed request body; completes once it was taken.
#[wasm_bindgen]
pub fn upload_write(upload: u32, op: u32, data: Vec<u8>) {
    client::upload_write(upload, op, data);
}

/// Ends a streamed request body, complete.
#[wasm_bindgen]
pub fn upload_end(upload: u32) {
    client::upload_end(upload);
}

/// Reads the next piece of response `id`'s body.
#[wasm_bindgen]
pub fn response_read(id: u32, op: u32) {
    client::response_read(id, op);
}

/// Reads the whole body of response `id`.
#[wasm_bindgen]
pub fn response_bytes(id: u32, op: u32) {
    client::response_bytes(id, op);
}

/// Drops response `id` (an unread body closes its connection).
#[wasm_bindgen]
pub fn response_drop(id: u32) {
    client::response_drop(id);
}

/// Opens a WebSocket as operation `op`.
#[wasm_bindgen]
pub fn client_ws_connect(
    client: u32,
    op: u32,
    url: &str,
    protocols: Vec<String>,
    headers: Vec<String>,
) -> Result<(), JsValue> {
    client::ws_connect(client, op, url, protocols, headers).map_err(thrown)
}

/// Pool counts for the origin of `url`: `[idle, inUse, opening, waiting]`.
#[wasm_bindgen]
pub fn client_pool_stats(client: u32, url: &str) -> Option<Vec<u32>> {
    client::pool_stats(client, url).map(|s| s.to_vec())
}

/// Closes a client as operation `op`.
#[wasm_bindgen]
pub fn client_close(client: u32, op: u32) {
    client::close(client, op);
}

// ---- WebSockets (both roles) ----

/// Receives the next message of WebSocket `id`.
#[wasm_bindgen]
pub fn ws_recv(id: u32, op: u32) {
    ws::recv(id, op);
}

/// Sends a text message.
#[wasm_bindgen]
pub fn ws_send_text(id: u32, op: u32, text: String) {
    ws::send(id, op, Some(text), None);
}

/// Queues a text message at once if the connection has room (`true`); `false`: it is
/// full, send with `ws_send_text` (which waits).
#[wasm_bindgen]
pub fn ws_queue_text(id: u32, text: String) -> Result<bool, JsValue> {
    ws::send_now(id, Some(text), None).map_err(thrown)
}

/// Queues a binary message at once if the connection has room (see `ws_queue_text`).
#[wasm_bindgen]
pub fn ws_queue_binary(id: u32, data: Vec<u8>) -> Result<bool, JsValue> {
    ws::send_now(id, None, Some(data)).map_err(thrown)
}

/// Sends a binary message.
#[wasm_bindgen]
pub fn ws_send_binary(id: u32, op: u32, data: Vec<u8>) {
    ws::send(id, op, None, Some(data));
}

/// Sends a ping.
#[wasm_bindgen]
pub fn ws_ping(id: u32, op: u32, payload: Vec<u8>) {
    ws::ping(id, op, payload);
}

/// Closes WebSocket `id` with `code` and `reason`; completes with the final reason.
#[wasm_bindgen]
pub fn ws_close(id: u32, op: u32, code: u16, reason: String) {
    ws::close(id, op, code, reason);
}

/// Drops WebSocket `id` (it closes with 1001 if still open).
#[wasm_bindgen]
pub fn ws_drop(id: u32) {
    ws::drop_handle(id);
}

// ---- server ----

/// Starts a server with `settings` (JSON) as operation `op`.
#[wasm_bindgen]
pub fn server_new(op: u32, settings: &str) -> Result<(), JsValue> {
    server::create(op, settings).map_err(thrown)
}

/// Serves a connection the host accepted from `peer`: the id of its socket.
#[wasm_bindgen]
pub fn server_accept(server: u32, peer: &str) -> Result<u32, JsValue> {
    server::accept(server, peer).map_err(thrown)
}

/// Closes a server gracefully as operation `op`.
#[wasm_bindgen]
pub fn server_close(server: u32, op: u32) {
    server::close(server, op);
}

/// Answers request `id`. With `stream`, the body is written through the returned
/// download handle; else it is `body`.
#[wasm_bindgen]
pub fn server_respond(
    id: u32,
    status: u16,
    headers: Vec<String>,
    stream: bool,
    body: Vec<u8>,
) -> Result<u32, JsValue> {
    let answer = if stream {
        server::Answer::Stream
    } else {
        server::Answer::Bytes(body)
    };
    server::respond(id, status, headers, answer).map_err(thrown)
}

/// Accepts the WebSocket upgrade of request `id` as operation `op`.
#[wasm_bindgen]
pub fn server_accept_websocket(id: u32, op: u32, protocols: Vec<String>) -> Result<(), JsValue> {
    server::accept_websocket(id, op, protocols).map_err(thrown)
}

/// Reads request `id`'s body: the next piece, or (`whole`) all of it.
#[wasm_bindgen]
pub fn request_read(id: u32, op: u32, whole: bool) {
    server::request_read(id, op, whole);
}

/// The host is done with request `id`.
#[wasm_bindgen]
pub fn request_drop(id: u32) {
    server::request_drop(id);
}

/// Writes a piece of a streamed response body.
#[wasm_bindgen]
pub fn download_write(handle: u32, op: u32, data: Vec<u8>) {
    server::download_write(handle, op, data);
}

/// Ends a streamed response body, complete.
#[wasm_bindgen]
pub fn download_end(handle: u32) {
    server::download_end(handle);
}

/// Abandons a streamed response body: the client sees it fail.
#[wasm_bindgen]
pub fn download_abort(handle: u32) {
    server::download_abort(handle);
}
