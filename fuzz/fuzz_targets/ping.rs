//! One JSON ping, as MQTT payloads and driver WebSocket text messages carry
//! it: `ingest::wire::decode_ping`, then `RawPing::validate`, then the
//! WebSocket path (`ingest_text`: size limit, decode, validate, engine).
//!
//! Properties: no panic; an accepted ping is in range (coordinates,
//! timestamp window, heading, speed, accuracy finite and within their
//! bounds) and what the engine stored is in range; a batch element
//! (`decode_ping_value` on the parsed value) accepts every ping the byte
//! decoder accepts, with the same result (where the bytes parse as a
//! `serde_json::Value` at all).
#![no_main]

use engine::ping::{MAX_FUTURE_SKEW_MS, MAX_PING_AGE_MS, MAX_PLAUSIBLE_SPEED_MPS};
use ingest::fuzz_support::{Harness, NOW_MS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let harness = Harness::new();
    let driver = harness.driver_id();
    let decoded = ingest::wire::decode_ping(data);
    if let Ok(raw) = &decoded {
        // An unknown field is skipped unread, so a number beyond f64 or a
        // lone surrogate there passes alone, while the batch path's `Value`
        // refuses the whole body as not JSON (a 400): compared only where
        // the bytes are a `Value`.
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
            assert_eq!(
                ingest::wire::decode_ping_value(&value).as_ref(),
                Ok(raw),
                "a batch element decodes differently from the same bytes alone"
            );
        }
        if let Ok(ping) = raw.validate(driver, NOW_MS) {
            let p = ping.position;
            assert!(
                p.lat.is_finite() && (-90.0..=90.0).contains(&p.lat),
                "lat {}",
                p.lat
            );
            assert!(
                p.lng.is_finite() && (-180.0..=180.0).contains(&p.lng),
                "lng {}",
                p.lng
            );
            assert!(
                (NOW_MS - MAX_PING_AGE_MS..=NOW_MS + MAX_FUTURE_SKEW_MS)
                    .contains(&ping.recorded_at_ms),
                "ts {}",
                ping.recorded_at_ms
            );
            if let Some(h) = ping.heading_deg {
                assert!(h.is_finite() && (0.0..360.0).contains(&h), "heading {h}");
            }
            if let Some(s) = ping.speed_mps {
                assert!(
                    s.is_finite() && (0.0..=MAX_PLAUSIBLE_SPEED_MPS).contains(&s),
                    "speed {s}"
                );
            }
            if let Some(a) = ping.accuracy_m {
                assert!(a.is_finite() && a >= 0.0, "accuracy {a}");
            }
        }
    }
    let _ = harness.ws_text(data);
    if let Some(fix) = harness.engine().driver(driver).and_then(|v| v.fix) {
        let p = fix.position;
        assert!((-90.0..=90.0).contains(&p.lat) && (-180.0..=180.0).contains(&p.lng));
    }
});
