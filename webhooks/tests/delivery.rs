//! Deliveries to a real HTTP receiver started by each test (axum on port
//! 0), which records what it got and answers from a script.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use sqlx::AnyPool;
use webhooks::store;
use webhooks::{
    Config, Deliverer, DeliveryError, EVENT_ID_HEADER, EVENT_TYPE_HEADER, Endpoint, EndpointId,
    EndpointSpec, EnvelopeBytes, Handled, NowMs, Outcome, SIGNATURE_HEADER, Secret, Skipped,
    WebhookConsumer, verify,
};

const KNOWN: &[&str] = &["order.placed", "order.delivered", "refund.failed"];
/// The test clock's start: 2026-12-07, in ms.
const START_MS: i64 = 1_796_601_600_000;

/// One request as the receiver got it.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// What the receiver does with each request.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answers (holds the request open).
    Hang,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answers in order; 200 once the script is used up.
    script: Arc<Mutex<VecDeque<Answer>>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    receiver.got.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let answer = receiver.script.lock().unwrap().pop_front();
    match answer.unwrap_or(Answer::Status(200)) {
        Answer::Hang => std::future::pending().await,
        Answer::Status(code) => {
            let mut headers = HeaderMap::new();
            // Where a redirect would send us, were redirects followed.
            headers.insert(header::LOCATION, "/elsewhere".parse().unwrap());
            (StatusCode::from_u16(code).unwrap(), headers)
        }
    }
}

impl Receiver {
    /// Starts it on a free port; answers its URL for `/hook`.
    async fn start(script: &[Answer]) -> (Self, String) {
        let receiver = Self::default();
        receiver.script.lock().unwrap().extend(script);
        let app = Router::new().fallback(receive).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, format!("http://127.0.0.1:{port}/hook"))
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// A database, a manual clock and a way to make consumers.
struct Scene {
    db: common::SqliteDb,
    clock: Arc<AtomicI64>,
}

impl Scene {
    async fn new() -> Self {
        Self {
            db: common::sqlite().await,
            clock: Arc::new(AtomicI64::new(START_MS)),
        }
    }

    fn pool(&self) -> &AnyPool {
        &self.db.pool
    }

    /// Registers an endpoint for `url` wanting `types`, and its consumer
    /// with `timeout_ms`.
    async fn consumer(&self, url: &str, types: &[&str], timeout_ms: u64) -> WebhookConsumer {
        let config = Config {
            timeout_ms,
            connect_timeout_ms: timeout_ms,
            ca_file: None,
        };
        self.consumer_with(url, types, &config).await
    }

    /// [`Scene::consumer`] with a deliverer made from `config`.
    async fn consumer_with(&self, url: &str, types: &[&str], config: &Config) -> WebhookConsumer {
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        let spec = EndpointSpec::parse(url, &types, |t| KNOWN.contains(&t)).unwrap();
        let endpoint = Endpoint::new(
            spec,
            EndpointId(uuid::Uuid::now_v7()),
            Secret::generate(),
            START_MS,
        );
        store::insert_endpoint(self.pool(), &endpoint)
            .await
            .unwrap();
        let deliverer = Deliverer::new(config).unwrap();
        let clock = self.clock.clone();
        let now_ms: NowMs = Arc::new(move || clock.load(Ordering::Relaxed));
        WebhookConsumer::new(endpoint, deliverer, self.pool().clone(), now_ms)
    }

