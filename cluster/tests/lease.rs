//! Leases on a real Redis (`HEXDASH_TEST_REDIS_URL`; skipped when unset,
//! failing when set and unreachable): the primitives (acquire once,
//! extend and release only with our value) and the state machine of
//! [`Leases`] (take with a fresh token, renew, lose when another node
//! holds it, give back at the stop, another node takes over).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cluster::lease::{Fencing, Lease, Listener};
use cluster::{LeaseConfig, Leases};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// Overall limit for anything a test waits for.
const WAIT: Duration = Duration::from_secs(15);

mod common;
use common::redis;

/// Epochs as the database would hand them out: one counter per test.
#[derive(Default)]
struct Epochs(AtomicI64);

#[async_trait]
impl Fencing for Epochs {
    async fn bump(&self, _: &str, _: &str) -> Result<i64, String> {
        Ok(self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// What a node's listener heard.
#[derive(Default)]
struct Heard(Mutex<Vec<String>>);

impl Listener for Heard {
    fn acquired(&self, name: &str, token: i64) {
        self.0.lock().push(format!("acquired {name} {token}"));
    }
    fn lost(&self, name: &str) {
        self.0.lock().push(format!("lost {name}"));
    }
}

impl Heard {
    fn all(&self) -> Vec<String> {
        self.0.lock().clone()
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_primitives_compare_before_they_extend_or_delete() {
    let Some((redis, prefix)) = redis().await else {
        return;
    };
    let lease = Lease::new(redis.clone(), format!("{prefix}lease:region:x"));
    assert!(lease.acquire("a:1", 5_000).await.unwrap(), "free: taken");
    assert!(
        !lease.acquire("b:1", 5_000).await.unwrap(),
        "held: not taken"
    );
    assert!(!lease.extend("b:1", 5_000).await.unwrap(), "not b's");
    assert!(lease.extend("a:1", 5_000).await.unwrap(), "a's");
    assert!(!lease.release("b:1").await.unwrap(), "b cannot delete a's");
    assert!(lease.release("a:1").await.unwrap(), "a gives it back");
    assert!(
        !lease.extend("a:1", 5_000).await.unwrap(),
        "gone: no extend"
    );
    assert!(lease.acquire("b:1", 100).await.unwrap(), "free again");
    // Expired: nobody holds it, its old holder cannot extend it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!lease.extend("b:1", 5_000).await.unwrap(), "expired");
    assert!(lease.acquire("a:2", 5_000).await.unwrap());
    assert!(lease.release("a:2").await.unwrap());
}

#[tokio::test]
async fn a_lease_moves_to_another_node_with_a_higher_token() {
    let Some((redis, prefix)) = redis().await else {
        return;
    };
    let epochs: Arc<Epochs> = Arc::default();
    let config = LeaseConfig {
        lease_ms: 600,
        renew_ms: 100,
    };
    let a = Leases::new(redis.clone(), &prefix, "node-a", config, epochs.clone());
    let b = Leases::new(redis.clone(), &prefix, "node-b", config, epochs.clone());
    let (heard_a, heard_b) = (Arc::new(Heard::default()), Arc::new(Heard::default()));

    // a takes it first; b, asking too, does not get it while a renews.
    a.want("region:r1");
    a.round(heard_a.as_ref()).await;
    assert_eq!(a.token("region:r1"), Some(1));
    assert_eq!(heard_a.all(), ["acquired region:r1 1"]);
    b.want("region:r1");
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        a.round(heard_a.as_ref()).await;
        b.round(heard_b.as_ref()).await;
    }
    assert_eq!(a.token("region:r1"), Some(1), "renewed past its lease time");
    assert_eq!(b.token("region:r1"), None);
    assert!(heard_b.all().is_empty());
    let held = a.held();
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].name.as_str(), held[0].token), ("region:r1", 1));
    assert!(held[0].expires_in_ms <= 600);

    // a stops renewing (paused): its token is gone when the lease runs
    // out, b takes the lease with a higher token, and a's next round finds
    // it lost.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(a.token("region:r1"), None, "ran out locally");
    b.round(heard_b.as_ref()).await;
    assert_eq!(b.token("region:r1"), Some(2));
    a.round(heard_a.as_ref()).await;
    assert_eq!(heard_a.all(), ["acquired region:r1 1", "lost region:r1"]);
    assert_eq!(a.token("region:r1"), None);

    // b runs its loop and gives the lease back at the stop: a takes it at
    // once (its next round), with token 3.
    let stop = CancellationToken::new();
    let run = tokio::spawn(b.clone().run(heard_b.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(b.token("region:r1"), Some(2), "b's loop renews");
    stop.cancel();
    run.await.unwrap();
    assert_eq!(heard_b.all(), ["acquired region:r1 2", "lost region:r1"]);
    a.round(heard_a.as_ref()).await;
    assert_eq!(a.token("region:r1"), Some(3));
}

#[tokio::test]
async fn a_lease_taken_over_while_its_holder_is_paused_is_lost_on_its_next_round() {
    let Some((redis, prefix)) = redis().await else {
        return;
    };
    let epochs: Arc<Epochs> = Arc::default();
    let config = LeaseConfig {
        lease_ms: 400,
        renew_ms: 100,
    };
    let a = Leases::new(redis.clone(), &prefix, "node-a", config, epochs.clone());
    let heard_a = Arc::new(Heard::default());
    a.want("relay");
    let stop = CancellationToken::new();
    tokio::spawn(a.clone().run(heard_a.clone(), stop.clone()));
    eventually("a takes the relay lease", || a.token("relay").is_some()).await;

    // Another node overwrites the key (as after a's lease ran out during a
    // pause): a's compare-and-extend fails and it lets go.
    let mut set = redis::cmd("SET");
    set.arg(format!("{prefix}lease:relay"))
        .arg("node-b:other")
        .arg("PX")
        .arg(5_000);
    let _: () = redis.query(&set).await.unwrap();
    eventually("a notices", || heard_a.all().contains(&"lost relay".into())).await;
    assert_eq!(a.token("relay"), None);
    stop.cancel();
    // b's value was never a's to delete.
    let mut get = redis::cmd("GET");
    get.arg(format!("{prefix}lease:relay"));
    let value: Option<String> = redis.query(&get).await.unwrap();
    assert_eq!(value.as_deref(), Some("node-b:other"));
}
