//! The module's outputs as JS values, built in the pull calls: plain objects with a `type`
//! field, strings, and `Uint8Array`s that are copies (never views of the module's memory,
//! which a later allocation may move).

use crate::outbox::{Closed, ErrorInfo, HeaderList, Out};
use crate::socket::Action;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::JsValue;

fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (name, value) in fields {
        // Setting a property of a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(name), value);
    }
    object.into()
}

fn bytes(data: &[u8]) -> JsValue {
    Uint8Array::from(data).into()
}

fn headers(list: &HeaderList) -> JsValue {
    let array = Array::new_with_length(list.len() as u32 * 2);
    for (i, (name, value)) in list.iter().enumerate() {
        array.set(2 * i as u32, JsValue::from_str(name));
        array.set(2 * i as u32 + 1, JsValue::from_str(value));
    }
    array.into()
}

/// A typed error: `{ code, message, status }`; the JS side makes it an error class.
pub(crate) fn error(info: &ErrorInfo) -> JsValue {
    object(&[
        ("code", JsValue::from_str(info.code)),
        ("message", JsValue::from_str(&info.message)),
        (
            "status",
            info.status.map_or(JsValue::UNDEFINED, JsValue::from),
        ),
    ])
}

fn closed(closed: &Closed) -> JsValue {
    object(&[
        ("code", JsValue::from(closed.code)),
        ("reason", JsValue::from_str(&closed.reason)),
        ("clean", JsValue::from_bool(closed.clean)),
        ("how", JsValue::from_str(closed.how)),
    ])
}

fn optional(text: &Option<String>) -> JsValue {
    text.as_deref()
        .map_or(JsValue::UNDEFINED, JsValue::from_str)
}

/// One outbox entry.
pub(crate) fn out(out: &Out) -> JsValue {
    let t = |name: &str| ("type", JsValue::from_str(name));
    match out {
        Out::Done { op } => object(&[t("done"), ("op", (*op).into())]),
        Out::Failed { op, error: e } => {
            object(&[t("failed"), ("op", (*op).into()), ("error", error(e))])
        }
        Out::Response {
            op,
            id,
            status,
            headers: h,
        } => object(&[
            t("response"),
            ("op", (*op).into()),
            ("id", (*id).into()),
            ("status", (*status).into()),
            ("headers", headers(h)),
        ]),
        Out::Chunk { op, data } => object(&[
            t("chunk"),
            ("op", (*op).into()),
            ("data", data.as_deref().map_or(JsValue::NULL, bytes)),
        ]),
        Out::Body { op, data } => object(&[t("body"), ("op", (*op).into()), ("data", bytes(data))]),
        Out::WsOpen {
            op,
            id,
            protocol,
            extensions,
        } => object(&[
            t("ws-open"),
            ("op", (*op).into()),
            ("id", (*id).into()),
            ("protocol", optional(protocol)),
            ("extensions", optional(extensions)),
        ]),
        Out::WsMessage { op, text, binary } => object(&[
            t("ws-message"),
            ("op", (*op).into()),
            ("text", optional(text)),
            (
                "binary",
                binary.as_deref().map_or(JsValue::UNDEFINED, bytes),
            ),
        ]),
        Out::WsClosed { op, closed: c } => {
            object(&[t("ws-closed"), ("op", (*op).into()), ("closed", closed(c))])
        }
        Out::ServerStarted { op, id } => object(&[
            t("server-started"),
            ("op", (*op).into()),
            ("id", (*id).into()),
        ]),
        Out::Request {
            server,
            id,
            method,
            target,
            headers: h,
            peer,
        } => object(&[
            t("request"),
            ("server", (*server).into()),
            ("id", (*id).into()),
            ("method", JsValue::from_str(method)),
            ("target", JsValue::from_str(target)),
            ("headers", headers(h)),
            ("peer", optional(peer)),
        ]),
    }
}

/// One socket action.
pub(crate) fn action(action: &Action) -> JsValue {
    let t = |name: &str| ("type", JsValue::from_str(name));
    match action {
        Action::Connect(c) => object(&[
            t("connect"),
            ("socket", c.socket.into()),
            ("host", JsValue::from_str(&c.host)),
            ("port", c.port.into()),
            ("tls", JsValue::from_bool(c.tls)),
        ]),
        Action::Write(id, data) => {
            object(&[t("write"), ("socket", (*id).into()), ("data", bytes(data))])
        }
        Action::End(id) => object(&[t("end"), ("socket", (*id).into())]),
        Action::Close(id) => object(&[t("close"), ("socket", (*id).into())]),
        Action::Resume(id) => object(&[t("resume"), ("socket", (*id).into())]),
    }
}
