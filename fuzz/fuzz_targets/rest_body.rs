//! A REST request body through `api::extract::ApiJson` (the extractor of
//! every JSON route: axum's JSON reading, then `strict::from_value`) into
//! one of the routes' request types, picked by the first byte
//! (`api::fuzz_support::TYPES`).
//!
//! Properties: no panic; a refused body is a 4xx (never a 5xx: a bad body
//! is the client's mistake); request types that are also written (orders,
//! checkout) read back what they write.
#![no_main]

use api::fuzz_support::{Outcome, body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [kind, bytes @ ..] = data else {
        return;
    };
    if let Outcome::Refused(status) = body(*kind, bytes) {
        assert!(status.is_client_error(), "a bad body answered {status}");
    }
});
