//! Shared rate-limit windows on a real Redis (`HEXDASH_TEST_REDIS_URL`;
//! skipped when unset, failing when set and unreachable): two handles,
//! as two nodes, count into one window; it ends by itself; a clear closes
//! it.

use std::time::Duration;

use cluster::{Window, Windows};

mod common;

#[tokio::test]
async fn two_nodes_count_into_one_window_that_ends_by_itself() {
    let Some((redis, prefix)) = common::redis().await else {
        return;
    };
    let node_a = Windows::new(redis.clone(), &prefix);
    let node_b = Windows::new(redis, &prefix);

    assert_eq!(
        node_a.peek("login:address:10.0.0.1").await.unwrap(),
        Window {
            hits: 0,
            left_ms: 0
        }
    );
    let first = node_a.hit("login:address:10.0.0.1", 400).await.unwrap();
    assert_eq!(first.hits, 1);
    assert!(first.left_ms > 0 && first.left_ms <= 400, "{first:?}");
    // A later hit does not stretch the window.
    let second = node_b.hit("login:address:10.0.0.1", 60_000).await.unwrap();
    assert_eq!(second.hits, 2);
    assert!(second.left_ms <= 400, "{second:?}");
    let seen = node_a.peek("login:address:10.0.0.1").await.unwrap();
    assert_eq!(seen.hits, 2);
    assert_eq!(
        node_b.peek("login:address:10.0.0.2").await.unwrap().hits,
        0,
        "names are apart"
    );

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(node_b.peek("login:address:10.0.0.1").await.unwrap().hits, 0);
    assert_eq!(
        node_b
            .hit("login:address:10.0.0.1", 60_000)
            .await
            .unwrap()
            .hits,
        1,
        "a new window"
    );
    node_a.clear("login:address:10.0.0.1").await.unwrap();
    assert_eq!(node_b.peek("login:address:10.0.0.1").await.unwrap().hits, 0);
}
