//! Presence: drivers that stopped pinging become offline. The engine knows
//! the rule (its `presence_timeout_s`) but never reads the clock, so this
//! loop gives it the time.

use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use clock::Clock;

/// Shortest sweep interval: a misconfigured 0 must not spin the loop.
const MIN_SWEEP_MS: u64 = 10;

/// Every `interval_ms`, marks offline the drivers whose last ping is older
/// than the engine's presence timeout. Returns when `shutdown` is cancelled.
pub async fn run(
    engine: engine::Handle,
    clock: Arc<dyn Clock>,
    interval_ms: u64,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(interval_ms.max(MIN_SWEEP_MS)));
    // After a stall, sweep once and keep the rhythm; a burst of catch-up
    // sweeps would find nothing more.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let expired = engine.expire(clock.now_ms());
                if expired > 0 {
                    tracing::debug!(expired, "drivers went offline (no recent ping)");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::now_ms;
    use engine::{DriverId, DriverStatus, LatLng, Ping};

    #[tokio::test]
    async fn silent_drivers_go_offline_and_the_loop_stops_on_shutdown() {
        let engine = engine::Handle::new(engine::Config::default());
        let timeout_ms = engine::Config::default().presence_timeout_s as i64 * 1000;
        let now = now_ms();
        let ping = |driver_id, at_ms| Ping {
            driver_id,
            position: LatLng::new(57.7, 11.97).unwrap(),
            recorded_at_ms: at_ms,
            heading_deg: None,
            speed_mps: None,
            accuracy_m: None,
        };
        let silent = DriverId::new();
        let fresh = DriverId::new();
        engine.apply_ping(
            &ping(silent, now - timeout_ms - 5_000),
            now - timeout_ms - 5_000,
        );
        engine.apply_ping(&ping(fresh, now), now);
        let status = |id| engine.driver(id).map(|d| d.status);
        assert_eq!(status(silent), Some(DriverStatus::Available));

        let mut changes = engine.subscribe_changes();
        let shutdown = CancellationToken::new();
        let sweep = tokio::spawn(run(
            engine.clone(),
            Arc::new(clock::SystemClock),
            10,
            shutdown.clone(),
        ));
        let went_offline = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let engine::Change::DriverStatus {
                    driver_id, status, ..
                } = changes.recv_direct().await.unwrap()
                {
                    return (driver_id, status);
                }
            }
        })
        .await
        .expect("the silent driver never went offline");
        assert_eq!(went_offline, (silent, DriverStatus::Offline));
        assert_eq!(status(silent), Some(DriverStatus::Offline));
        assert_eq!(status(fresh), Some(DriverStatus::Available));
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), sweep)
            .await
            .unwrap()
            .unwrap();
    }
}
