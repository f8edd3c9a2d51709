//! Consumers added and removed while the stream runs ([`events::Consumers`]):
//! an added consumer starts at the head (no history), a slow one holds up
//! nobody, a removed one stops and leaves no position or dead letters.

mod common;

use std::sync::Arc;

use common::{Mode, Recorder, dual_test, eventually, test_config};
use events::{Consumer, Consumers, EventType};
use tokio_util::sync::CancellationToken;

dual_test! {
    async fn added_consumers_start_at_the_head_and_removed_ones_leave_nothing(db) {
        let board = Recorder::new("board", Mode::Record);
        let consumers = Consumers::from_list(vec![board.clone() as Arc<dyn Consumer>]).unwrap();
        let shutdown = CancellationToken::new();
        let stream = tokio::spawn(events::run_with(
            db.log.clone(),
            consumers.clone(),
            test_config(),
            shutdown.clone(),
        ));
        db.append_one(EventType::OrderPlaced, "o1").await;
        db.append_one(EventType::OrderPaid, "o1").await;
        board.wait_handled(2).await;

        // Added after two events: it sees only what comes next.
        let late = Recorder::new("late", Mode::Record);
        consumers.add(late.clone()).await.unwrap();
        assert!(consumers.add(late.clone()).await.is_err(), "one runner per name");
        // A consumer that blocks on its first event holds up nobody else.
        let stuck = Recorder::new("stuck", Mode::Record);
        *stuck.block_on.lock().unwrap() = Some(3);
        consumers.add(stuck.clone()).await.unwrap();
        let failing = Recorder::new("failing", Mode::Fail);
        consumers.add_with(failing.clone(), test_config()).await.unwrap();
        assert_eq!(consumers.names(), ["board", "failing", "late", "stuck"]);

        db.append_one(EventType::OrderAccepted, "o1").await;
        db.append_one(EventType::OrderPreparing, "o1").await;
        late.wait_handled(2).await;
        board.wait_handled(4).await;
        assert_eq!(late.handled_ids(), [3, 4]);
        assert!(stuck.handled_ids().is_empty());
        failing.wait_tries(2 * test_config().max_attempts as usize).await;
        let log = db.log.clone();
        eventually("two dead letters for failing", || {
            let log = log.clone();
            async move { log.dead_letters(Some("failing"), None, 10).await.unwrap().len() == 2 }
        })
        .await;

        // Removing stops the runner (the blocked one too) and drops its rows.
        for name in ["failing", "stuck"] {
            assert!(consumers.remove(&db.log, name).await.unwrap());
            assert_eq!(db.log.position(name).await.unwrap(), None, "{name}");
        }
        assert!(db.log.dead_letters(Some("failing"), None, 10).await.unwrap().is_empty());
        assert!(!consumers.remove(&db.log, "failing").await.unwrap());
        assert_eq!(consumers.names(), ["board", "late"]);
        db.append_one(EventType::OrderDelivered, "o1").await;
        late.wait_handled(3).await;
        assert!(stuck.handled_ids().is_empty());

        shutdown.cancel();
        stream.await.unwrap().unwrap();
        assert_eq!(db.log.position("late").await.unwrap(), Some(5));
        assert!(consumers.add(Recorder::new("after", Mode::Record)).await.is_err());
    }
}
