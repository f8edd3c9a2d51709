//! What the cluster crate's tests share: the test Redis.

use cluster::Redis;

/// The Redis at `HEXDASH_TEST_REDIS_URL` and a key prefix of the calling
/// test's own, or `None` when the variable is unset (the test skips); an
/// unreachable server fails the test.
pub async fn redis() -> Option<(Redis, String)> {
    let Ok(url) = std::env::var("HEXDASH_TEST_REDIS_URL") else {
        eprintln!("HEXDASH_TEST_REDIS_URL is unset: skipped");
        return None;
    };
    let redis = Redis::open(&url).expect("HEXDASH_TEST_REDIS_URL is a redis url");
    assert!(
        redis.ping().await,
        "HEXDASH_TEST_REDIS_URL {url} is unreachable"
    );
    Some((redis, format!("test:{}:", uuid::Uuid::new_v4().simple())))
}
