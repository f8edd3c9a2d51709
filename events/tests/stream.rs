//! The event stream end to end on SQLite and PostgreSQL: versions, the
//! sequencer, dead letters and replays, restarts, the admin queries.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{Mode, Recorder, dual_test, eventually, new_event, start, stop, test_config};
use events::{AggregateKind, Backend, Consumer, EventFilter, EventType, ReplayOutcome};

/// Appenders on this many tasks at once.
const APPENDERS: usize = 50;
/// Transactions per appender.
const STEPS: usize = 4;

dual_test! {
    /// 50 appenders, each stepping its own order 4 times, every step also
    /// touching one shared restaurant: per-aggregate versions 1, 2, 3 …
    /// without gaps or duplicates, global ids gapless, and per aggregate
    /// the global order is the version order.
    async fn versions_are_gapless_under_concurrent_appenders(db) {
        let db = Arc::new(db);
        let steps = [
            EventType::OrderPlaced,
            EventType::OrderPaid,
            EventType::OrderAccepted,
            EventType::OrderPreparing,
        ];
        // The stream runs while they append, so the relay sequences
        // between commits (on PostgreSQL, past transactions that hold
        // lower insert ids and commit later).
        let total = APPENDERS * STEPS * 2;
        let recorder = Recorder::new("board", Mode::Record);
        let stream = start(&db, vec![recorder.clone() as Arc<dyn Consumer>], test_config());
        let mut tasks = Vec::new();
        for i in 0..APPENDERS {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for step in steps.iter().take(STEPS) {
                    let (_gate, mut tx) = db.begin().await;
                    // The order first, the shared aggregate second: one
                    // lock order, as the append docs ask.
                    events::append(&mut tx, &new_event(*step, &format!("order-{i:02}")))
                        .await
                        .expect("append order event");
                    events::append(&mut tx, &new_event(EventType::MenuUpdated, "shared"))
                        .await
                        .expect("append shared event");
                    tx.commit().await.expect("commit");
                    db.log.wake().notify();
                }
            }));
        }
        for t in tasks {
            t.await.expect("appender");
        }
        recorder.wait_handled(total).await;
        stop(stream).await;

        let handled = recorder.handled();
        let ids: Vec<i64> = handled.iter().map(|e| e.id).collect();
        assert_eq!(ids, (1..=total as i64).collect::<Vec<_>>(), "global ids in order, gapless");
        let mut versions: HashMap<String, Vec<i64>> = HashMap::new();
        for e in &handled {
            versions.entry(e.aggregate.id.clone()).or_default().push(e.version);
        }
        assert_eq!(versions.len(), APPENDERS + 1);
        for (aggregate, seen) in &versions {
            let n = if aggregate == "shared" { APPENDERS * STEPS } else { STEPS };
            // In delivery (global) order, so this also checks per-aggregate order.
            assert_eq!(seen, &(1..=n as i64).collect::<Vec<_>>(), "{aggregate}");
        }
        // Each order's steps came in the order they were taken.
        for i in 0..APPENDERS {
            let types: Vec<EventType> = handled
                .iter()
                .filter(|e| e.aggregate.id == format!("order-{i:02}"))
                .map(|e| e.event_type)
                .collect();
            assert_eq!(types, steps[..STEPS]);
        }
        assert_eq!(db.log.head().await.unwrap(), total as i64);
    }
}

/// On PostgreSQL insert ids are allocated at insert, not commit: a
/// transaction holding a lower one commits after a higher one was
/// published. It is still delivered (with a higher global id). SQLite has
/// one writer, so this cannot happen there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_with_a_lower_insert_id_is_still_delivered() {
    let Some(db) = common::postgres_db().await else {
        eprintln!("HEXDASH_TEST_DATABASE_URL is not a postgres:// url: skipped");
        return;
    };
    let recorder = Recorder::new("board", Mode::Record);
    let stream = start(
        &db,
        vec![recorder.clone() as Arc<dyn Consumer>],
        test_config(),
    );

    let (_g, mut slow) = db.begin().await;
    let low = events::append(&mut slow, &new_event(EventType::OrderPlaced, "slow"))
        .await
        .unwrap();
    let high = db.append_one(EventType::OrderPlaced, "fast").await;
    assert!(
        low.insert_id < high,
        "the slow transaction holds the lower insert id"
    );
    recorder.wait_handled(1).await;
    assert_eq!(recorder.handled()[0].aggregate.id, "fast");

    slow.commit().await.unwrap();
    db.log.wake().notify();
    recorder.wait_handled(2).await;
    let handled = recorder.handled();
    assert_eq!(
        handled
            .iter()
            .map(|e| (e.id, e.aggregate.id.as_str()))
            .collect::<Vec<_>>(),
        [(1, "fast"), (2, "slow")]
    );
    stop(stream).await;
}

