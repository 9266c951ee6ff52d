//! What one `turn` hands JavaScript, in the fewest crossings of the boundary: one JSON text
//! (socket actions, outbox entries, whether work is left, the next deadline) and the byte
//! payloads it refers to by index, each a `Uint8Array` copy (never a view of the module's
//! memory, which a later allocation may move). Plain data, so it is tested natively; the
//! JS side is `wasm/js/lib/host.js`.

use crate::outbox::{Closed, ErrorInfo, Out, WsMessage};
use crate::socket::Action;
use serde::Serialize;

/// One turn's output before it becomes JS values: the JSON text and the payloads.
#[derive(Debug, Default)]
pub(crate) struct Turn {
    pub(crate) json: String,
    pub(crate) payloads: Vec<Vec<u8>>,
}

#[derive(Serialize)]
struct ErrorWire<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
}

fn error(info: &ErrorInfo) -> ErrorWire<'_> {
    ErrorWire {
        code: info.code,
        message: &info.message,
        status: info.status,
    }
}

#[derive(Serialize)]
struct ClosedWire<'a> {
    code: u16,
    reason: &'a str,
    clean: bool,
    how: &'a str,
}

fn closed(c: &Closed) -> ClosedWire<'_> {
    ClosedWire {
        code: c.code,
        reason: &c.reason,
        clean: c.clean,
        how: c.how,
    }
}

/// Headers as a flat `[name, value, ...]` list.
fn flat(list: &[(String, String)]) -> Vec<&str> {
    list.iter()
        .flat_map(|(n, v)| [n.as_str(), v.as_str()])
        .collect()
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum ActionWire<'a> {
    Connect {
        socket: u32,
        host: &'a str,
        port: u16,
        tls: bool,
        client: u32,
    },
    /// `d`: index of the bytes among the payloads.
    Write {
        socket: u32,
        d: usize,
    },
    End {
        socket: u32,
    },
    Close {
        socket: u32,
    },
    Resume {
        socket: u32,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum EventWire<'a> {
    Done {
        op: u32,
    },
    Failed {
        op: u32,
        error: ErrorWire<'a>,
    },
    Response {
        op: u32,
        id: u32,
        status: u16,
        headers: Vec<&'a str>,
    },
    /// `d`: the piece's payload index, or `null` at the end of the body.
    Chunk {
        op: u32,
        d: Option<usize>,
    },
    Body {
        op: u32,
        d: usize,
    },
    WsOpen {
        op: u32,
        id: u32,
        protocol: Option<&'a str>,
        extensions: Option<&'a str>,
    },
    WsMessages {
        op: u32,
        messages: Vec<MessageWire<'a>>,
    },
    WsClosed {
        op: u32,
        closed: ClosedWire<'a>,
    },
    ServerStarted {
        op: u32,
        id: u32,
    },
    Request {
        server: u32,
        id: u32,
        method: &'a str,
        target: &'a str,
        headers: Vec<&'a str>,
        peer: Option<&'a str>,
    },
}

/// A WebSocket message: `text`, or the payload index `d` of a binary one.
#[derive(Serialize)]
struct MessageWire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    d: Option<usize>,
}

#[derive(Serialize)]
struct TurnWire<'a> {
    /// Woken tasks are left over: turn again soon.
    more: bool,
    /// The earliest timer, in the host's milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<f64>,
    actions: Vec<ActionWire<'a>>,
    events: Vec<EventWire<'a>>,
}

