//! Ping decoding on the ingest edge. Run: `cargo bench -p bench --bench ingest`.
//! Ids are stable (`ingest/decode_ping/<stage>/<ping>`): keep them so results
//! compare across commits.
//!
//! Every ping of every driver is decoded and validated before the engine
//! sees it, on the connection's task, whichever path it came by (MQTT,
//! WebSocket, HTTP). Its cost per ping is part of the budget of every ping
//! the broker takes in (see the MQTT table in `docs/BENCHMARKS.md`), next to
//! the engine's own `engine/update`. Stages:
//!
//! - `decode`: `ingest::wire::decode_ping`, bytes to `RawPing` (JSON only).
//! - `validated`: decode, then `RawPing::validate` into an engine `Ping` or a
//!   `PingRejection`: the per-ping work every path shares.
//! - `mqtt_qos0`: what the MQTT ACL does per QoS 0 PUBLISH before the engine
//!   (compare the topic with the connection's own location topic, check the
//!   size limit, decode, validate). `acl::on_publish` and `consumer::decode`
//!   are private, so this rebuilds them from their public pieces: keep it in
//!   step with them. Applying the batch under the engine lock is
//!   `engine/update`'s business, not measured here.
//!
//! Pings: 1,024 drivers of the seeded fleet (`bench::Fleet`, `bench::SEED`),
//! each encoded as
//! - `contract`: the contract's full ping, in the exact form `loadtest`
//!   sends (`loadtest/src/ping.rs`):
//!   `{"lat":57.708912,"lng":11.974600,"ts":1763700000123,"heading":90,"speed":8.3,"accuracy":5}`;
//! - `minimal`: only the required fields, `{"lat","lng","ts"}`;
//! - `rejected_lat_out_of_range`: the contract form with 90° added to the
//!   latitude. It decodes, and validation refuses it (`out_of_range`).
//!
//! One iteration is one ping; the pings rotate so the branch predictor does
//! not learn a single payload.

use std::hint::black_box;
use std::io::Write;

use bench::{City, Fleet, SEED};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::{DriverId, Ping, PingRejection};
use ingest::{topics, wire};
use rand::Rng;

/// Distinct payloads per scenario.
const PAYLOADS: usize = 1_024;

#[derive(Clone, Copy)]
enum Form {
    Contract,
    Minimal,
    LatOutOfRange,
}

impl Form {
    const ALL: [Form; 3] = [Form::Contract, Form::Minimal, Form::LatOutOfRange];

    fn name(self) -> &'static str {
        match self {
            Form::Contract => "contract",
            Form::Minimal => "minimal",
            Form::LatOutOfRange => "rejected_lat_out_of_range",
        }
    }

    /// What `validate` makes of a ping of this form.
    fn expected(self) -> Result<(), PingRejection> {
        match self {
            Form::Contract | Form::Minimal => Ok(()),
            Form::LatOutOfRange => Err(PingRejection::OutOfRange),
        }
    }
}

/// Pings at the fleet's positions and the server time they arrive at. All
/// arrive on one driver's connection: the id is only stamped on the `Ping`.
struct Payloads {
    driver_id: DriverId,
    pings: Vec<Vec<u8>>,
    now_ms: i64,
}

/// The fleet's first pings, recorded up to a second before they arrive,
/// with the heading and speed a moving driver reports.
fn payloads(form: Form) -> Payloads {
    let mut fleet = Fleet::uniform(SEED, PAYLOADS, City::gothenburg_30km());
    let now_ms = fleet.clock_ms + 1_000;
    let mut pings = Vec::with_capacity(PAYLOADS);
    for p in fleet.initial_pings() {
        let rng = fleet.rng();
        let ts_ms = p.recorded_at_ms + rng.random_range(0..1_000);
        let heading_deg: u16 = rng.random_range(0..360);
        let speed_mps: f64 = rng.random_range(0.0..15.0);
        let mut out = Vec::with_capacity(128);
        let (lat, lng) = (p.position.lat, p.position.lng);
        // Writing into a Vec cannot fail.
        let _ = match form {
            // The format string of `loadtest::ping::write_json`.
            Form::Contract => write!(
                out,
                r#"{{"lat":{lat:.6},"lng":{lng:.6},"ts":{ts_ms},"heading":{heading_deg},"speed":{speed_mps:.1},"accuracy":5}}"#
            ),
            Form::Minimal => write!(out, r#"{{"lat":{lat:.6},"lng":{lng:.6},"ts":{ts_ms}}}"#),
            Form::LatOutOfRange => write!(
                out,
                r#"{{"lat":{:.6},"lng":{lng:.6},"ts":{ts_ms},"heading":{heading_deg},"speed":{speed_mps:.1},"accuracy":5}}"#,
                lat + 90.0
            ),
        };
        pings.push(out);
    }
    let driver_id = fleet.drivers[0];
    for ping in &pings {
        let got =
            wire::decode_ping(ping).and_then(|raw| raw.validate(driver_id, now_ms).map(|_| ()));
        assert_eq!(
            got,
            form.expected(),
            "{}: {}",
            form.name(),
            String::from_utf8_lossy(ping)
        );
    }
    Payloads {
        driver_id,
        pings,
        now_ms,
    }
}

/// The parts of a QoS 0 PUBLISH the ACL reads.
struct Publish<'a> {
    topic: &'a [u8],
    payload: &'a [u8],
}

/// `acl::on_publish` for a QoS 0 ping, then `consumer::decode`, up to the
/// valid ping joining the connection's batch.
fn mqtt_qos0(
    own_topic: &str,
    publish: &Publish<'_>,
    max_ping_bytes: usize,
    driver_id: DriverId,
    now_ms: i64,
) -> Result<Ping, PingRejection> {
    if publish.topic != own_topic.as_bytes() {
        return Err(PingRejection::WrongDriver);
    }
    if publish.payload.len() > max_ping_bytes {
        return Err(PingRejection::TooLarge);
    }
    wire::decode_ping(publish.payload)?.validate(driver_id, now_ms)
}

fn decode_ping(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest/decode_ping");
    group.throughput(Throughput::Elements(1));
    let max_ping_bytes = ingest::Config::default().max_ping_bytes;
    for form in Form::ALL {
        let Payloads {
            driver_id,
            pings,
            now_ms,
        } = payloads(form);
        // Decoding alone cannot refuse an out-of-range latitude: only the
        // stages that validate measure the rejected ping.
        if form.expected().is_ok() {
            let mut i = 0;
            group.bench_function(BenchmarkId::new("decode", form.name()), |b| {
                b.iter(|| {
                    i = (i + 1) % pings.len();
                    black_box(wire::decode_ping(black_box(&pings[i])))
                })
            });
        }
        let mut i = 0;
        group.bench_function(BenchmarkId::new("validated", form.name()), |b| {
            b.iter(|| {
                i = (i + 1) % pings.len();
                black_box(
                    wire::decode_ping(black_box(&pings[i]))
                        .and_then(|raw| raw.validate(driver_id, now_ms)),
                )
            })
        });
        // The connection's own topic is built once at CONNECT; each PUBLISH
        // compares bytes with it.
        let own_topic = topics::location(driver_id);
        let published = own_topic.clone().into_bytes();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("mqtt_qos0", form.name()), |b| {
            b.iter(|| {
                i = (i + 1) % pings.len();
                let publish = Publish {
                    topic: black_box(&published),
                    payload: black_box(&pings[i]),
                };
                black_box(mqtt_qos0(
                    &own_topic,
                    &publish,
                    max_ping_bytes,
                    driver_id,
                    now_ms,
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode_ping);
criterion_main!(benches);
