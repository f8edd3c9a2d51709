//! A client message on the tracking WebSocket (`GET /v1/ws`): the size
//! limit, `ws_gateway::protocol::parse_request`, the reply, and for area
//! subscriptions the cell cover and the hub registration
//! (`ws_gateway::fuzz_support`). Text frames are UTF-8 (the WebSocket
//! layer refuses others), so only UTF-8 inputs are tried.
//!
//! Properties: no panic; every message gets exactly one reply, a JSON
//! object with a string `type`; an `error` reply has a `code`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_gateway::fuzz_support::ClientMessages;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let messages = ClientMessages::new();
    let reply = messages.text(text);
    let value: serde_json::Value = serde_json::from_str(&reply).expect("the reply is JSON");
    let kind = value["type"].as_str().expect("the reply has a type");
    if kind == "error" {
        assert!(
            value["code"].is_string(),
            "an error without a code: {reply}"
        );
    }
});