dual_test! {
    /// A consumer that always fails ends in its dead letters after
    /// `max_attempts` tries per event, while another consumer (started with
    /// the failing one stuck on its first event) gets everything. Replaying
    /// a dead letter once the fault is fixed delivers it exactly once.
    async fn a_failing_consumer_is_dead_lettered_and_others_keep_going(db) {
        let good = Recorder::new("good", Mode::Record);
        let bad = Recorder::new("bad", Mode::Fail);
        for i in 0..5 {
            db.append_one(EventType::OrderPlaced, &format!("o{i}")).await;
        }
        // `bad` hangs on event 1 until released; `good` must not wait for it.
        *bad.block_on.lock().unwrap() = Some(1);
        let config = test_config();
        let stream = start(
            &db,
            vec![bad.clone() as Arc<dyn Consumer>, good.clone() as Arc<dyn Consumer>],
            config.clone(),
        );
        bad.wait_tries(1).await;
        good.wait_handled(5).await;
        assert_eq!(bad.total_tries(), 1, "bad is still stuck on its first try");
        bad.release.cancel();

        let attempts = config.max_attempts as usize;
        bad.wait_tries(5 * attempts).await;
        eventually("five dead letters", || async {
            db.log.position("bad").await.unwrap() == Some(5)
        })
        .await;
        let letters = db.log.dead_letters(Some("bad"), None, 100).await.unwrap();
        assert_eq!(
            letters.iter().map(|d| d.event_id).collect::<Vec<_>>(),
            [5, 4, 3, 2, 1],
            "newest first"
        );
        for d in &letters {
            assert_eq!((d.attempts, d.state.as_str()), (attempts as i64, "dead"));
            assert!(d.last_error.contains("refusing event"), "{}", d.last_error);
        }
        assert!(db.log.dead_letters(Some("good"), None, 100).await.unwrap().is_empty());
        assert_eq!(bad.total_tries(), 5 * attempts, "no try beyond max_attempts");

        // Fixed; replay event 3's dead letter (twice: the second is a no-op).
        *bad.mode.lock().unwrap() = Mode::Record;
        let letter = letters.iter().find(|d| d.event_id == 3).unwrap().id;
        assert_eq!(db.log.replay_dead_letter(letter).await.unwrap(), ReplayOutcome::Requested);
        // Queued or, if the runner was quick, already handled: either way
        // not queued twice.
        assert!(matches!(
            db.log.replay_dead_letter(letter).await.unwrap(),
            ReplayOutcome::AlreadyRequested | ReplayOutcome::AlreadyReplayed
        ));
        bad.wait_handled(1).await;
        eventually("the replay is marked", || async {
            db.log.dead_letter(letter).await.unwrap().unwrap().state == "replayed"
        })
        .await;
        assert_eq!(
            db.log.replay_dead_letter(letter).await.unwrap(),
            ReplayOutcome::AlreadyReplayed
        );
        assert_eq!(db.log.replay_dead_letter(9_999).await.unwrap(), ReplayOutcome::NotFound);

        // One more event passes through both, so the runner has looped
        // since the replay: the replay was still delivered only once.
        db.append_one(EventType::OrderPlaced, "o5").await;
        good.wait_handled(6).await;
        bad.wait_handled(2).await;
        stop(stream).await;
        assert_eq!(bad.handled_ids(), [3, 6]);
        assert_eq!(good.handled_ids(), [1, 2, 3, 4, 5, 6]);
    }
}

dual_test! {
    /// A consumer that panics is treated like one that fails: its tries are
    /// counted, the event goes to its dead letters with the panic's text,
    /// and its runner goes on to the next event (no restart needed).
    async fn a_panicking_consumer_is_dead_lettered_and_its_runner_goes_on(db) {
        let buggy = Recorder::new("buggy", Mode::Panic);
        db.append_one(EventType::OrderPlaced, "o1").await;
        let config = test_config();
        let stream = start(&db, vec![buggy.clone() as Arc<dyn Consumer>], config.clone());
        buggy.wait_tries(config.max_attempts as usize).await;
        eventually("the dead letter", || async {
            db.log.position("buggy").await.unwrap() == Some(1)
        })
        .await;
        let letters = db.log.dead_letters(Some("buggy"), None, 10).await.unwrap();
        assert_eq!(letters.len(), 1);
        assert!(
            letters[0].last_error.contains("panicked: consumer bug on event 1"),
            "{}",
            letters[0].last_error
        );
        // Fixed: the same runner handles the next event.
        *buggy.mode.lock().unwrap() = Mode::Record;
        db.append_one(EventType::OrderPlaced, "o2").await;
        buggy.wait_handled(1).await;
        stop(stream).await;
        assert_eq!(buggy.handled_ids(), [2]);
    }
}

