//! The outside channels' consumer handed a batch of events at once (what
//! the stream's runner does with each read): every message goes out once,
//! each try is recorded, a refused message fails the batch alone and goes
//! out on the next delivery, and a batch delivered again sends nothing.

use std::collections::BTreeMap;

use api::consumers::channels::ChannelDelivery;
use commerce::channels::Channel;
use commerce::channels::simulated::FailureRules;
use events::{Consumer, Event, EventFilter, EventType};

use crate::common::*;

/// The events of the log the email channel wants, in id order, once the
/// relay has published `paid` orders' `order.paid`.
async fn published(log: &events::EventLog, channel: &ChannelDelivery, paid: usize) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = log
            .list_events(&EventFilter::default(), None, 100)
            .await
            .unwrap();
        let mut wanted: Vec<Event> = page
            .events
            .into_iter()
            .filter(|e| channel.wants(e.event_type))
            .collect();
        if wanted
            .iter()
            .filter(|e| e.event_type == EventType::OrderPaid)
            .count()
            >= paid
        {
            wanted.reverse();
            return wanted;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events not published"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Each logged email by (recipient, event): (status, attempts).
async fn email_log(app: &TestApp, admin: &User) -> BTreeMap<(String, i64), (String, i64)> {
    let r = app
        .get(
            "/v1/admin/notifications/sent?channel=email&limit=100",
            admin.token(),
        )
        .await;
    let body = r.assert_ok(200);
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                (
                    m["user_id"].as_str().unwrap().to_owned(),
                    m["event_id"].as_i64().unwrap(),
                ),
                (
                    m["status"].as_str().unwrap().to_owned(),
                    m["attempts"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

dual_test! {
    async fn a_batch_sends_each_message_once() {
        // No consumer runs: the test hands the batch to the channel itself.
        let (app, log) = TestApp::with_relay_only().await;
        let admin = app.admin().await;
        let owner = app.user(auth::Role::Restaurant).await;
        let restaurant = app.restaurant(&owner).await;
        let a = app.user(auth::Role::Customer).await;
        let b = app.user(auth::Role::Customer).await;
        for customer in [&a, &a, &b] {
            app.place_paid_order(customer, restaurant).await;
        }
        let email = ChannelDelivery::new(&app.state, Channel::Email);
        // Each paid order tells its customer (by email, by default).
        let batch = published(&log, &email, 3).await;
        let simulator = app.state.senders.simulator().unwrap();
        simulator
            .set_rules(FailureRules {
                fail_to: vec![b.email.clone()],
                ..FailureRules::default()
            })
            .unwrap();

        // B's message is refused: the batch fails, everyone else's went
        // out and every try is logged.
        assert!(email.handle_many(&batch).await.is_err());
        let first = email_log(&app, &admin).await;
        let of = |log: &BTreeMap<(String, i64), (String, i64)>, user: &User| {
            log.iter()
                .filter(|((u, _), _)| *u == user.id.to_string())
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(of(&first, &a), vec![("sent".to_owned(), 1); 2], "{first:?}");
        assert_eq!(of(&first, &b), vec![("failed".to_owned(), 1)], "{first:?}");

        // The provider takes B's now: only B's goes out again.
        simulator.set_rules(FailureRules::default()).unwrap();
        email.handle_many(&batch).await.unwrap();
        let second = email_log(&app, &admin).await;
        assert_eq!(of(&second, &a), vec![("sent".to_owned(), 1); 2], "{second:?}");
        assert_eq!(of(&second, &b), vec![("sent".to_owned(), 2)], "{second:?}");
        assert_eq!(first.len(), second.len(), "no new message: {second:?}");

        // A redelivery of the whole batch (after a restart, so not known
        // in memory) sends nothing more.
        let fresh = ChannelDelivery::new(&app.state, Channel::Email);
        fresh.handle_many(&batch).await.unwrap();
        assert_eq!(email_log(&app, &admin).await, second);
    }
}
