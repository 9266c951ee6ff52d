//! A chunked `POST` whose body is the fuzz input, fed to a server whole and in fuzzer-chosen
//! pieces. On top of the server checks: the body data is the same in both runs and matches
//! a reference decoder, `End` comes only once a valid last chunk (and trailer section) has
//! arrived, and every plainly valid body (no extensions, no trailers) is accepted.
//! Input: one byte seeding the split, then the chunked body (and whatever follows it).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_fuzz::{chunked_lenient, chunked_strict, Chunked, Norm, ServerDriver};

const HEAD: &[u8] =
    b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n";

fuzz_target!(|input: &[u8]| {
    let Some((&seed, body)) = input.split_first() else {
        return;
    };
    let mut data = HEAD.to_vec();
    data.extend_from_slice(body);
    let (whole, split) = tether_fuzz::check_server(seed, &data);
    let whole_data = check_body(&whole, body);
    let split_data = check_body(&split, body);
    assert_eq!(
        whole_data, split_data,
        "body data differs between whole and split runs"
    );
});

/// Checks the first request's events against the reference decoders; returns its data.
fn check_body(run: &ServerDriver, body: &[u8]) -> Vec<u8> {
    let events = &run.rec.events;
    assert!(
        matches!(events.first(), Some(Norm::Request { method, .. }) if method == "POST"),
        "the fixed head did not give a POST request: {events:#?}"
    );
    let (got, at) = match events.get(1) {
        Some(Norm::Data(data)) => (data.clone(), 2),
        _ => (Vec::new(), 1),
    };
    let outcome = events.get(at);
    match outcome {
        Some(Norm::End { trailers }) => match chunked_lenient(body) {
            Chunked::Complete {
                data,
                end,
                trailers: has_trailers,
            } => {
                assert_eq!(got, data, "body data differs from the reference decoding");
                let needed = (HEAD.len() + end) as u64;
                assert!(
                    run.rec.fed_at[at] >= needed,
                    "End after {} bytes, before the last chunk ended at {needed}",
                    run.rec.fed_at[at]
                );
                assert_eq!(
                    trailers.is_some(),
                    has_trailers,
                    "trailers {trailers:?} but reference says trailer section non-empty: {has_trailers}"
                );
            }
            other => panic!("the core ended the chunked body; the reference says {other:?}"),
        },
        Some(Norm::RemoteError { .. }) => {}
        other => panic!("chunked body neither ended nor failed: {other:?}\n{events:#?}"),
    }
    if let Chunked::Complete { data, .. } = chunked_strict(body) {
        assert!(
            matches!(outcome, Some(Norm::End { trailers: None })),
            "a plainly valid chunked body was not accepted: {outcome:?}"
        );
        assert_eq!(
            got, data,
            "body data differs from the strict reference decoding"
        );
    }
    got
}