dual_test! {
    /// A stopped runner resumes after its stored position; a crashed one
    /// (aborted, nothing written at the end) repeats only the event it was
    /// handling.
    async fn a_restart_resumes_from_the_stored_position(db) {
        let mut config = test_config();
        config.consumer_batch = 4;
        for i in 0..10 {
            db.append_one(EventType::OrderPlaced, &format!("o{i}")).await;
        }
        // A graceful stop records the position (the default checkpoint
        // interval is longer than the run).
        let first = Recorder::new("board", Mode::Record);
        let stream = start(&db, vec![first.clone() as Arc<dyn Consumer>], config.clone());
        first.wait_handled(10).await;
        stop(stream).await;
        assert_eq!(db.log.position("board").await.unwrap(), Some(10));

        for i in 10..15 {
            db.append_one(EventType::OrderPlaced, &format!("o{i}")).await;
        }
        // A crash while handling 13, with a checkpoint after every event.
        config.checkpoint_every = 1;
        let second = Recorder::new("board", Mode::Record);
        *second.block_on.lock().unwrap() = Some(13);
        let stream = start(&db, vec![second.clone() as Arc<dyn Consumer>], config.clone());
        second.wait_tries(3).await;
        eventually("position 12 recorded", || async {
            db.log.position("board").await.unwrap() == Some(12)
        })
        .await;
        stream.1.abort();
        assert!(stream.1.await.unwrap_err().is_cancelled());
        assert_eq!(second.handled_ids(), [11, 12]);

        let third = Recorder::new("board", Mode::Record);
        let stream = start(&db, vec![third.clone() as Arc<dyn Consumer>], config);
        third.wait_handled(3).await;
        stop(stream).await;
        assert_eq!(third.handled_ids(), [13, 14, 15], "only 13 again");
        assert_eq!(db.log.position("board").await.unwrap(), Some(15));
    }
}

dual_test! {
    /// Events appended while the stream runs are delivered (woken, not
    /// polled), and a consumer sees only the types it wants.
    async fn live_appends_reach_consumers_that_want_them(db) {
        struct OrdersOnly(Arc<Recorder>);
        #[async_trait::async_trait]
        impl Consumer for OrdersOnly {
            fn name(&self) -> &str {
                "orders-only"
            }
            fn wants(&self, t: EventType) -> bool {
                t.aggregate_kind() == AggregateKind::Order
            }
            async fn handle(&self, e: &events::Event) -> Result<(), events::HandleError> {
                self.0.handle(e).await
            }
        }
        let all = Recorder::new("all", Mode::Record);
        let orders = Recorder::new("inner", Mode::Record);
        let stream = start(
            &db,
            vec![
                all.clone() as Arc<dyn Consumer>,
                Arc::new(OrdersOnly(orders.clone())) as Arc<dyn Consumer>,
            ],
            test_config(),
        );
        for (i, t) in [EventType::OrderPlaced, EventType::DriverOnline, EventType::OrderPaid, EventType::UserBanned]
            .into_iter()
            .enumerate()
        {
            db.append_one(t, "x").await;
            all.wait_handled(i + 1).await;
        }
        orders.wait_handled(2).await;
        // `all` handled event 4, so `orders-only` has read past it too
        // unless it lags; wait for its position instead of its calls.
        eventually("orders-only passed event 4", || async {
            db.log.position("orders-only").await.unwrap() == Some(4)
        })
        .await;
        stop(stream).await;
        assert_eq!(orders.handled_ids(), [1, 3]);
        let versions: Vec<(AggregateKind, i64)> =
            all.handled().iter().map(|e| (e.aggregate.kind, e.version)).collect();
        assert_eq!(
            versions,
            [
                (AggregateKind::Order, 1),
                (AggregateKind::Driver, 1),
                (AggregateKind::Order, 2),
                (AggregateKind::User, 1)
            ]
        );
    }
}

