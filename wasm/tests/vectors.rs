//! The shared byte-level test vectors (`wasm/test/vectors/*.json`): scenarios taken from the
//! core's RFC tests (`core/src/h1/tests/`, `core/src/ws/tests.rs`), run here natively through
//! the replay code the WebAssembly module exports (`wasm/src/vectors.rs`, compiled into this
//! test as it is), and compared with the committed files. `wasm/test/vectors.test.mjs`
//! replays the same files through the module in Node, Deno and Bun.
//!
//! `TETHER_BLESS=1 cargo test -p tether-wasm --test vectors` rewrites the files from native
//! behaviour; without it, any difference fails.

#[path = "../src/vectors.rs"]
mod vectors;

use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::PathBuf;
use vectors::{bytes_value, Session};

// ---- building scenarios ----

struct Scenario {
    name: &'static str,
    from: &'static str,
    role: &'static str,
    config: Value,
    steps: Vec<Value>,
}

fn scenario(role: &'static str, name: &'static str, from: &'static str) -> Scenario {
    Scenario {
        name,
        from,
        role,
        config: json!({}),
        steps: Vec::new(),
    }
}

impl Scenario {
    fn config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    fn input(mut self, at: u64, data: impl AsRef<[u8]>) -> Self {
        self.steps
            .push(json!({ "at": at, "input": bytes_value(data.as_ref()) }));
        self
    }

    /// One input step per byte.
    fn byte_by_byte(mut self, at: u64, data: impl AsRef<[u8]>) -> Self {
        for byte in data.as_ref() {
            self = self.input(at, [*byte]);
        }
        self
    }

    fn eof(mut self, at: u64) -> Self {
        self.steps.push(json!({ "at": at, "eof": true }));
        self
    }

    fn timeout(mut self, at: u64) -> Self {
        self.steps.push(json!({ "at": at, "timeout": true }));
        self
    }

    fn act(mut self, at: u64, action: Value) -> Self {
        self.steps.push(json!({ "at": at, "action": action }));
        self
    }

    /// The last step polls at most `n` events (the application does not read on).
    fn poll(mut self, n: u64) -> Self {
        let last = self.steps.last_mut().expect("a step to limit");
        last["poll"] = json!(n);
        self
    }

    /// Runs the steps natively and returns the scenario with each step's `expect`.
    fn run(&self) -> Value {
        let config = self.config.to_string();
        let mut session =
            Session::new(self.role, &config).unwrap_or_else(|e| panic!("{}: {e}", self.name));
        let steps: Vec<Value> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let expect = vectors::step(&mut session, step)
                    .unwrap_or_else(|e| panic!("{} step {i}: {e}", self.name));
                let mut step = step.clone();
                step["expect"] = expect;
                step
            })
            .collect();
        json!({
            "name": self.name,
            "from": self.from,
            "role": self.role,
            "config": self.config,
            "steps": steps,
        })
    }
}

fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> Value {
    let mut action = json!({ "type": "respond", "status": status, "headers": headers });
    if !body.is_empty() {
        action["body"] = json!(body);
    }
    action
}

fn ok(body: &str) -> Value {
    respond(200, &[("content-length", &body.len().to_string())], body)
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Value {
    json!({ "type": "request", "method": method, "uri": uri, "headers": headers })
}

/// A frame as a client puts it on the wire, masked with `01 02 03 04`.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut out = vec![b0];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn frames(list: &[(u8, &[u8])]) -> Vec<u8> {
    list.iter()
        .flat_map(|(b0, p)| client_frame(*b0, p))
        .collect()
}

// ---- the groups ----

struct Group {
    file: &'static str,
    about: &'static str,
    scenarios: Vec<Scenario>,
}

