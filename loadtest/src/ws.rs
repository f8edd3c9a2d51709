//! WebSocket clients: the connect helper (token in the `Authorization`
//! header, as the contract allows), drivers streaming pings on
//! `/v1/drivers/stream`, and watchers on `/v1/ws` measuring ping-to-screen
//! latency.
//!
//! Each WebSocket connection is one task (tungstenite's framing needs an
//! owner that is polled for reads and writes alike); at 10,000 connections
//! that is 10,000 small tasks, which tokio handles well.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use contract::{ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::clock::{now_ms, now_us};
use crate::fleet::{FleetStats, Schedule};
use crate::geo::LatLng;
use crate::ping;
use crate::roads::RoadNetwork;
use crate::stats::{Counter, SharedLatency, Window};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Read buffer per socket. tungstenite allocates its default 128 KiB up
/// front, which at 10,000 watchers is 1.3 GB of generator memory; frames
/// here are small JSON, and a bigger one just takes more reads.
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// Bytes gathered before a write; `flush` sends the rest (a driver flushes
/// after each batch).
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// Opens `url` with `Authorization: Bearer {token}`.
pub async fn connect(url: &str, token: &str) -> anyhow::Result<Socket> {
    let mut request = url
        .into_client_request()
        .with_context(|| format!("bad WebSocket URL {url}"))?;
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).context("token is not a header value")?,
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES);
    // `true`: no Nagle, a ping or frame goes out when flushed.
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .with_context(|| format!("WebSocket connect to {url}"))?;
    Ok(socket)
}

// ------------------------------------------------------------------ drivers

/// Errors the server answered on driver streams (refused pings).
#[derive(Default)]
pub struct DriverStreamStats {
    pub error_messages: Counter,
}

/// Runs one WebSocket driver until `stop`: pings on its phase of the open
/// loop, `batch` messages per flush.
#[allow(clippy::too_many_arguments)]
pub async fn run_driver(
    mut socket: Socket,
    index: usize,
    phase: Duration,
    start: Instant,
    schedule: Schedule,
    net: Arc<RoadNetwork>,
    stats: Arc<FleetStats>,
    errors: Arc<DriverStreamStats>,
    window: Window,
    stop: CancellationToken,
) {
    let period = schedule.period();
    let batch = schedule.batch;
    let sub_dt_s = 1.0 / schedule.ping_hz;
    let mut walker = schedule.walker(&net, index);
    let mut tick = tokio::time::interval_at(start + phase, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last_due: Option<Instant> = None;
    let mut payload = Vec::with_capacity(160);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            due = tick.tick() => {
                if let Some(prev) = last_due {
                    let skipped = ((due - prev).as_secs_f64() / period.as_secs_f64()).round() as u64;
                    stats.missed.add(skipped.saturating_sub(1) * batch as u64);
                }
                last_due = Some(due);
                if window.is_open() {
                    stats.lag.record_all(&[(Instant::now() - due).as_micros() as i64]);
                }
                let ts_now = now_ms();
                let mut ok = true;
                for b in 0..batch {
                    walker.advance(&net, sub_dt_s);
                    let back_ms = ((batch - 1 - b) as f64 * sub_dt_s * 1000.0) as i64;
                    payload.clear();
                    ping::write_json(&mut payload, &walker.fix(&net), ts_now - back_ms);
                    // The payload is ASCII JSON written by `ping::write_json`.
                    let text = String::from_utf8_lossy(&payload).into_owned();
                    if socket.feed(Message::text(text)).await.is_err() {
                        ok = false;
                        break;
                    }
                }
                if ok && socket.flush().await.is_ok() {
                    stats.sent.add(batch as u64);
                } else {
                    stats.disconnected.add(1);
                    return;
                }
            }
            msg = socket.next() => match msg {
                Some(Ok(Message::Text(_))) => errors.error_messages.add(1),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    stats.disconnected.add(1);
                    return;
                }
            },
        }
    }
    let _ = socket.close(None).await;
}

// ----------------------------------------------------------------- watchers

/// What the watchers share with the report.
#[derive(Default)]
pub struct WatcherStats {
    pub connected: Counter,
    pub connect_failed: Counter,
    pub disconnected: Counter,
    /// `drivers` frames and `location` messages received.
    pub frames: Counter,
    /// Driver positions in them.
    pub positions: Counter,
    pub error_messages: Counter,
    /// Ping `ts` to receipt.
    pub latency: SharedLatency,
}

/// The `ts` of every position in a server message: the entries of a
/// `drivers` frame, or a `location` message's own. `Err` for an `error`.
///
/// hexdash writes the `type` first and no other field named `ts` in these
/// two messages, so their stamps are read by scanning for `"ts":` rather
/// than parsing the JSON: at 300,000 positions/s a full parse costs the
/// generator most of a core, and its delay would count as latency. Any
/// other shape takes the full parse.
pub fn position_timestamps(text: &str) -> Result<Vec<i64>, ()> {
    const DRIVERS: &str = r#"{"type":"drivers","#;
    const LOCATION: &str = r#"{"type":"location","#;
    if text.starts_with(DRIVERS) || text.starts_with(LOCATION) {
        return Ok(scan_stamps(text));
    }
    parse_stamps(text)
}

/// Every integer that follows `"ts":` in `text`.
fn scan_stamps(text: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(r#""ts":"#) {
        rest = &rest[at + 5..];
        let digits = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'-')
            .count();
        if let Ok(ts) = rest[..digits].parse() {
            out.push(ts);
        }
        rest = &rest[digits..];
    }
    out
}