dual_test! {
    /// The admin queries: filters, keyset pages, one aggregate's history.
    async fn the_admin_queries_filter_and_page(db) {
        for i in 0..7 {
            let t = if i % 2 == 0 { EventType::OrderPlaced } else { EventType::RestaurantUpdated };
            let (_gate, mut tx) = db.begin().await;
            let mut e = new_event(t, if i % 2 == 0 { "o1" } else { "r1" });
            e.at_ms = 1_000 + i;
            events::append(&mut tx, &e).await.unwrap();
            tx.commit().await.unwrap();
        }
        // Unsequenced events are not listed (PostgreSQL; SQLite's appends
        // number themselves).
        let listed = db.log.list_events(&EventFilter::default(), None, 10).await.unwrap();
        match db.backend {
            Backend::Postgres => assert!(listed.events.is_empty()),
            Backend::Sqlite => assert_eq!(listed.events.len(), 7),
        }
        let recorder = Recorder::new("sink", Mode::Record);
        let stream = start(&db, vec![recorder.clone() as Arc<dyn Consumer>], test_config());
        recorder.wait_handled(7).await;
        stop(stream).await;

        let page = |filter: EventFilter, before: Option<i64>, limit: u32| {
            let log = db.log.clone();
            async move {
                let p = log.list_events(&filter, before, limit).await.unwrap();
                (p.events.iter().map(|e| e.id).collect::<Vec<_>>(), p.next_before)
            }
        };
        assert_eq!(page(EventFilter::default(), None, 3).await, (vec![7, 6, 5], Some(5)));
        assert_eq!(page(EventFilter::default(), Some(5), 3).await, (vec![4, 3, 2], Some(2)));
        assert_eq!(page(EventFilter::default(), Some(2), 3).await, (vec![1], None));
        let restaurants = EventFilter { event_type: Some(EventType::RestaurantUpdated), ..Default::default() };
        assert_eq!(page(restaurants, None, 10).await, (vec![6, 4, 2], None));
        let order = EventFilter {
            aggregate: Some((AggregateKind::Order, "o1".to_owned())),
            from_ms: Some(1_002),
            until_ms: Some(1_006),
            ..Default::default()
        };
        assert_eq!(page(order, None, 10).await, (vec![5, 3], None));
        assert!(db.log.list_events(&EventFilter::default(), None, 0).await.is_err());

        let history = db.log.aggregate_events(AggregateKind::Order, "o1", 1, 10).await.unwrap();
        assert_eq!(history.iter().map(|e| (e.version, e.id)).collect::<Vec<_>>(), [(2, 3), (3, 5), (4, 7)]);
        assert_eq!(history[0].payload.body, serde_json::json!({"aggregate": "o1"}));
    }
}

dual_test! {
    /// Driver presence goes through its bounded queue into the stream; a
    /// full queue drops (and says so) instead of waiting.
    async fn driver_presence_reaches_the_stream_through_a_bounded_queue(db) {
        let (recorder, writer) = events::presence(
            db.log.clone(),
            events::PresenceConfig { capacity: 2, batch: 2 },
        );
        let driver = uuid::Uuid::now_v7();
        let change = |online, at_ms| events::PresenceChange { driver_id: driver, online, at_ms };
        assert!(recorder.record(change(true, 1)));
        assert!(recorder.record(change(false, 2)));
        assert!(!recorder.record(change(true, 3)), "the queue holds two");
        let shutdown = tokio_util::sync::CancellationToken::new();
        let writing = tokio::spawn(writer.run(shutdown.clone()));
        let sink = Recorder::new("sink", Mode::Record);
        let stream = start(&db, vec![sink.clone() as Arc<dyn Consumer>], test_config());
        sink.wait_handled(2).await;
        assert!(recorder.record(change(true, 4)));
        sink.wait_handled(3).await;
        shutdown.cancel();
        writing.await.unwrap();
        stop(stream).await;
        let seen: Vec<(EventType, i64, i64)> =
            sink.handled().iter().map(|e| (e.event_type, e.version, e.at_ms)).collect();
        assert_eq!(
            seen,
            [
                (EventType::DriverOnline, 1, 1),
                (EventType::DriverOffline, 2, 2),
                (EventType::DriverOnline, 3, 4)
            ]
        );
        assert_eq!(sink.handled()[0].aggregate.id, driver.to_string());
    }
}

