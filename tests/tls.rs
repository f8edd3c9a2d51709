//! TLS on both listeners (`[tls]`): HTTPS with the configured certificate
//! (and HSTS), MQTT over TLS with a driver's token as password, a plain
//! client refused, and clients that open a socket and never finish the
//! handshake: they are cut off and counted, and nobody else waits for
//! them. Clients trust the test CA (`tests/fixtures/tls/`).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

fn with_tls(config: &mut hexdash::Config) {
    config.tls = hexdash::tls::Config {
        cert_file: Some(fixture("server.pem")),
        key_file: Some(fixture("server.key")),
    };
}

/// An HTTPS client that trusts the test CA only.
fn https_client() -> reqwest::Client {
    let ca = std::fs::read(fixture("ca.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap()
}

/// A rustls connector that trusts the test CA only.
fn tls_connector() -> tokio_rustls::TlsConnector {
    let mut roots = RootCertStore::empty();
    let pem = std::fs::read(fixture("ca.pem")).unwrap();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// `bytes` with an MQTT length prefix.
fn string(bytes: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A fixed header and its variable-length remaining length.
fn packet(kind: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = vec![kind];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend(body);
    out
}

/// MQTT 3.1.1 CONNECT with a username and password, clean session.
fn connect(client_id: &str, username: &str, password: &str) -> Vec<u8> {
    let mut body = string(b"MQTT");
    body.extend([4, 0xC2, 0, 60]);
    body.extend(string(client_id.as_bytes()));
    body.extend(string(username.as_bytes()));
    body.extend(string(password.as_bytes()));
    packet(0x10, body)
}

/// MQTT PUBLISH at QoS 0.
fn publish(topic: &str, payload: &str) -> Vec<u8> {
    let mut body = string(topic.as_bytes());
    body.extend_from_slice(payload.as_bytes());
    packet(0x30, body)
}

/// Connects over TLS to the broker at `mqtt` as `user` (its token as the
/// password); the CONNACK's return code and the open stream.
async fn mqtt_over_tls(
    mqtt: std::net::SocketAddr,
    user: &User,
    password: &str,
) -> (u8, tokio_rustls::client::TlsStream<TcpStream>) {
    let tcp = TcpStream::connect(mqtt).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = tls_connector().connect(name, tcp).await.unwrap();
    tls.write_all(&connect(
        &format!("tls-{}", &user.id[..8]),
        &user.id,
        password,
    ))
    .await
    .unwrap();
    let mut connack = [0u8; 4];
    tokio::time::timeout(WAIT, tls.read_exact(&mut connack))
        .await
        .expect("a CONNACK")
        .unwrap();
    assert_eq!(connack[..2], [0x20, 0x02], "not a CONNACK: {connack:?}");
    (connack[3], tls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_mqtt_over_tls_serve_with_the_configured_certificate() {
    let app = spawn_app_with(with_tls).await;
    let https = https_client();
    let base = format!("https://localhost:{}", app.http.port());

    let health = https.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let login = https
        .post(format!("{base}/v1/auth/login"))
        .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    // A tracking WebSocket over TLS (wss:).
    let token = login.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tcp = TcpStream::connect(app.http).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tls_connector().connect(name, tcp).await.unwrap();
    let url = format!("wss://localhost:{}/v1/ws?token={token}", app.http.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    {
        use futures_util::{SinkExt, StreamExt};
        let subscribe = serde_json::json!({"op": "subscribe", "channel": "me"}).to_string();
        ws.send(tokio_tungstenite::tungstenite::Message::text(subscribe))
            .await
            .unwrap();
        let reply = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let reply: serde_json::Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
        assert_eq!(reply["type"], "subscribed", "{reply}");
    }
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::get(format!("http://{}/healthz", app.http)).await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    // A driver over MQTT with TLS: its token is the password, its ping
    // reaches the index.
    let driver = {
        let email = format!("tls-{}@hexdash.test", uuid::Uuid::new_v4().simple());
        let signup = https
            .post(format!("{base}/v1/auth/signup"))
            .json(&serde_json::json!({"email": email, "password": "a-long-password", "name": "Tls", "role": "driver"}))
            .send()
            .await
            .unwrap();
        assert_eq!(signup.status(), 201);
        let id = signup.json::<serde_json::Value>().await.unwrap()["user_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let tokens: serde_json::Value = https
            .post(format!("{base}/v1/auth/login"))
            .json(&serde_json::json!({"email": email, "password": "a-long-password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        User {
            id,
            token: tokens["access_token"].as_str().unwrap().to_owned(),
        }
    };
    let (code, _) = mqtt_over_tls(app.mqtt, &driver, "not-the-token").await;
    assert_ne!(code, 0, "a wrong password was accepted");
    let (code, mut tls) = mqtt_over_tls(app.mqtt, &driver, &driver.token).await;
    assert_eq!(code, 0, "CONNACK return code");
    let ping = serde_json::json!({"lat": 57.7031, "lng": 11.9652, "ts": now_ms()}).to_string();
    tls.write_all(&publish(&format!("drivers/{}/location", driver.id), &ping))
        .await
        .unwrap();
    let id: engine::DriverId = driver.id.parse().unwrap();
    let fix = eventually(async || app.engine.driver(id).and_then(|d| d.fix)).await;
    assert!((fix.position.lat - 57.7031).abs() < 1e-9, "{fix:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_finish_the_handshake_are_cut_off_and_hold_nobody_up() {
    let app = spawn_app_with(|c| {
        with_tls(c);
        c.http.header_read_timeout_ms = 300;
        c.ingest.mqtt_connect_timeout_ms = 300;
    })
    .await;
    // Sockets that say nothing: no ClientHello, on both listeners.
    let mut silent_http = TcpStream::connect(app.http).await.unwrap();
    let mut silent_mqtt = TcpStream::connect(app.mqtt).await.unwrap();

    // Everyone else is served meanwhile, on both.
    let https = https_client();
    let health = https
        .get(format!("https://localhost:{}/healthz", app.http.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let name = ServerName::try_from("localhost").unwrap();
    let tcp = TcpStream::connect(app.mqtt).await.unwrap();
    tokio::time::timeout(WAIT, tls_connector().connect(name, tcp))
        .await
        .expect("the broker's handshake waited for the silent client")
        .unwrap();

    // The silent ones are closed after the timeout.
    for silent in [&mut silent_http, &mut silent_mqtt] {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(WAIT, silent.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "a silent client was kept: {read:?}"
        );
    }
    // Counted (the other test's plain client counts too: at least one).
    let metrics_url = format!("https://localhost:{}/metrics", app.http.port());
    eventually(async || {
        let text = https
            .get(&metrics_url)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let failures: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("hexdash_http_tls_handshake_failures_total "))?
            .parse()
            .ok()?;
        (failures >= 1.0).then_some(())
    })
    .await;
    app.stop().await;
}