fn h1_server() -> Group {
    let chunked_head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let trickle = format!(
        "{chunked_head}5;e=1\r\nhello\r\n1a\r\n{}\r\n0\r\nX-T: 9\r\n\r\n",
        "z".repeat(26)
    );
    Group {
        file: "h1-server",
        about: "HTTP/1.1 server connections: framing, pipelining, keep-alive, HTTP/1.0, \
                Expect: 100-continue, HEAD, upgrades, refused commands.",
        scenarios: vec![
            scenario("h1-server", "GET, keep-alive, a second request, then EOF", "core/src/h1/tests/server.rs: simple_get_and_keep_alive")
                .input(0, "GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
                .act(1, ok("ok"))
                .input(2, "GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
                .act(3, ok("second"))
                .eof(4),
            scenario("h1-server", "pipelined requests are answered in order", "core/src/h1/tests/server.rs: pipelined_requests_are_answered_in_order")
                .input(
                    0,
                    "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n\
                     GET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
                )
                .act(1, ok("1"))
                .act(2, ok("2"))
                .act(3, ok("3"))
                .eof(4),
            scenario("h1-server", "chunked body with extensions and trailers", "core/src/h1/tests/server.rs: chunked_body_with_extensions_and_trailers")
                .input(
                    0,
                    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                     5;name=value\r\nhello\r\n6 ; a=\"q\"\r\n world\r\n0\r\nx-checksum: 42\r\n\r\n",
                )
                .act(1, ok("")),
            scenario("h1-server", "a chunked request fed one byte at a time", "core/src/h1/tests/chunked.rs: byte_at_a_time_gives_the_same_result")
                .byte_by_byte(0, &trickle)
                .act(1, ok("")),
            scenario(
                "h1-server",
                "HTTP/1.0 with keep-alive: a sized response keeps it, an unsized one is \
                 close-delimited",
                "core/src/h1/tests/server.rs: http10_keep_alive_token_keeps_the_connection, \
                 http10_unknown_length_is_close_delimited",
            )
            .input(0, "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .act(1, ok("one"))
            .input(2, "GET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .act(3, respond(200, &[], "body")),
            scenario("h1-server", "HTTP/1.1 unsized response is chunked, with trailers", "core/src/h1/tests/server.rs: http11_unknown_length_is_chunked")
                .input(0, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .act(
                    1,
                    json!({ "type": "respond", "status": 200, "body": "body",
                            "trailers": [["x-t", "1"]] }),
                ),
            scenario("h1-server", "Expect: 100-continue is sent when the body is polled", "core/src/h1/tests/server.rs: expect_continue_is_sent_when_the_body_is_polled")
                .input(
                    0,
                    "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
                )
                .input(5, "abc")
                .act(6, respond(201, &[("content-length", "0")], "")),
            scenario(
                "h1-server",
                "Expect: 100-continue answered 417 without reading closes",
                "core/src/h1/tests/server.rs: expect_continue_rejected_without_reading_closes",
            )
            .input(
                0,
                "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            )
            .poll(1)
            .act(1, respond(417, &[("content-length", "0")], "")),
            scenario(
                "h1-server",
                "an early response skips a buffered body and keeps the connection",
                "core/src/h1/tests/server.rs: early_response_skips_a_buffered_body_and_keeps_alive",
            )
            .input(
                0,
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
                 GET /n HTTP/1.1\r\nHost: x\r\n\r\n",
            )
            .poll(1)
            .act(1, respond(200, &[("content-length", "0")], ""))
            .act(2, ok("n")),
            scenario("h1-server", "a response to HEAD has no body", "core/src/h1/tests/server.rs: head_response_has_no_body")
                .input(0, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
                .act(1, ok("ok")),
            scenario("h1-server", "an upgrade hands off the trailing bytes", "core/src/h1/tests/server.rs: upgrade_hands_off_trailing_bytes")
                .input(
                    0,
                    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
                )
                .act(
                    1,
                    json!({ "type": "respond", "status": 101, "end": false,
                            "headers": [["upgrade", "websocket"], ["connection", "upgrade"]] }),
                ),
            scenario("h1-server", "refused commands are local errors", "core/src/h1/tests/server.rs: api_misuse_is_a_local_error")
                .input(0, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .act(1, json!({ "type": "data", "data": "early" }))
                .act(
                    1,
                    json!({ "type": "respond", "status": 200, "headers": [["content-length", "1"]],
                            "body": "xx" }),
                )
                .act(1, json!({ "type": "end" }))
                .act(1, json!({ "type": "data", "data": "x" }))
                .act(1, json!({ "type": "end" })),
        ],
    }
}

fn h1_server_limits() -> Group {
    let limits = json!({ "limits": {
        "maxHeadSize": 64, "maxHeaders": 4, "maxTargetLen": 32, "maxBodySize": 10 } });
    let timeouts = json!({ "timeouts": { "head": 100, "keepAlive": 1000, "bodyRead": 50 } });
    let smuggling = "core/src/h1/tests/server.rs: smuggling_vectors_are_rejected";
    let rejected =
        |name, from, input: &str| scenario("h1-server", name, from).input(0, input).eof(1);
    Group {
        file: "h1-server-limits",
        about: "HTTP/1.1 server rejections: request smuggling, limits (431, 414, 413), \
                malformed chunks, EOF mid-message, and the head, body and keep-alive deadlines.",
        scenarios: vec![
            rejected(
                "Content-Length with Transfer-Encoding is refused with 400",
                smuggling,
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
            ),
            rejected(
                "conflicting Content-Length values are refused with 400",
                smuggling,
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            ),
            rejected(
                "a transfer coding other than chunked is 501",
                smuggling,
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            ),
            rejected(
                "obs-fold is refused with 400",
                smuggling,
                "GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
            ),
            scenario("h1-server", "an oversized head is 431 before its end arrives", "core/src/h1/tests/server.rs: the_head_limit_does_not_wait_for_the_terminator")
                .config(limits.clone())
                .input(0, "GET / HTTP/1.1\r\nHost: x\r\nX: ")
                .input(1, "a".repeat(100)),
            scenario("h1-server", "a target over the limit is 414", "core/src/h1/tests/server.rs: limits")
                .config(limits.clone())
                .input(0, format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(40))),
            scenario("h1-server", "a declared body over the limit is 413", "core/src/h1/tests/server.rs: limits")
                .config(limits.clone())
                .input(0, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"),
            scenario("h1-server", "a chunked body growing over the limit is 413", "core/src/h1/tests/server.rs: limits")
                .config(limits.clone())
                .input(
                    0,
                    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n123456\r\n",
                )
                .input(1, "6\r\n123456\r\n0\r\n\r\n"),
            rejected(
                "a bare LF in a chunk line is 400",
                "core/src/h1/tests/chunked.rs: malformed_bodies",
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
            ),
            scenario("h1-server", "EOF in the middle of a body is 400", "core/src/h1/tests/server.rs: eof_cases")
                .input(0, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
                .eof(1),
            scenario("h1-server", "the head deadline runs from the connection start: 408", "core/src/h1/tests/server.rs: head_timeout_counts_from_the_connection_start")
                .config(timeouts.clone())
                .input(90, "GET / HTTP/1.1\r\n")
                .timeout(99)
                .timeout(100),
            scenario("h1-server", "keep-alive idle, then a head deadline, then an idle close", "core/src/h1/tests/server.rs: keep_alive_idle_then_head_timeout")
                .config(timeouts.clone())
                .input(10, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .act(500, respond(200, &[("content-length", "0")], ""))
                .input(1400, "GET")
                .input(1450, " / HTTP/1.1\r\nHost: x\r\n\r\n")
                .act(1500, respond(200, &[("content-length", "0")], ""))
                .timeout(2400)
                .timeout(2500),
            scenario("h1-server", "the body read deadline: 408", "core/src/h1/tests/server.rs: body_timeout_runs_only_while_waiting_for_the_peer")
                .config(timeouts)
                .input(10, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
                .input(55, "cd")
                .timeout(104)
                .timeout(105),
        ],
    }
}

fn h1_client() -> Group {
    let get = request("GET", "http://example.com/", &[]);
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n5;x=y\r\nthere\r\n0\r\nX-T: 1\r\n\r\n";
    Group {
        file: "h1-client",
        about: "HTTP/1.1 client connections: request encoding, response framing (length, \
                chunked, close-delimited, bodiless), interim responses, reuse, and errors.",
        scenarios: vec![
            scenario("h1-client", "a request with a body, a sized response, reuse", "core/src/h1/tests/client.rs: request_encoding, content_length_response_and_reuse")
                .act(
                    0,
                    json!({ "type": "request", "method": "POST",
                            "uri": "http://user:pw@example.com:8080/p?q=1",
                            "headers": [["content-length", "5"], ["x-a", "1"]], "body": "hello" }),
                )
                .input(1, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
                .act(2, get.clone())
                .input(3, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .eof(4),
            scenario("h1-client", "a chunked request and a chunked response, with trailers", "core/src/h1/tests/client.rs: chunked_request_with_trailers, chunked_response_with_trailers")
                .act(
                    0,
                    json!({ "type": "request", "method": "PUT", "uri": "/upload",
                            "headers": [["host", "h"], ["transfer-encoding", "chunked"]],
                            "body": "abc", "trailers": [["x-md5", "00"]] }),
                )
                .input(1, chunked),
            scenario("h1-client", "a chunked response fed one byte at a time", "core/src/h1/tests/client.rs: chunked_response_with_trailers (split at every byte)")
                .act(0, get.clone())
                .byte_by_byte(1, chunked),
            scenario("h1-client", "a close-delimited response", "core/src/h1/tests/client.rs: close_delimited_response")
                .act(0, get.clone())
                .input(1, "HTTP/1.1 200 OK\r\n\r\nall of ")
                .input(2, "this")
                .eof(3),
            scenario("h1-client", "a response ended early is an error", "core/src/h1/tests/client.rs: malformed_responses")
                .act(0, get.clone())
                .input(1, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
                .eof(2),
            scenario("h1-client", "the server closes before any response", "core/src/h1/tests/client.rs: malformed_responses")
                .act(0, get.clone())
                .eof(1),
            scenario("h1-client", "Expect: 100-continue with 103 and 100 before the answer", "core/src/h1/tests/client.rs: interim_responses")
                .act(
                    0,
                    json!({ "type": "request", "method": "PUT", "uri": "http://x/",
                            "headers": [["expect", "100-continue"], ["content-length", "2"]],
                            "end": false }),
                )
                .input(1, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
                .input(2, "HTTP/1.1 100 Continue\r\n\r\n")
                .act(3, json!({ "type": "data", "data": "ok" }))
                .act(3, json!({ "type": "end" }))
                .input(4, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
            scenario("h1-client", "bodiless responses: HEAD, 204, 304", "core/src/h1/tests/client.rs: bodiless_responses")
                .act(0, request("HEAD", "http://example.com/", &[]))
                .input(1, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                .act(2, get.clone())
                .input(3, "HTTP/1.1 204 No Content\r\n\r\n")
                .act(4, get.clone())
                .input(5, "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"),
            scenario("h1-client", "an unsolicited 101 is an error", "core/src/h1/tests/client.rs: unsolicited_101_is_an_error")
                .act(0, get.clone())
                .input(1, "HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            scenario("h1-client", "a response body over the limit", "core/src/h1/tests/client.rs: response_body_limit")
                .config(json!({ "limits": { "maxBodySize": 4 } }))
                .act(0, get)
                .input(1, "HTTP/1.1 200 OK\r\n\r\n12345"),
        ],
    }
}

fn websocket() -> Group {
    let euro = "€".as_bytes();
    let small = json!({ "websocket": { "maxFrameSize": 100, "maxMessageSize": 150 } });
    let deflate = json!({ "negotiated": {}, "websocket": { "deflate": {} } });
    let long_text = "tether tether tether tether tether tether tether tether tether tether";
    Group {
        file: "websocket",
        about: "WebSocket connections (RFC 6455, RFC 7692) in both roles, and the opening \
                handshake through the h1 connections.",
        scenarios: vec![
            scenario("ws-server", "masked text and binary messages", "core/src/ws/tests.rs: text_and_binary_messages")
                .input(0, frames(&[(0x81, b"Hello"), (0x82, &[0, 1, 2])]))
                .act(1, json!({ "type": "text", "text": "Hello back" })),
            scenario("ws-server", "fragments with a ping between: pong", "core/src/ws/tests.rs: fragments_with_a_ping_between").input(
                0,
                frames(&[(0x01, b"Hel"), (0x89, b"p1"), (0x00, b"l"), (0x80, b"o")]),
            ),
            scenario("ws-server", "the peer's close is echoed and final", "core/src/ws/tests.rs: peer_close_is_echoed_and_final")
                .input(0, frames(&[(0x88, b"\x03\xe9going"), (0x81, b"after close")]))
                .act(1, json!({ "type": "text", "text": "late" })),
            scenario("ws-server", "our close waits for the answer", "core/src/ws/tests.rs: our_close_waits_for_the_answer")
                .act(100, json!({ "type": "close", "code": 1000, "reason": "bye" }))
                .input(200, frames(&[(0x81, b"last"), (0x88, b"\x03\xe8")])),
            scenario("ws-server", "no answer to our close: close timeout", "core/src/ws/tests.rs: close_timeout")
                .act(0, json!({ "type": "close", "code": 1000 }))
                .timeout(9_999)
                .timeout(10_000),
            scenario("ws-server", "invalid UTF-8 mid-message is 1007", "core/src/ws/tests.rs: invalid_utf8_fails_at_the_first_bad_byte_mid_message")
                .input(0, client_frame(0x01, b"ok\xc0\xaf")),
            scenario("ws-server", "text split mid-character across fragments", "core/src/ws/tests.rs: invalid_utf8_fails_at_the_first_bad_byte_mid_message")
                .input(0, client_frame(0x01, &euro[..1]))
                .input(1, client_frame(0x80, &euro[1..])),
            scenario("ws-server", "a message over the limit is 1009", "core/src/ws/tests.rs: size_limits")
                .config(small.clone())
                .input(0, frames(&[(0x02, &[0; 100]), (0x80, &[0; 51])])),
            scenario("ws-server", "a frame over the limit is 1009 on its header", "core/src/ws/tests.rs: size_limits")
                .config(small)
                .input(0, &client_frame(0x82, &[0; 101])[..8]),
            scenario("ws-server", "an unmasked client frame is 1002", "core/src/ws/tests.rs: protocol_violations_fail_with_their_code")
                .input(0, b"\x81\x05Hello"),
            scenario("ws-server", "reserved bits are 1002", "core/src/ws/tests.rs: protocol_violations_fail_with_their_code")
                .input(0, client_frame(0xC1, b"x")),
            scenario("ws-server", "the transport ends without a close: 1006", "core/src/ws/tests.rs: transport_end_without_close")
                .input(0, &client_frame(0x81, b"hi")[..4])
                .eof(1),
            scenario("ws-client", "the client masks; a masked server frame is 1002", "core/src/ws/tests.rs: client_masks_and_server_does_not")
                .config(json!({ "masks": [{ "hex": "09080706" }, { "hex": "a1b2c3d4" }] }))
                .act(0, json!({ "type": "text", "text": "abc" }))
                .act(0, json!({ "type": "binary", "data": { "hex": "00ff" } }))
                .input(1, b"\x81\x02hi")
                .input(2, client_frame(0x81, b"x")),
            scenario("ws-server", "streamed sending, with a ping between pieces", "core/src/ws/tests.rs: streamed_sending_and_local_errors")
                .act(0, json!({ "type": "fragment", "kind": "text", "data": "he", "fin": false }))
                .act(0, json!({ "type": "text", "text": "x" }))
                .act(0, json!({ "type": "ping", "data": "p" }))
                .act(0, json!({ "type": "fragment", "kind": "text", "data": "llo", "fin": true }))
                .act(0, json!({ "type": "close", "code": 1005 })),
            scenario("ws-server", "heartbeat ping, then no pong: ping timeout", "core/src/ws/tests.rs: heartbeat_pings_then_times_out")
                .config(json!({ "websocket": { "heartbeat": 1000 } }))
                .timeout(999)
                .timeout(1000)
                .timeout(1500),
            scenario("ws-server", "idle timeout closes with 1001", "core/src/ws/tests.rs: idle_timeout_closes_with_1001")
                .config(json!({ "websocket": { "idleTimeout": 5000 } }))
                .input(3000, client_frame(0x81, b"x"))
                .timeout(8000),
            scenario("ws-client", "permessage-deflate both ways, with context takeover", "core/src/ws/tests.rs: client_handshake_round_trip_with_deflate (RFC 7692 §7.2.3.1's \"Hello\")")
                .config(deflate)
                .input(0, b"\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00")
                .act(1, json!({ "type": "text", "text": long_text }))
                .act(2, json!({ "type": "text", "text": long_text }))
                .act(3, json!({ "type": "text", "text": "short" })),
            scenario("h1-server", "the server's handshake, then frames on the same input", "core/src/ws/tests.rs: server_accepts_a_valid_upgrade")
                .config(json!({ "websocket": { "deflate": {} } }))
                .input(
                    0,
                    [
                        &b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
                           Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                           Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
                           Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"[..],
                        &client_frame(0x81, b"Hello"),
                    ]
                    .concat(),
                )
                .act(1, json!({ "type": "accept-websocket", "protocols": ["superchat", "chat"] }))
                .act(2, json!({ "type": "text", "text": long_text }))
                .input(3, client_frame(0x88, b"\x03\xe8")),
            scenario("h1-server", "a handshake for another version is refused with 426", "core/src/ws/tests.rs: server_refusals")
                .input(
                    0,
                    "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
                )
                .act(1, json!({ "type": "accept-websocket" })),
            scenario("h1-client", "the client's handshake, then messages", "core/src/ws/tests.rs: client_handshake_round_trip_with_deflate")
                .config(json!({ "masks": [{ "hex": "01020304" }] }))
                .act(
                    0,
                    json!({ "type": "websocket", "uri": "ws://server.example.com/chat",
                            "key": "the sample nonce", "protocols": ["chat"] }),
                )
                .input(
                    1,
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                      Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n\
                      \x81\x02hi",
                )
                .act(2, json!({ "type": "text", "text": "hello" }))
                .act(3, json!({ "type": "close", "code": 1000, "reason": "done" }))
                .input(4, b"\x88\x02\x03\xe8"),
        ],
    }
}

fn groups() -> Vec<Group> {
    vec![h1_server(), h1_server_limits(), h1_client(), websocket()]
}

// ---- the files ----

/// Keys in the order a reader wants them; others follow, sorted.
const KEY_ORDER: &[&str] = &[
    "at", "type", "input", "eof", "timeout", "action", "poll", "events", "output", "deadline",
    "state", "method", "uri", "target", "status", "version", "headers", "body", "end", "data",
    "text", "trailers", "kind", "fin", "code", "reason", "how", "clean", "offset", "message",
];

/// One-line JSON with the keys in reading order.
fn compact(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(compact).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort_by_key(|k| {
                let rank = KEY_ORDER
                    .iter()
                    .position(|o| o == k)
                    .unwrap_or(KEY_ORDER.len());
                (rank, k.as_str())
            });
            let fields: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), compact(&object[*k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        other => other.to_string(),
    }
}

/// A group's file: pretty down to each step, and each step on one line.
fn render(file: &str, about: &str, scenarios: &[Value]) -> String {
    let mut out = String::new();
    let q = |s: &str| Value::from(s).to_string();
    let _ = writeln!(out, "{{");
    let _ = writeln!(out, "  \"group\": {},", q(file));
    let _ = writeln!(out, "  \"about\": {},", q(about));
    let _ = writeln!(out, "  \"scenarios\": [");
    for (i, s) in scenarios.iter().enumerate() {
        let _ = writeln!(out, "    {{");
        for key in ["name", "from", "role"] {
            let _ = writeln!(out, "      {}: {},", q(key), s[key]);
        }
        let _ = writeln!(out, "      \"config\": {},", compact(&s["config"]));
        let _ = writeln!(out, "      \"steps\": [");
        let steps = s["steps"].as_array().expect("steps");
        for (j, step) in steps.iter().enumerate() {
            let comma = if j + 1 < steps.len() { "," } else { "" };
            let _ = writeln!(out, "        {}{comma}", compact(step));
        }
        let _ = writeln!(out, "      ]");
        let comma = if i + 1 < scenarios.len() { "," } else { "" };
        let _ = writeln!(out, "    }}{comma}");
    }
    let _ = writeln!(out, "  ]");
    let _ = writeln!(out, "}}");
    out
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test/vectors")
}

/// Replays a file's scenario as the JS test does: its own steps, against its own `expect`s.
fn replay(scenario: &Value) -> Result<(), String> {
    let name = scenario["name"].as_str().unwrap_or("?");
    let role = scenario["role"].as_str().ok_or("no role")?;
    let mut session = Session::new(role, &scenario["config"].to_string())?;
    for (i, step) in scenario["steps"]
        .as_array()
        .ok_or("no steps")?
        .iter()
        .enumerate()
    {
        let got = vectors::step(&mut session, step)?;
        if got != step["expect"] {
            return Err(format!(
                "{name}, step {i}:\n  file:   {}\n  native: {}",
                compact(&step["expect"]),
                compact(&got)
            ));
        }
    }
    Ok(())
}

#[test]
fn vectors_match_native_behaviour() {
    let dir = vectors_dir();
    let bless = std::env::var_os("TETHER_BLESS").is_some_and(|v| v != "0");
    let groups = groups();
    let mut names: Vec<String> = groups.iter().map(|g| format!("{}.json", g.file)).collect();
    names.sort();
    let mut failures = Vec::new();
    for group in &groups {
        let scenarios: Vec<Value> = group.scenarios.iter().map(Scenario::run).collect();
        let mut seen = std::collections::HashSet::new();
        for s in &scenarios {
            assert!(
                seen.insert(s["name"].clone()),
                "duplicate name {}",
                s["name"]
            );
        }
        let text = render(group.file, group.about, &scenarios);
        let path = dir.join(format!("{}.json", group.file));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let Ok(committed) = std::fs::read_to_string(&path) else {
            failures.push(format!(
                "{} is missing (run with TETHER_BLESS=1)",
                path.display()
            ));
            continue;
        };
        let file: Value =
            serde_json::from_str(&committed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let generated: Value = serde_json::from_str(&text).unwrap();
        if file != generated {
            let before = failures.len();
            let empty = Vec::new();
            let old = file["scenarios"].as_array().unwrap_or(&empty);
            let new = generated["scenarios"].as_array().unwrap_or(&empty);
            for s in new {
                match old.iter().find(|o| o["name"] == s["name"]) {
                    None => failures.push(format!("{}: new scenario {}", group.file, s["name"])),
                    Some(o) if o != s => {
                        failures.push(format!("{}: {} differs", group.file, s["name"]))
                    }
                    Some(_) => {}
                }
            }
            if old.len() != new.len() || failures.len() == before {
                failures.push(format!(
                    "{}: scenarios added, removed or reordered",
                    group.file
                ));
            }
        } else if committed != text {
            failures.push(format!("{}: not in canonical form", path.display()));
        }
        // The way the JS test reads it: from the file's own JSON.
        for s in file["scenarios"].as_array().into_iter().flatten() {
            if let Err(e) = replay(s) {
                failures.push(format!("{}: {e}", group.file));
            }
        }
    }
    // No file the generator does not write (a stale group would go on being replayed).
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    on_disk.sort();
    if on_disk != names {
        failures.push(format!(
            "{} holds {on_disk:?}, the generator writes {names:?}",
            dir.display()
        ));
    }
    assert!(
        failures.is_empty(),
        "the vectors differ from native behaviour (TETHER_BLESS=1 rewrites them):\n{}",
        failures.join("\n")
    );
}

#[test]
fn bytes_round_trip_through_json() {
    for data in [
        &b""[..],
        b"text\r\n",
        b"\x81\x85\x00\xff",
        "café €".as_bytes(),
    ] {
        assert_eq!(vectors::bytes_of(&bytes_value(data)).unwrap(), data);
    }
    assert_eq!(bytes_value(b"\xff\x00"), json!({ "hex": "ff00" }));
    assert!(vectors::bytes_of(&json!({ "hex": "f" })).is_err());
    assert!(vectors::bytes_of(&json!(3)).is_err());
}

#[test]
fn bad_configs_and_actions_are_errors() {
    assert!(Session::new("h2-server", "{}").is_err());
    assert!(Session::new("h1-server", r#"{"limit": {}}"#).is_err());
    let mut session = Session::new("ws-server", "").unwrap();
    let now = vectors::instant(0.0);
    assert!(session
        .action(now, &json!({ "type": "respond", "status": 200 }))
        .is_err());
    assert!(session.action(now, &json!({ "type": "text" })).is_err());
    assert!(session
        .action(now, &json!({ "type": "text", "text": "x", "extra": 1 }))
        .is_err());
    session
        .action(now, &json!({ "type": "text", "text": "x" }))
        .unwrap();
    assert_eq!(session.transmit(now), b"\x81\x01x");
}