dual_test! {
    /// A rolled-back append leaves no gap in the global ids: on SQLite the
    /// append numbered its row itself, and the rollback takes the number
    /// back with it.
    async fn a_rolled_back_append_leaves_no_gap(db) {
        let (gate, mut tx) = db.begin().await;
        events::append(&mut tx, &new_event(EventType::OrderPlaced, "o-kept-1")).await.unwrap();
        tx.commit().await.unwrap();
        drop(gate);
        let (gate, mut tx) = db.begin().await;
        events::append(&mut tx, &new_event(EventType::OrderPlaced, "o-rolled-back")).await.unwrap();
        tx.rollback().await.unwrap();
        drop(gate);
        let (gate, mut tx) = db.begin().await;
        events::append(&mut tx, &new_event(EventType::OrderPaid, "o-kept-1")).await.unwrap();
        events::append(&mut tx, &new_event(EventType::OrderPlaced, "o-kept-2")).await.unwrap();
        tx.commit().await.unwrap();
        drop(gate);
        let recorder = Recorder::new("sink", Mode::Record);
        let stream = start(&db, vec![recorder.clone() as Arc<dyn Consumer>], test_config());
        recorder.wait_handled(3).await;
        stop(stream).await;
        assert_eq!(recorder.handled_ids(), [1, 2, 3]);
        let versions: Vec<(String, i64)> = recorder
            .handled()
            .iter()
            .map(|e| (e.aggregate.id.clone(), e.version))
            .collect();
        assert_eq!(
            versions,
            [("o-kept-1".to_owned(), 1), ("o-kept-1".to_owned(), 2), ("o-kept-2".to_owned(), 1)]
        );
    }
}

/// A consumer that takes batches: it records each call's ids, refuses a
/// batch (and the lone delivery) of the event `poison`.
struct Batcher {
    calls: std::sync::Mutex<Vec<Vec<i64>>>,
    singles: Arc<Recorder>,
    poison: i64,
}

#[async_trait::async_trait]
impl Consumer for Batcher {
    fn name(&self) -> &str {
        "batcher"
    }
    fn wants(&self, t: EventType) -> bool {
        t == EventType::OrderPlaced
    }
    async fn handle(&self, e: &events::Event) -> Result<(), events::HandleError> {
        if e.id == self.poison {
            return Err("poison".into());
        }
        self.singles.handle(e).await
    }
    fn handles_many(&self) -> bool {
        true
    }
    async fn handle_many(&self, batch: &[events::Event]) -> Result<(), events::HandleError> {
        self.calls
            .lock()
            .unwrap()
            .push(batch.iter().map(|e| e.id).collect());
        if batch.iter().any(|e| e.id == self.poison) {
            return Err("poison in the batch".into());
        }
        Ok(())
    }
}

dual_test! {
    /// A consumer that handles many gets each read's wanted events in one
    /// call (unwanted ones skipped, lone ones one at a time); a batch it
    /// refuses is delivered one at a time, so only the bad event is
    /// dead-lettered and the rest are handled.
    async fn batches_go_together_and_a_refused_one_goes_one_at_a_time(db) {
        let mut config = test_config();
        config.consumer_batch = 4;
        for i in 0..6 {
            let t = if i == 1 { EventType::DriverOnline } else { EventType::OrderPlaced };
            db.append_one(t, &format!("o{i}")).await;
        }
        // Ids 1..=6, id 2 unwanted. Reads of 4: [1, 2, 3, 4], [5, 6].
        let batcher = Arc::new(Batcher {
            calls: std::sync::Mutex::new(Vec::new()),
            singles: Recorder::new("singles", Mode::Record),
            poison: 6,
        });
        let stream = start(&db, vec![batcher.clone() as Arc<dyn Consumer>], config.clone());
        eventually("past event 6", || async {
            db.log.position("batcher").await.unwrap() == Some(6)
        })
        .await;
        stop(stream).await;
        // Reads of 4 from position 0 give [1, 2, 3, 4] and [5, 6] once
        // the relay has published all six (it may publish fewer first:
        // then the reads are shorter and a lone wanted event goes alone).
        let calls = batcher.calls.lock().unwrap().clone();
        assert!(!calls.is_empty(), "no batch at all");
        let mut handled: Vec<i64> = calls
            .iter()
            .filter(|c| !c.contains(&6))
            .flatten()
            .copied()
            .chain(batcher.singles.handled_ids())
            .collect();
        handled.sort_unstable();
        assert_eq!(handled, [1, 3, 4, 5], "each wanted event once, 6 never: {calls:?}");
        assert!(calls.iter().all(|c| c.len() >= 2 && !c.contains(&2)), "{calls:?}");
        assert!(calls.iter().any(|c| c.contains(&6)), "{calls:?}");
        let letters = db.log.dead_letters(Some("batcher"), None, 10).await.unwrap();
        assert_eq!(letters.iter().map(|l| l.event_id).collect::<Vec<_>>(), [6]);
    }
}
