//! What hexdash adds to MQTT: the embedded broker's per-connection codec
//! (`ingest::mqtt::acl`: CONNECT checks, the topic ACL, QoS 0 pings
//! decoded and applied in the connection's task), and the external
//! broker's deliveries (topic parsing and the ping payload).
//!
//! Input: the first byte picks the path. 0: a fresh, unauthenticated
//! connection; 1: a connection that already sent a valid CONNECT (the
//! fuzzer cannot forge a token); both get the rest as socket reads, cut
//! where the second byte says (rumqttd decodes what it has and reads again
//! on "need more bytes"). 2: an external broker's message, the topic's
//! length in the second byte, then the topic, then the payload.
//!
//! Properties: no panic, every routed packet consumes bytes, the engine
//! holds only positions in range, and nothing reaches the engine before a
//! valid CONNECT.
#![no_main]

use ingest::fuzz_support::Harness;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [mode, param, rest @ ..] = data else {
        return;
    };
    let harness = Harness::new();
    match mode % 3 {
        mode @ (0 | 1) => {
            let mut connection = harness.mqtt(mode == 1);
            let chunk = usize::from(*param).max(1);
            for read in rest.chunks(chunk) {
                connection.feed(read);
            }
            if mode == 0 {
                assert!(
                    harness.engine().driver(harness.driver_id()).is_none(),
                    "a ping was applied without a valid CONNECT"
                );
            }
        }
        _ => {
            let split = usize::from(*param).min(rest.len());
            let (topic, payload) = rest.split_at(split);
            harness.external_publish(topic, payload);
        }
    }
    if let Some(fix) = harness
        .engine()
        .driver(harness.driver_id())
        .and_then(|v| v.fix)
    {
        let p = fix.position;
        assert!((-90.0..=90.0).contains(&p.lat) && (-180.0..=180.0).contains(&p.lng));
    }
});
