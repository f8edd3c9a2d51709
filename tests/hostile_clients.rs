//! Clients that misbehave on purpose: half-sent headers, too many
//! connections from one address, signups in bulk. Each is refused clearly
//! and counted, and nothing else is disturbed.

mod common;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the server closed `tcp` (EOF or reset) before the test's limit.
async fn closed_by_server(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// One `GET /healthz` on a raw socket; the answer's status line.
async fn raw_get(tcp: &mut TcpStream) -> String {
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"}") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("answered")
            .unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got).unwrap();
    text.lines().next().unwrap().to_owned()
}

/// The value of the first sample of `name` in `/metrics`, retried until the
/// server takes the connection (a cap may still count a closing socket).
async fn metric(app: &TestApp, name: &str) -> f64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    let text = loop {
        match app.client.get(app.url("/metrics")).send().await {
            Ok(resp) => break resp.text().await.unwrap(),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("/metrics unreachable: {e}"),
        }
    };
    let family = name.split('{').next().unwrap();
    assert!(
        text.contains(&format!("# HELP {family} ")),
        "no HELP for {family}"
    );
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
}

#[tokio::test]
async fn a_half_sent_header_is_cut_off_and_counted() {
    let app = spawn_app_with(|c| c.http.header_read_timeout_ms = 200).await;
    let mut slow = TcpStream::connect(app.http).await.unwrap();
    slow.write_all(b"POST /v1/auth/login HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    assert!(closed_by_server(&mut slow).await, "slow client still open");
    // Everyone else is served as usual.
    assert_eq!(app.get("/healthz", None).await.0, 200);
    assert!(metric(&app, "hexdash_http_header_timeouts_total").await >= 1.0);
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_and_counted() {
    let app = spawn_app_with(|c| c.http.max_connections_per_address = 2).await;
    let mut first = TcpStream::connect(app.http).await.unwrap();
    assert_eq!(raw_get(&mut first).await, "HTTP/1.1 200 OK");
    let mut second = TcpStream::connect(app.http).await.unwrap();
    assert_eq!(raw_get(&mut second).await, "HTTP/1.1 200 OK");
    let mut third = TcpStream::connect(app.http).await.unwrap();
    assert!(closed_by_server(&mut third).await, "third connection kept");
    assert_eq!(raw_get(&mut first).await, "HTTP/1.1 200 OK");
    drop((first, second));
    let refused = "hexdash_http_connections_refused_total{reason=\"max_connections_per_address\"}";
    assert!(metric(&app, refused).await >= 1.0);
    app.stop().await;
}

#[tokio::test]
async fn signups_from_one_address_are_rate_limited() {
    let app = spawn_app_with(|c| {
        c.api.signup_attempts_per_address = 2;
        // Cheap hashes: the limit is under test, not argon2.
        c.api.password_memory_kib = 1024;
        c.api.password_passes = 1;
    })
    .await;
    let signup = |i: u32| {
        app.client.post(app.url("/v1/auth/signup")).json(&json!({
            "email": format!("bulk-{i}@hexdash.test"),
            "password": "a-long-password",
            "name": "Bulk",
            "role": "customer",
        }))
    };
    for i in 0..2 {
        assert_eq!(signup(i).send().await.unwrap().status(), 201);
    }
    let resp = signup(2).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Logins from the same address are limited apart.
    let (status, _) = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "bulk-0@hexdash.test", "password": "a-long-password"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(metric(&app, "hexdash_signups_rate_limited_total").await >= 1.0);
    app.stop().await;
}
