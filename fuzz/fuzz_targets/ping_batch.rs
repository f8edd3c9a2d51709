//! The body of `POST /v1/drivers/{driver_id}/locations`: a JSON array of
//! pings, parsed, decoded one by one and applied as the route does
//! (`ingest::http`).
//!
//! Properties: no panic; a body that is accepted is answered for every
//! element exactly once (applied + stale + duplicate + rejected = the
//! array's length), rejections in index order and within the array; what
//! the engine stored is in range.
#![no_main]

use ingest::fuzz_support::Harness;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let harness = Harness::new();
    let Some(result) = harness.http_batch(data) else {
        return;
    };
    let items = serde_json::from_slice::<Vec<serde_json::Value>>(data)
        .expect("an accepted batch is a JSON array")
        .len() as u64;
    let answered = result.applied + result.stale + result.duplicate + result.rejected.len() as u64;
    assert_eq!(answered, items, "every ping answered once: {result:?}");
    assert!(result.rejected.windows(2).all(|w| w[0].index < w[1].index));
    assert!(result.rejected.iter().all(|r| r.index < items));
    if let Some(fix) = harness
        .engine()
        .driver(harness.driver_id())
        .and_then(|v| v.fix)
    {
        let p = fix.position;
        assert!((-90.0..=90.0).contains(&p.lat) && (-180.0..=180.0).contains(&p.lng));
    }
});
