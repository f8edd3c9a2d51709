//! Clients that misbehave on purpose: half-sent headers, too many
//! connections from one address, signups in bulk, request floods from one
//! address or one account, a driver flooding pings. Each is refused
//! clearly and counted, and nothing else is disturbed: where it floods,
//! a well-behaved client's p99 beside it stays within 2× of its quiet run
//! (`common::beside`).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::beside::{self, Attacker};
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

/// The attacker's own loopback address: the server sees another client.
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Requests of the well-behaved client per measurement, and its pace.
const SAMPLES: usize = 200;
const GAP: Duration = Duration::from_millis(5);

/// The attacker's rate: 20 times the limit the tests set.
const ATTACK_PER_S: u32 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_requests_over_an_address_rate_get_429_and_others_are_not_slowed() {
    let _serial = beside::SERIAL.lock().await;
    let app = spawn_app_with(|c| {
        c.api.requests_per_address_per_s = 50;
        c.api.request_burst_per_address = 50;
        // The well-behaved client (127.0.0.1) is exempt; the attacker
        // (127.0.0.2) is not.
        c.api.rate_limit_exempt = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let search = app.url("/v1/restaurants?lat=57.70&lng=11.97");
    let quiet_client = reqwest::Client::new();
    let well_behaved = || async {
        let r = quiet_client.get(&search).send().await.unwrap();
        assert_eq!(r.status(), 200);
    };
    let quiet = beside::sample(SAMPLES, GAP, well_behaved).await;

    let target = search.clone();
    let started = std::time::Instant::now();
    let attacker = Attacker::start(ATTACKER, ATTACK_PER_S, 4, move |c| c.get(&target));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attacked = beside::sample(SAMPLES, GAP, well_behaved).await;

    // One refusal read whole: the status, the header, the body (asked
    // for in a quick run, which outruns the bucket whatever the
    // attacker's pace on a busy machine).
    let prober = reqwest::Client::builder()
        .local_address(ATTACKER)
        .build()
        .unwrap();
    let mut refused = None;
    for _ in 0..200 {
        let r = prober.get(&search).send().await.unwrap();
        if r.status() == 429 {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("a quick run from one address was never refused");
    let tally = attacker.stop();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry_after, 1,
        "one request's room comes back within a second"
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(body["error"]["retry_after_s"], "1", "{body}");

    // The attacker got its burst and its rate, no more.
    let allowed = 50.0 + 50.0 * seconds;
    assert!(
        (tally.ok as f64) <= allowed + 5.0,
        "{tally:?} in {seconds:.1} s, allowed {allowed:.0}"
    );
    assert!(tally.limited > tally.ok, "{tally:?}");
    assert_eq!(tally.other, 0, "{tally:?}");
    assert!(
        metric(&app, "hexdash_http_rate_limited_total{scope=\"address\"}").await
            >= tally.limited as f64
    );
    beside::assert_within_twice("REST flood from one address", &quiet, &attacked);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_requests_over_an_account_rate_get_429_and_other_accounts_are_not_slowed() {
    let _serial = beside::SERIAL.lock().await;
    let app = spawn_app_with(|c| {
        c.api.requests_per_account_per_s = 20;
        c.api.request_burst_per_account = 20;
    })
    .await;
    let attacker_account = app.signup("Flooder", "customer").await;
    let quiet_account = app.signup("Quiet", "customer").await;
    let orders = app.url("/v1/orders");
    let quiet_client = reqwest::Client::new();
    let well_behaved = || async {
        let r = quiet_client
            .get(&orders)
            .bearer_auth(&quiet_account.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    // Paced under this test's account limit (20/s): 100 requests 55 ms
    // apart.
    let gap = Duration::from_millis(55);
    let quiet = beside::sample(SAMPLES / 2, gap, well_behaved).await;

    // The same address as everyone (loopback, exempt from the address
    // limit): only the account is limited.
    let (target, token) = (orders.clone(), attacker_account.token.clone());
    let attacker = Attacker::start(IpAddr::V4(Ipv4Addr::LOCALHOST), ATTACK_PER_S, 4, move |c| {
        c.get(&target).bearer_auth(&token)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attacked = beside::sample(SAMPLES / 2, gap, well_behaved).await;
    let tally = attacker.stop();
    assert!(tally.limited > tally.ok, "{tally:?}");
    assert_eq!(tally.other, 0, "{tally:?}");

    // An admin is not limited by account.
    let admin = app.admin_token().await;
    for _ in 0..40 {
        assert_eq!(app.get("/v1/orders", Some(&admin)).await.0, 200);
    }
    assert!(metric(&app, "hexdash_http_rate_limited_total{scope=\"account\"}").await >= 1.0);
    beside::assert_within_twice("REST flood from one account", &quiet, &attacked);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_flooding_pings_is_held_to_its_rate_and_other_drivers_are_not_slowed() {
    let _serial = beside::SERIAL.lock().await;
    let app = spawn_app_with(|c| {
        c.engine.max_pings_per_s = 50;
        c.engine.ping_burst = 50;
    })
    .await;
    let flooder = app.signup("Flooder", "driver").await;
    let quiet_driver = app.signup("Quiet", "driver").await;
    let batch_url = app.url(&format!("/v1/drivers/{}/locations", quiet_driver.id));
    let quiet_client = reqwest::Client::new();
    let ts = std::sync::atomic::AtomicI64::new(now_ms());
    let well_behaved = || async {
        // One ping per call, 25 ms apart: under 50 a second.
        let t = ts.fetch_add(25, std::sync::atomic::Ordering::Relaxed);
        let r = quiet_client
            .post(&batch_url)
            .bearer_auth(&quiet_driver.token)
            .json(&json!([{"lat": 57.70, "lng": 11.97, "ts": t}]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["applied"], 1, "{body}");
    };
    let gap = Duration::from_millis(25);
    let quiet = beside::sample(SAMPLES / 2, gap, well_behaved).await;

    // The flooder: its WebSocket stream, FLOOD pings in bursts of 10 every
    // 5 ms (about 2,000 a second, 40 times its budget, for longer than the
    // measurement beside it), from a thread and a runtime of its own
    // (another process's work).
    let url = app.ws_url(&format!("/v1/drivers/stream?token={}", flooder.token));
    let flood = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(flood(url))
    });
    const FLOOD: i64 = 8_000;
    async fn flood(url: String) -> (u64, f64) {
        use futures_util::{SinkExt, StreamExt};
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let started = std::time::Instant::now();
        let start = now_ms();
        let mut limited = 0u64;
        for i in 0..FLOOD {
            let ping = json!({"lat": 57.70, "lng": 11.97 + i as f64 * 1e-6, "ts": start + i});
            socket
                .send(tokio_tungstenite::tungstenite::Message::text(
                    ping.to_string(),
                ))
                .await
                .unwrap();
            // Drain the refusals as they come (the server's send queue is
            // bounded; a flooder that never reads is another test).
            loop {
                match tokio::time::timeout(Duration::ZERO, socket.next()).await {
                    Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) => {
                        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                        if v["code"] == "rate_limited" {
                            limited += 1;
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        // A clean close, reading what is left: closing with answers unread
        // would reset the connection and drop pings still in the server's
        // receive buffer.
        socket.close(None).await.unwrap();
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(WAIT, socket.next()).await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                if v["code"] == "rate_limited" {
                    limited += 1;
                }
            }
        }
        (limited, seconds)
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let attacked = beside::sample(SAMPLES / 2, gap, well_behaved).await;
    let (limited, seconds) = tokio::task::spawn_blocking(|| flood.join().unwrap())
        .await
        .unwrap();
    assert!(limited > 0, "no rate_limited error reached the flooder");

    // Every flood ping counted once it is through the server's socket
    // buffer: applied or held.
    let deadline = tokio::time::Instant::now() + WAIT;
    let (held, applied) = loop {
        let held = metric(
            &app,
            "hexdash_pings_rejected_total{path=\"ws\",reason=\"rate_limited\"}",
        )
        .await;
        let applied = metric(&app, "hexdash_pings_total{path=\"ws\",outcome=\"applied\"}").await;
        if held + applied >= FLOOD as f64 || tokio::time::Instant::now() > deadline {
            break (held, applied);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        held + applied,
        FLOOD as f64,
        "{held} held, {applied} applied"
    );
    // The burst and the rate over the flood's time, no more.
    let allowed = 50.0 + 50.0 * seconds;
    assert!(
        applied <= allowed + 5.0,
        "{applied} applied in {seconds:.1} s"
    );
    beside::assert_within_twice("ping flood from one driver", &quiet, &attacked);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_sockets_that_never_send_connect_are_closed_and_others_get_in() {
    let app = spawn_app_with(|c| c.ingest.mqtt_connect_timeout_ms = 300).await;
    // Ten sockets that open and say nothing.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(TcpStream::connect(app.mqtt).await.unwrap());
    }
    // A driver logs in meanwhile.
    let driver = app.signup("punctual", "driver").await;
    let mqtt = MqttDriver::connect(&app, &driver).await;
    mqtt.ping(57.70, 11.97, now_ms()).await;
    let id: engine::DriverId = driver.id.parse().unwrap();
    eventually(async || app.engine.driver(id).and_then(|d| d.fix)).await;
    // The silent ones are closed after the connect timeout.
    for socket in &mut silent {
        assert!(
            closed_by_server(socket).await,
            "a silent MQTT socket was kept"
        );
    }
    app.stop().await;
}