/// Encodes one turn; payloads move out of the actions and events without a copy.
pub(crate) fn encode(
    more: bool,
    deadline: Option<f64>,
    actions: &mut [Action],
    events: &mut [Out],
) -> Turn {
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    let mut keep = |bytes: Vec<u8>| {
        payloads.push(bytes);
        payloads.len() - 1
    };
    let mut action_wire = Vec::with_capacity(actions.len());
    for action in actions.iter_mut() {
        action_wire.push(match action {
            Action::Connect(c) => ActionWire::Connect {
                socket: c.socket,
                host: &c.host,
                port: c.port,
                tls: c.tls,
                client: c.client,
            },
            Action::Write(socket, data) => ActionWire::Write {
                socket: *socket,
                d: keep(std::mem::take(data)),
            },
            Action::End(socket) => ActionWire::End { socket: *socket },
            Action::Close(socket) => ActionWire::Close { socket: *socket },
            Action::Resume(socket) => ActionWire::Resume { socket: *socket },
        });
    }
    let mut event_wire = Vec::with_capacity(events.len());
    for event in events.iter_mut() {
        event_wire.push(match event {
            Out::Done { op } => EventWire::Done { op: *op },
            Out::Failed { op, error: e } => EventWire::Failed {
                op: *op,
                error: error(e),
            },
            Out::Response {
                op,
                id,
                status,
                headers,
            } => EventWire::Response {
                op: *op,
                id: *id,
                status: *status,
                headers: flat(headers),
            },
            Out::Chunk { op, data } => EventWire::Chunk {
                op: *op,
                d: data.take().map(|b| keep(Vec::from(b))),
            },
            Out::Body { op, data } => EventWire::Body {
                op: *op,
                d: keep(Vec::from(std::mem::take(data))),
            },
            Out::WsOpen {
                op,
                id,
                protocol,
                extensions,
            } => EventWire::WsOpen {
                op: *op,
                id: *id,
                protocol: protocol.as_deref(),
                extensions: extensions.as_deref(),
            },
            Out::WsMessages { op, messages } => EventWire::WsMessages {
                op: *op,
                messages: messages
                    .iter_mut()
                    .map(|message| match message {
                        WsMessage::Text(text) => MessageWire {
                            text: Some(text.as_str()),
                            d: None,
                        },
                        WsMessage::Binary(data) => MessageWire {
                            text: None,
                            d: Some(keep(Vec::from(std::mem::take(&mut *data)))),
                        },
                    })
                    .collect(),
            },
            Out::WsClosed { op, closed: c } => EventWire::WsClosed {
                op: *op,
                closed: closed(c),
            },
            Out::ServerStarted { op, id } => EventWire::ServerStarted { op: *op, id: *id },
            Out::Request {
                server,
                id,
                method,
                target,
                headers,
                peer,
            } => EventWire::Request {
                server: *server,
                id: *id,
                method,
                target,
                headers: flat(headers),
                peer: peer.as_deref(),
            },
        });
    }
    let json = serde_json::to_string(&TurnWire {
        more,
        deadline,
        actions: action_wire,
        events: event_wire,
    })
    // Serializing plain strings and numbers into a String cannot fail.
    .unwrap_or_default();
    Turn { json, payloads }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::ConnectRequest;
    use bytes::Bytes;

    #[test]
    fn payloads_are_referenced_by_index_and_strings_escaped() {
        let mut actions = vec![
            Action::Connect(ConnectRequest {
                socket: 1,
                host: "example.com".into(),
                port: 443,
                tls: true,
                client: 1,
            }),
            Action::Write(1, b"GET /".to_vec()),
        ];
        let mut events = vec![
            Out::Chunk {
                op: 7,
                data: Some(Bytes::from_static(b"piece")),
            },
            Out::Chunk { op: 8, data: None },
            Out::Failed {
                op: 9,
                error: ErrorInfo::new("PROTOCOL", "bad \"quote\"\n"),
            },
        ];
        let turn = encode(false, Some(1.5), &mut actions, &mut events);
        assert_eq!(turn.payloads, vec![b"GET /".to_vec(), b"piece".to_vec()]);
        let value: serde_json::Value = serde_json::from_str(&turn.json).unwrap();
        assert_eq!(value["deadline"], 1.5);
        assert_eq!(value["actions"][0]["type"], "connect");
        assert_eq!(value["actions"][1]["d"], 0);
        assert_eq!(value["events"][0]["d"], 1);
        assert!(value["events"][1]["d"].is_null());
        assert_eq!(value["events"][2]["error"]["message"], "bad \"quote\"\n");
    }
}