    async fn log(&self, consumer: &WebhookConsumer) -> Vec<store::Delivery> {
        store::list_deliveries(self.pool(), consumer.endpoint.id, None, 100)
            .await
            .unwrap()
    }
}

fn event(id: &str, event_type: &str) -> EnvelopeBytes {
    let body = format!(
        r#"{{"id":"{id}","type":"{event_type}","aggregate":"o-1","version":1,"time_ms":{START_MS},"payload":{{"v":1}}}}"#
    );
    EnvelopeBytes {
        event_id: id.to_owned(),
        event_type: event_type.to_owned(),
        body: body.into(),
    }
}

/// A generous timeout for receivers that answer: only the hanging ones
/// should ever reach theirs.
const ANSWERING_TIMEOUT_MS: u64 = 30_000;

/// The receiver's check: the signature verifies with the endpoint's secret
/// at the test clock's time, and the headers name the event.
#[track_caller]
fn assert_signed(got: &Received, secret: &Secret, envelope: &EnvelopeBytes) {
    let signature = got.headers[SIGNATURE_HEADER].to_str().unwrap();
    assert_eq!(
        verify(
            secret.expose().as_bytes(),
            signature,
            &got.body,
            START_MS / 1000,
            300
        ),
        Ok(())
    );
    assert_eq!(got.body, envelope.body);
    assert_eq!(got.headers[EVENT_ID_HEADER], envelope.event_id.as_str());
    assert_eq!(got.headers[EVENT_TYPE_HEADER], envelope.event_type.as_str());
    assert_eq!(got.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(got.path, "/hook");
}

#[tokio::test]
async fn the_signature_verifies_with_the_endpoint_secret() {
    let scene = Scene::new().await;
    let (receiver, url) = Receiver::start(&[]).await;
    let consumer = scene
        .consumer(&url, &["order.placed"], ANSWERING_TIMEOUT_MS)
        .await;
    let placed = event("101", "order.placed");

    let handled = consumer.handle(&placed).await.unwrap();

    assert_eq!(handled, Handled::Delivered { attempt: 1 });
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_signed(&got[0], &consumer.endpoint.secret, &placed);
    // A different secret does not verify it.
    let signature = got[0].headers[SIGNATURE_HEADER].to_str().unwrap();
    assert!(
        verify(
            Secret::generate().expose().as_bytes(),
            signature,
            &got[0].body,
            START_MS / 1000,
            300
        )
        .is_err()
    );
    let log = scene.log(&consumer).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].outcome, log[0].http_status, log[0].attempt),
        (Outcome::Delivered, Some(200), 1)
    );
    assert_eq!(log[0].attempted_at_ms, START_MS);
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_event_on_the_third_try() {
    let scene = Scene::new().await;
    let (receiver, url) = Receiver::start(&[
        Answer::Status(500),
        Answer::Status(500),
        Answer::Status(200),
    ])
    .await;
    let consumer = scene
        .consumer(&url, &["order.placed"], ANSWERING_TIMEOUT_MS)
        .await;
    let placed = event("7", "order.placed");

    for expected_attempt in 1..=2 {
        match consumer.handle(&placed).await {
            Err(DeliveryError::Failed {
                attempt,
                outcome: Outcome::HttpError,
                http_status: Some(500),
                ..
            }) => assert_eq!(attempt, expected_attempt),
            other => panic!("attempt {expected_attempt}: {other:?}"),
        }
        // The runner's backoff: time passes between tries.
        scene.clock.fetch_add(1_000, Ordering::Relaxed);
    }
    assert_eq!(
        consumer.handle(&placed).await.unwrap(),
        Handled::Delivered { attempt: 3 }
    );

    let log = scene.log(&consumer).await;
    let summary: Vec<_> = log
        .iter()
        .map(|d| (d.attempt, d.outcome, d.http_status))
        .collect();
    assert_eq!(
        summary,
        [
            (3, Outcome::Delivered, Some(200)),
            (2, Outcome::HttpError, Some(500)),
            (1, Outcome::HttpError, Some(500)),
        ]
    );
    assert!(log.iter().all(|d| d.event_id == "7"));
    assert_eq!(receiver.got().len(), 3);
    // Each try is signed afresh, at its own time.
    let times: Vec<_> = receiver
        .got()
        .iter()
        .map(|r| r.headers[SIGNATURE_HEADER].to_str().unwrap().to_owned())
        .collect();
    assert!(times[0].starts_with(&format!("t={},", START_MS / 1000)));
    assert!(times[2].starts_with(&format!("t={},", START_MS / 1000 + 2)));

    // The stream may hand the event over again: it is not sent twice.
    assert_eq!(
        consumer.handle(&placed).await.unwrap(),
        Handled::Skipped(Skipped::AlreadyDelivered)
    );
    assert_eq!(receiver.got().len(), 3);
    assert_eq!(scene.log(&consumer).await.len(), 3);
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_and_is_logged() {
    let scene = Scene::new().await;
    let (receiver, url) = Receiver::start(&[Answer::Hang, Answer::Hang]).await;
    // Short, so the test is quick; nothing asserts how long it took.
    let consumer = scene.consumer(&url, &["order.placed"], 200).await;
    let placed = event("9", "order.placed");

    for expected_attempt in 1..=2 {
        match consumer.handle(&placed).await {
            Err(DeliveryError::Failed {
                attempt,
                outcome: Outcome::Timeout,
                http_status: None,
                detail: Some(_),
            }) => assert_eq!(attempt, expected_attempt),
            other => panic!("{other:?}"),
        }
    }
    let log = scene.log(&consumer).await;
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|d| d.outcome == Outcome::Timeout && d.http_status.is_none())
    );
    assert_eq!(receiver.got().len(), 2, "the request did reach it");
}

