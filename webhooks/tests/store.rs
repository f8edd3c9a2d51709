//! The endpoint and delivery-log store on SQLite and on PostgreSQL: one
//! case, run on each.

mod common;

use sqlx::AnyPool;
use webhooks::store::{self, MAX_PAGE};
use webhooks::{Attempt, Endpoint, EndpointId, EndpointSpec, Outcome, Secret};

const KNOWN: &[&str] = &["order.placed", "order.delivered"];

fn endpoint(url: &str, now_ms: i64) -> Endpoint {
    let types = vec!["order.placed".to_owned(), "order.delivered".to_owned()];
    let spec = EndpointSpec::parse(url, &types, |t| KNOWN.contains(&t)).unwrap();
    Endpoint::new(
        spec,
        EndpointId(uuid::Uuid::now_v7()),
        Secret::generate(),
        now_ms,
    )
}

fn attempt(outcome: Outcome, http_status: Option<u16>) -> Attempt {
    Attempt {
        outcome,
        http_status,
        error: (outcome != Outcome::Delivered).then(|| "it broke".to_owned()),
        duration_ms: 12,
    }
}

async fn store_case(pool: &AnyPool) {
    // Endpoints: insert, get, list in pages, disable, enable.
    let first = endpoint("http://a.example/hook", 1_000);
    let second = endpoint("https://b.example/hook?x=1", 2_000);
    let third = endpoint("http://c.example:8080/", 3_000);
    for e in [&first, &second, &third] {
        store::insert_endpoint(pool, e).await.unwrap();
    }
    let got = store::get_endpoint(pool, second.id).await.unwrap().unwrap();
    assert_eq!(got, second, "everything round-trips, the secret included");
    assert_eq!(
        store::get_endpoint(pool, EndpointId(uuid::Uuid::now_v7()))
            .await
            .unwrap(),
        None
    );
    let page = store::list_endpoints(pool, None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.id).collect::<Vec<_>>(),
        [first.id, second.id]
    );
    let page = store::list_endpoints(pool, Some(second.id), 2)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [third.id]);
    assert_eq!(
        store::list_endpoints(pool, None, u32::MAX)
            .await
            .unwrap()
            .len(),
        3,
        "a huge limit is capped at {MAX_PAGE}, not an error"
    );

    assert!(
        store::set_enabled(pool, first.id, false, Some("maintenance"), 5_000)
            .await
            .unwrap()
    );
    let disabled = store::get_endpoint(pool, first.id).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("maintenance"));
    assert_eq!(disabled.updated_at_ms, 5_000);
    assert!(
        store::set_enabled(pool, first.id, true, Some("ignored"), 6_000)
            .await
            .unwrap()
    );
    let enabled = store::get_endpoint(pool, first.id).await.unwrap().unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.disabled_reason, None);
    assert!(
        !store::set_enabled(pool, EndpointId(uuid::Uuid::now_v7()), false, None, 1)
            .await
            .unwrap()
    );

    // The log: attempts count per endpoint and event.
    let failed = attempt(Outcome::HttpError, Some(500));
    let timeout = attempt(Outcome::Timeout, None);
    let ok = attempt(Outcome::Delivered, Some(200));
    let log = |id, event: &'static str, at, a: &Attempt| {
        let a = a.clone();
        async move {
            store::record_attempt(pool, id, event, "order.placed", at, &a)
                .await
                .unwrap()
        }
    };
    assert_eq!(log(first.id, "1", 10, &failed).await, 1);
    assert_eq!(log(first.id, "1", 20, &timeout).await, 2);
    assert!(!store::was_delivered(pool, first.id, "1").await.unwrap());
    assert_eq!(log(first.id, "1", 30, &ok).await, 3);
    assert!(store::was_delivered(pool, first.id, "1").await.unwrap());
    assert_eq!(log(first.id, "2", 40, &ok).await, 1, "another event");
    assert_eq!(log(second.id, "1", 50, &ok).await, 1, "another endpoint");
    assert!(!store::was_delivered(pool, third.id, "1").await.unwrap());

    let rows = store::list_deliveries(pool, first.id, None, 3)
        .await
        .unwrap();
    let summary: Vec<_> = rows
        .iter()
        .map(|d| (d.event_id.as_str(), d.attempt, d.outcome, d.http_status))
        .collect();
    assert_eq!(
        summary,
        [
            ("2", 1, Outcome::Delivered, Some(200)),
            ("1", 3, Outcome::Delivered, Some(200)),
            ("1", 2, Outcome::Timeout, None),
        ],
        "newest first"
    );
    assert_eq!(rows[2].error.as_deref(), Some("it broke"));
    assert_eq!((rows[2].attempted_at_ms, rows[2].duration_ms), (20, 12));
    assert_eq!(rows[0].endpoint_id, first.id);
    let rest = store::list_deliveries(pool, first.id, Some(rows[2].id), 3)
        .await
        .unwrap();
    assert_eq!(
        rest.iter()
            .map(|d| (d.attempt, d.outcome))
            .collect::<Vec<_>>(),
        [(1, Outcome::HttpError)]
    );

    // Deleting takes the endpoint's log with it, and only its log.
    assert!(store::delete_endpoint(pool, first.id).await.unwrap());
    assert!(!store::delete_endpoint(pool, first.id).await.unwrap());
    assert_eq!(store::get_endpoint(pool, first.id).await.unwrap(), None);
    assert!(
        store::list_deliveries(pool, first.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store::list_deliveries(pool, second.id, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn store_on_sqlite() {
    let db = common::sqlite().await;
    store_case(&db.pool).await;
}

#[tokio::test]
async fn store_on_postgres() {
    let Some(base) = common::postgres_url() else {
        eprintln!("HEXDASH_TEST_DATABASE_URL is not a postgres:// url: skipped");
        return;
    };
    let db = common::postgres(&base).await;
    store_case(&db.pool).await;
    db.drop_schema().await;
}
