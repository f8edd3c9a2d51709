//! The store as the REST layer reports it: an unreachable database's
//! cause, stated once. (The store's own tests live in `commerce`.)

/// A PostgreSQL server that is not there is named as such, at once, with
/// its cause stated once (not "pool timed out" after the acquire timeout).
#[tokio::test]
async fn an_unreachable_postgres_says_why() {
    // Port 1 (tcpmux) is unassigned on any machine we test on.
    let error = match api::connect("postgres://postgres@127.0.0.1:1/nothing").await {
        Err(e) => e,
        Ok(_) => panic!("connected to port 1"),
    };
    let message = api::error_chain(&error);
    assert!(
        message.to_lowercase().contains("refused"),
        "the cause is missing: {message}"
    );
    assert_eq!(message.matches("refused").count(), 1, "{message}");
}
