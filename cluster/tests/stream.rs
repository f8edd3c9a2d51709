//! The event stream on a real Redis (`HEXDASH_TEST_REDIS_URL`; skipped
//! when unset, failing when set and unreachable): the publisher adds each
//! event once however often it is handed one, every group sees every
//! event, and the entries a stopped reader left pending are claimed by
//! another reader of its group.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cluster::{ReadConfig, Redis, StreamPublisher, StreamReader};
use events::{Actor, Aggregate, Consumer, Event, EventType, HandleError, Payload};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// Overall limit for anything a test waits for.
const WAIT: Duration = Duration::from_secs(15);

mod common;

/// The test Redis and a stream key of this test's own.
async fn redis() -> Option<(Redis, String)> {
    let (redis, prefix) = common::redis().await?;
    Some((redis, format!("{prefix}events")))
}

fn event(id: i64) -> Event {
    Event {
        id,
        event_type: EventType::OrderPaid,
        aggregate: Aggregate {
            kind: EventType::OrderPaid.aggregate_kind(),
            id: format!("order-{id}"),
        },
        version: 1,
        at_ms: 1_000 + id,
        actor: Actor::System("test".into()),
        payload: Payload::v1(serde_json::json!({"n": id})),
    }
}

/// Records the ids it is handed; `stall` makes it never answer (a reader
/// that hangs or died mid-entry).
#[derive(Default)]
struct Recorder {
    ids: Mutex<Vec<i64>>,
    stall: bool,
}

#[async_trait]
impl Consumer for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        if self.stall {
            std::future::pending::<()>().await;
        }
        self.ids.lock().push(event.id);
        Ok(())
    }
}

fn config(claim_idle_ms: u64) -> ReadConfig {
    ReadConfig {
        batch: 16,
        block_ms: 200,
        claim_idle_ms,
        // Longer than the test: a stalled handle stays stalled.
        handle_timeout_ms: 600_000,
        tries: 3,
    }
}

async fn until(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "not in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stream_len(redis: &Redis, key: &str) -> i64 {
    let mut cmd = redis::cmd("XLEN");
    cmd.arg(key);
    redis.query(&cmd).await.unwrap()
}

async fn delete(redis: &Redis, key: &str) {
    let mut cmd = redis::cmd("DEL");
    cmd.arg(key);
    redis.query::<i64>(&cmd).await.unwrap();
}

#[tokio::test]
async fn the_publisher_adds_each_event_once() {
    let Some((redis, key)) = redis().await else {
        return;
    };
    let publisher = StreamPublisher::new(redis.clone(), key.clone(), 1_000);
    let batch: Vec<Event> = (1..=5).map(event).collect();
    publisher.handle_many(&batch).await.unwrap();
    // A redelivery after a crash, and a second relay node's overlapping
    // batch: nothing is added twice, the new event is.
    publisher.handle_many(&batch).await.unwrap();
    let overlapping: Vec<Event> = (4..=6).map(event).collect();
    publisher.handle_many(&overlapping).await.unwrap();
    publisher.handle(&event(3)).await.unwrap();
    assert_eq!(stream_len(&redis, &key).await, 6);
    delete(&redis, &key).await;
}

#[tokio::test]
async fn every_group_sees_every_event_in_order() {
    let Some((redis, key)) = redis().await else {
        return;
    };
    let publisher = StreamPublisher::new(redis.clone(), key.clone(), 1_000);
    publisher
        .handle_many(&(1..=3).map(event).collect::<Vec<_>>())
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let nodes: Vec<Arc<Recorder>> = (0..2).map(|_| Arc::new(Recorder::default())).collect();
    for (n, node) in nodes.iter().enumerate() {
        // Node 0 loaded its state up to event 1; node 1 up to event 2.
        let reader = StreamReader::new(
            redis.clone(),
            key.clone(),
            format!("node:{n}"),
            format!("node-{n}"),
            n as i64 + 1,
            vec![node.clone()],
            config(30_000),
        )
        .removing_group_at_stop();
        tokio::spawn(reader.run(shutdown.clone()));
    }
    publisher
        .handle_many(&(4..=6).map(event).collect::<Vec<_>>())
        .await
        .unwrap();
    until(|| nodes.iter().all(|n| n.ids.lock().last() == Some(&6))).await;
    assert_eq!(*nodes[0].ids.lock(), vec![2, 3, 4, 5, 6]);
    assert_eq!(*nodes[1].ids.lock(), vec![3, 4, 5, 6]);
    shutdown.cancel();
    delete(&redis, &key).await;
}

#[tokio::test]
async fn a_stopped_readers_entries_are_claimed_by_another() {
    let Some((redis, key)) = redis().await else {
        return;
    };
    let publisher = StreamPublisher::new(redis.clone(), key.clone(), 1_000);
    let group = "cluster".to_owned();
    // The first reader takes the entries and hangs on the first.
    let hung = Arc::new(Recorder {
        stall: true,
        ..Recorder::default()
    });
    let first_stop = CancellationToken::new();
    let first = tokio::spawn(
        StreamReader::new(
            redis.clone(),
            key.clone(),
            group.clone(),
            "first".into(),
            0,
            vec![hung.clone()],
            config(300),
        )
        .run(first_stop.clone()),
    );
    publisher
        .handle_many(&(1..=4).map(event).collect::<Vec<_>>())
        .await
        .unwrap();
    // The entries are delivered to the first reader and not acknowledged.
    let pending = async || {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(&key).arg(&group);
        let reply: redis::Value = redis.query(&cmd).await.unwrap();
        match reply {
            redis::Value::Array(parts) => matches!(parts.first(), Some(redis::Value::Int(4))),
            _ => false,
        }
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while !pending().await {
        assert!(tokio::time::Instant::now() < deadline, "never pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // It dies (its task is gone; Redis still holds its entries).
    first.abort();
    let _ = first.await;
    let second = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    tokio::spawn(
        StreamReader::new(
            redis.clone(),
            key.clone(),
            group.clone(),
            "second".into(),
            0,
            vec![second.clone()],
            config(300),
        )
        .run(shutdown.clone()),
    );
    until(|| second.ids.lock().len() == 4).await;
    assert_eq!(*second.ids.lock(), vec![1, 2, 3, 4]);
    assert!(hung.ids.lock().is_empty());
    shutdown.cancel();
    first_stop.cancel();
    delete(&redis, &key).await;
}