#[tokio::test]
async fn a_slow_receiver_holds_up_no_other_endpoint() {
    let scene = Scene::new().await;
    let (_slow_receiver, slow_url) = Receiver::start(&[Answer::Hang]).await;
    let (fast_receiver, fast_url) = Receiver::start(&[]).await;
    let slow = scene.consumer(&slow_url, &["order.placed"], 600_000).await;
    let fast = scene
        .consumer(&fast_url, &["order.placed"], ANSWERING_TIMEOUT_MS)
        .await;
    let placed = event("11", "order.placed");

    let stuck = tokio::spawn({
        let placed = placed.clone();
        async move { slow.handle(&placed).await }
    });
    // The slow one's request is in flight (or about to be) while the fast
    // one delivers.
    assert_eq!(
        fast.handle(&placed).await.unwrap(),
        Handled::Delivered { attempt: 1 }
    );
    assert_eq!(fast_receiver.got().len(), 1);
    assert!(!stuck.is_finished());
    stuck.abort();
}

#[tokio::test]
async fn unsubscribed_types_are_skipped_unsent_and_unlogged() {
    let scene = Scene::new().await;
    let (receiver, url) = Receiver::start(&[]).await;
    let consumer = scene
        .consumer(&url, &["order.delivered"], ANSWERING_TIMEOUT_MS)
        .await;

    assert_eq!(
        consumer.handle(&event("1", "order.placed")).await.unwrap(),
        Handled::Skipped(Skipped::NotSubscribed)
    );
    assert!(receiver.got().is_empty());
    assert!(scene.log(&consumer).await.is_empty());
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_later_events_are_skipped() {
    let scene = Scene::new().await;
    let (receiver, url) = Receiver::start(&[Answer::Status(410)]).await;
    let consumer = scene
        .consumer(&url, &["order.placed"], ANSWERING_TIMEOUT_MS)
        .await;

    assert_eq!(
        consumer.handle(&event("1", "order.placed")).await.unwrap(),
        Handled::Disabled
    );
    let stored = store::get_endpoint(scene.pool(), consumer.endpoint.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.enabled);
    assert!(stored.disabled_reason.unwrap().contains("410"));
    assert_eq!(
        consumer.handle(&event("2", "order.placed")).await.unwrap(),
        Handled::Skipped(Skipped::Disabled)
    );
    assert_eq!(receiver.got().len(), 1);
    assert_eq!(scene.log(&consumer).await[0].outcome, Outcome::Gone);

    // Deleted: skipped too.
    store::delete_endpoint(scene.pool(), consumer.endpoint.id)
        .await
        .unwrap();
    assert_eq!(
        consumer.handle(&event("3", "order.placed")).await.unwrap(),
        Handled::Skipped(Skipped::Deleted)
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let scene = Scene::new().await;
    let (receiver, url) = Receiver::start(&[Answer::Status(307)]).await;
    let consumer = scene
        .consumer(&url, &["order.placed"], ANSWERING_TIMEOUT_MS)
        .await;

    match consumer.handle(&event("1", "order.placed")).await {
        Err(DeliveryError::Failed {
            outcome: Outcome::HttpError,
            http_status: Some(307),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let paths: Vec<_> = receiver.got().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/hook"], "nothing went to /elsewhere");
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let scene = Scene::new().await;
    // A port that was free a moment ago, with nobody listening now.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let consumer = scene
        .consumer(
            &format!("http://127.0.0.1:{port}/hook"),
            &["order.placed"],
            ANSWERING_TIMEOUT_MS,
        )
        .await;

    match consumer.handle(&event("1", "order.placed")).await {
        Err(DeliveryError::Failed {
            outcome: Outcome::ConnectError,
            http_status: None,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(scene.log(&consumer).await[0].outcome, Outcome::ConnectError);
}

/// The test certificates (`tests/fixtures/tls/README.md`).
fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

impl Receiver {
    /// [`Receiver::start`] over TLS with the fixture certificate `cert`
    /// (`receiver`: signed by the test CA; `stranger`: self-signed);
    /// answers its `https` URL for `/hook`.
    async fn start_tls(cert: &str) -> (Self, String) {
        let receiver = Self::default();
        let app = Router::new().fallback(receive).with_state(receiver.clone());
        let identity = native_tls::Identity::from_pkcs8(
            &std::fs::read(fixture(&format!("{cert}.pem"))).unwrap(),
            &std::fs::read(fixture(&format!("{cert}.key"))).unwrap(),
        )
        .unwrap();
        let acceptor =
            tokio_native_tls::TlsAcceptor::from(native_tls::TlsAcceptor::new(identity).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that refuses our certificate ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (receiver, format!("https://127.0.0.1:{port}/hook"))
    }
}

#[tokio::test]
async fn https_delivers_only_to_a_certificate_that_verifies() {
    let scene = Scene::new().await;
    let trusting = Config {
        ca_file: Some(fixture("ca.pem")),
        ..Config::default()
    };
    // Signed by the CA in `ca_file`: delivered, signed as over http.
    let (trusted, url) = Receiver::start_tls("receiver").await;
    let consumer = scene
        .consumer_with(&url, &["order.placed"], &trusting)
        .await;
    let handled = consumer.handle(&event("1", "order.placed")).await;
    assert!(
        matches!(handled, Ok(Handled::Delivered { attempt: 1 })),
        "{handled:?}"
    );
    let got = trusted.got();
    assert_eq!(got.len(), 1);
    let secret = consumer.endpoint.secret.expose().to_owned();
    let header = got[0].headers[SIGNATURE_HEADER].to_str().unwrap();
    assert!(
        verify(
            secret.as_bytes(),
            header,
            &got[0].body,
            START_MS / 1000,
            300
        )
        .is_ok()
    );

    // Self-signed: nothing is sent; the log says why.
    let (stranger, url) = Receiver::start_tls("stranger").await;
    let consumer = scene
        .consumer_with(&url, &["order.placed"], &trusting)
        .await;
    match consumer.handle(&event("1", "order.placed")).await {
        Err(DeliveryError::Failed {
            outcome: Outcome::ConnectError,
            http_status: None,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        stranger.got().is_empty(),
        "sent over an unverified connection"
    );
    let log = scene.log(&consumer).await;
    let error = log[0].error.clone().unwrap_or_default();
    assert!(error.contains("certificate"), "{error}");

    // Without the CA file the system's authorities alone do not know the
    // test CA either.
    let (untrusted, url) = Receiver::start_tls("receiver").await;
    let consumer = scene
        .consumer_with(&url, &["order.placed"], &Config::default())
        .await;
    assert!(consumer.handle(&event("1", "order.placed")).await.is_err());
    assert!(untrusted.got().is_empty());
}

#[test]
fn a_ca_file_that_cannot_be_used_is_a_setup_error() {
    let missing = Config {
        ca_file: Some(fixture("no-such.pem")),
        ..Config::default()
    };
    let error = Deliverer::new(&missing).unwrap_err().to_string();
    assert!(error.contains("cannot read the webhook CA file"), "{error}");
    // A key is not a certificate.
    let not_a_certificate = Config {
        ca_file: Some(fixture("stranger.key")),
        ..Config::default()
    };
    let error = Deliverer::new(&not_a_certificate).unwrap_err().to_string();
    assert!(error.contains("holds no usable PEM certificate"), "{error}");
}