fn parse_stamps(text: &str) -> Result<Vec<i64>, ()> {
    let Ok(msg) = serde_json::from_str::<ServerMessage>(text) else {
        return Ok(Vec::new());
    };
    match msg {
        ServerMessage::Drivers(d) => Ok(d.drivers.iter().map(|d| d.ts).collect()),
        ServerMessage::Location(l) => Ok(vec![l.ts]),
        ServerMessage::Error(_) => Err(()),
        _ => Ok(Vec::new()),
    }
}

/// The `area` subscription message for a box of `side_m` around `centre`.
pub fn subscribe_area(centre: LatLng, side_m: f64) -> String {
    let message = ClientMessage {
        op: contract::ws::OP_SUBSCRIBE.to_owned(),
        channel: contract::ws::AREA_CHANNEL.to_owned(),
        bbox: Some(serde_json::json!(centre.bbox(side_m))),
        after: None,
    };
    // A struct of strings and numbers: serde_json cannot fail on it.
    serde_json::to_string(&message).unwrap_or_default()
}

/// Runs one watcher until `stop`. Positions recorded before `since_ms`
/// (snapshots of earlier pings) are not latencies and are skipped.
pub async fn run_watcher(
    mut socket: Socket,
    stats: Arc<WatcherStats>,
    window: Window,
    since_ms: Arc<std::sync::atomic::AtomicI64>,
    stop: CancellationToken,
) {
    let mut samples: Vec<i64> = Vec::with_capacity(256);
    loop {
        let msg = tokio::select! {
            () = stop.cancelled() => break,
            msg = socket.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                stats.disconnected.add(1);
                return;
            }
        };
        let received_us = now_us();
        let Ok(stamps) = position_timestamps(&text) else {
            stats.error_messages.add(1);
            continue;
        };
        if stamps.is_empty() {
            continue;
        }
        stats.frames.add(1);
        stats.positions.add(stamps.len() as u64);
        if window.is_open() {
            let since = since_ms.load(std::sync::atomic::Ordering::Relaxed);
            samples.clear();
            samples.extend(
                stamps
                    .iter()
                    .filter(|&&ts| ts >= since)
                    .map(|&ts| received_us - ts * 1000),
            );
            stats.latency.record_all(&samples);
        }
    }
    let _ = socket.close(None).await;
}

/// Connects a watcher and subscribes it; waits for the `subscribed` ack.
pub async fn connect_watcher(url: &str, token: &str, subscribe: String) -> anyhow::Result<Socket> {
    let mut socket = connect(url, token).await?;
    socket.send(Message::text(subscribe)).await?;
    let ack = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(msg) = socket.next().await {
            if let Message::Text(t) = msg? {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                match v.get("type").and_then(|t| t.as_str()) {
                    Some("subscribed") => return Ok(()),
                    Some("error") => anyhow::bail!("subscription refused: {t}"),
                    _ => {}
                }
            }
        }
        anyhow::bail!("closed before the subscription was acknowledged")
    })
    .await;
    ack.context("no subscription ack within 30 s")??;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_from_server_messages() {
        use contract::ws::{AreaDriver, Drivers, Location};
        use contract::{DriverStatus, ErrorMessage};
        let driver = |ts| AreaDriver {
            driver_id: uuid::Uuid::from_u128(ts as u128),
            lat: 1.0,
            lng: 2.0,
            status: DriverStatus::Available,
            ts,
        };
        // What the server writes (the contract's encoder): the scan and the
        // full parse agree.
        let frame = serde_json::to_string(&ServerMessage::Drivers(Drivers {
            drivers: vec![driver(10), driver(12)].into(),
        }))
        .expect("json");
        assert_eq!(position_timestamps(&frame), Ok(vec![10, 12]));
        assert_eq!(parse_stamps(&frame), Ok(vec![10, 12]));
        let loc = serde_json::to_string(&ServerMessage::Location(Location {
            order_id: None,
            driver_id: uuid::Uuid::from_u128(1),
            lat: 1.0,
            lng: 2.0,
            ts: 99,
            heading: Some(90.0),
            speed: None,
            eta_s: Some(5),
            delivery_eta_s: Some(8),
        }))
        .expect("json");
        assert_eq!(position_timestamps(&loc), Ok(vec![99]));
        assert_eq!(parse_stamps(&loc), Ok(vec![99]));
        // Another field order takes the full parse.
        let reordered = format!(
            r#"{{"drivers":[{}],"type":"drivers"}}"#,
            serde_json::to_string(&driver(7)).expect("json")
        );
        assert_eq!(position_timestamps(&reordered), Ok(vec![7]));
        assert_eq!(
            position_timestamps(r#"{"type":"drivers","drivers":[]}"#),
            Ok(vec![])
        );
        let ack = r#"{"type":"subscribed","channel":"area"}"#;
        assert_eq!(position_timestamps(ack), Ok(vec![]));
        let err = serde_json::to_string(&ServerMessage::Error(ErrorMessage {
            code: "x".into(),
            message: "y".into(),
            channel: None,
        }))
        .expect("json");
        assert_eq!(position_timestamps(&err), Err(()));
        assert_eq!(position_timestamps("not json"), Ok(vec![]));
    }

    #[test]
    fn area_subscription_shape() {
        let msg = subscribe_area(
            LatLng {
                lat: 57.7,
                lng: 11.97,
            },
            1000.0,
        );
        let v: serde_json::Value = serde_json::from_str(&msg).expect("json");
        assert_eq!(v["channel"], "area");
        let bbox = v["bbox"].as_array().expect("bbox");
        assert_eq!(bbox.len(), 4);
        assert!(bbox[0].as_f64() < bbox[2].as_f64());
    }
}
