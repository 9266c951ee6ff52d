//! Tests of the HTTP/1.1 state machines: RFC edge cases per rule, and properties.

mod chunked;
mod client;
mod props;
mod server;
mod support;
