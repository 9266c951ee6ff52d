//! The chunked transfer coding (RFC 9112 §7.1), through a server connection.

use super::support::{first_error, serve, Ev, Server};
use crate::h1::{RemoteErrorKind as K, ServerConnectionConfig};

const HEAD: &str = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

fn body(chunked: &str) -> Vec<Ev> {
    serve(format!("{HEAD}{chunked}").as_bytes()).0
}

fn data_of(events: &[Ev]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Data(d) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn valid_bodies() {
    let cases: &[(&str, &[u8])] = &[
        ("0\r\n\r\n", b""),
        ("3\r\nabc\r\n0\r\n\r\n", b"abc"),
        ("A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        ("a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        ("0003\r\nabc\r\n000\r\n\r\n", b"abc"),
        ("3;ext\r\nabc\r\n0;last=yes\r\n\r\n", b"abc"),
        ("3 ;ext=\"quoted; value\"\r\nabc\r\n0\r\n\r\n", b"abc"),
        ("3\t;x\r\nabc\r\n0\r\n\r\n", b"abc"),
        ("1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", b"\r\n"),
    ];
    for &(chunked, want) in cases {
        let events = body(chunked);
        assert_eq!(first_error(&events), None, "{chunked:?} -> {events:?}");
        assert_eq!(data_of(&events), want, "{chunked:?}");
        assert!(matches!(events.last(), Some(Ev::Closed)), "{chunked:?}");
    }
}

#[test]
fn trailers() {
    let events = body("3\r\nabc\r\n0\r\nX-A: 1\r\nX-B: two words\r\n\r\n");
    assert_eq!(
        events[2],
        Ev::End(vec![
            ("x-a".into(), "1".into()),
            ("x-b".into(), "two words".into())
        ])
    );
    assert_eq!(
        first_error(&body("0\r\nX A: 1\r\n\r\n")),
        Some(K::InvalidTrailers)
    );
    assert_eq!(
        first_error(&body("0\r\nX: \x01\r\n\r\n")),
        Some(K::InvalidTrailers)
    );
    assert_eq!(
        first_error(&body("0\r\nX: 1\r\n b\r\n\r\n")),
        Some(K::InvalidTrailers)
    );
}

#[test]
fn malformed_bodies() {
    let cases: &[(&str, K)] = &[
        // Size line.
        ("\r\n", K::InvalidChunkSize),
        ("x\r\n", K::InvalidChunkSize),
        ("-1\r\n", K::InvalidChunkSize),
        ("+1\r\n", K::InvalidChunkSize),
        ("0x1\r\n", K::InvalidChunkSize),
        ("1 \r\na\r\n0\r\n\r\n", K::InvalidChunkSize),
        (" 1\r\na\r\n0\r\n\r\n", K::InvalidChunkSize),
        ("1\x00\r\na\r\n0\r\n\r\n", K::InvalidChunkSize),
        ("1;a\x01b\r\na\r\n0\r\n\r\n", K::InvalidChunkSize),
        // Overflow (checked arithmetic).
        ("10000000000000000\r\n", K::ChunkSizeOverflow),
        ("fffffffffffffffff\r\n", K::ChunkSizeOverflow),
        // Line endings.
        ("3\nabc\r\n0\r\n\r\n", K::BareLfInChunk),
        ("3;ext\nabc\r\n0\r\n\r\n", K::BareLfInChunk),
        ("3\rabc\r\n0\r\n\r\n", K::InvalidLineEnding),
        ("0\r\n\n", K::BareLfInChunk),
        ("0\r\n\rX", K::InvalidLineEnding),
        // Chunk data not followed by exactly CRLF.
        ("3\r\nabcd\r\n0\r\n\r\n", K::InvalidChunkTerminator),
        ("3\r\nabc\n0\r\n\r\n", K::InvalidChunkTerminator),
        ("3\r\nabc\rX0\r\n\r\n", K::InvalidChunkTerminator),
        ("3\r\nabc0\r\n\r\n", K::InvalidChunkTerminator),
        // Truncated.
        ("3\r\nab", K::IncompleteMessage),
        ("3\r\nabc\r\n", K::IncompleteMessage),
        ("0\r\n", K::IncompleteMessage),
        ("0\r\nX: 1\r\n", K::IncompleteMessage),
    ];
    for &(chunked, kind) in cases {
        let events = body(chunked);
        assert_eq!(
            first_error(&events),
            Some(kind),
            "{chunked:?} -> {events:?}"
        );
    }
}

#[test]
fn extension_and_trailer_limits() {
    let mut config = ServerConnectionConfig::default();
    config.limits.max_chunk_ext_size = 16;
    config.limits.max_trailer_size = 32;
    let run = |chunked: String| {
        let mut s = Server::with(config.clone());
        s.feed(format!("{HEAD}{chunked}").as_bytes()).eof();
        first_error(&s.events)
    };
    // Extension bytes add up across chunks of one body.
    assert_eq!(run(format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(15))), None);
    assert_eq!(
        run(format!(
            "1;{}\r\na\r\n1;{}\r\nb\r\n0\r\n\r\n",
            "e".repeat(10),
            "e".repeat(10)
        )),
        Some(K::ChunkExtensionTooLarge)
    );
    assert_eq!(
        run(format!("0;{}", "e".repeat(1000))),
        Some(K::ChunkExtensionTooLarge)
    );
    assert_eq!(run(format!("0\r\nx: {}\r\n\r\n", "v".repeat(10))), None);
    assert_eq!(
        run(format!("0\r\nx: {}\r\n\r\n", "v".repeat(40))),
        Some(K::TrailersTooLarge)
    );
    // Without a terminator, a trailer section is cut at the limit, not buffered forever.
    assert_eq!(
        run(format!("0\r\nx: {}", "v".repeat(1000))),
        Some(K::TrailersTooLarge)
    );
}

#[test]
fn byte_at_a_time_gives_the_same_result() {
    let input = format!(
        "{HEAD}5;e=1\r\nhello\r\n1a\r\n{}\r\n0\r\nX-T: 9\r\n\r\n",
        "z".repeat(26)
    );
    let whole = serve(input.as_bytes()).0;
    let cuts: Vec<usize> = (1..input.len()).collect();
    let split = Server::run_split(input.as_bytes(), &cuts).0;
    assert_eq!(whole, split);
    assert_eq!(first_error(&whole), None);
}

/// httparse takes a bare LF as a line end in the trailer section; the chunk lines around it
/// must end in CRLF, and so must the trailer lines. Found by comparing with the
/// `h1_differential` oracle: `0\r\nT: 1\n\r\n` was accepted with one trailer.
#[test]
fn bare_lf_in_trailer_section_is_refused() {
    for (chunked, at) in [("0\r\nT: 1\n\r\n", 7), ("0\r\nT: 1\r\nU: 2\n\r\n", 13)] {
        let events = body(chunked);
        assert_eq!(first_error(&events), Some(K::BareLfInChunk), "{chunked:?}");
        let offset = events.iter().find_map(|e| match e {
            Ev::Error(_, offset) => Some(*offset),
            _ => None,
        });
        assert_eq!(offset, Some((HEAD.len() + at) as u64), "{chunked:?}");
    }
    assert_eq!(first_error(&body("0\r\nT: 1\r\n\r\n")), None);
}
