//! The operator surface: health, readiness, metrics, bad configuration and a
//! taken port.

mod common;

use common::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/healthz", None).await,
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["database"], true);
    assert_eq!(body["checks"]["mqtt_broker"], true);

    let metrics = prometheus_text::scrape(&app).await;
    for name in [
        "hexdash_drivers",
        "hexdash_queue_depth",
        "hexdash_pings_total",
        "hexdash_connections",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    app.stop().await;
}

/// A port held by a listener of the test, and a scratch folder whose
/// `data/` subfolder the database would go to.
fn taken_port_and_folder() -> (std::net::TcpListener, TempDir) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = TempDir(std::env::temp_dir().join(format!("hexdash-test-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    (taken, dir)
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error_and_leaves_no_database() {
    let (taken, dir) = taken_port_and_folder();
    let data = dir.0.join("data");
    let config = || hexdash::Config {
        database_url: format!("sqlite://{}/hexdash.db", data.display()),
        ..test_config(&dir.0)
    };

    let mut http_taken = config();
    http_taken.http_addr = taken.local_addr().unwrap();
    let err = hexdash::App::build(http_taken, std::sync::Arc::new(clock::SystemClock))
        .await
        .err()
        .expect("HTTP port taken");
    let message = format!("{err:#}");
    for expected in [
        "cannot listen for HTTP",
        "already in use",
        "--http-addr",
        "HEXDASH_HTTP_ADDR",
    ] {
        assert!(message.contains(expected), "{expected} in: {message}");
    }
    assert!(
        !data.exists(),
        "a taken HTTP port created {}",
        data.display()
    );

    let mut mqtt_taken = config();
    mqtt_taken.mqtt_addr = taken.local_addr().unwrap();
    let err = hexdash::App::build(mqtt_taken, std::sync::Arc::new(clock::SystemClock))
        .await
        .err()
        .expect("MQTT port taken");
    let message = format!("{err:#}");
    for expected in [
        "cannot listen for MQTT",
        "already in use",
        "--mqtt-addr",
        "HEXDASH_MQTT_ADDR",
    ] {
        assert!(message.contains(expected), "{expected} in: {message}");
    }
    assert_eq!(
        message.matches("already in use").count(),
        1,
        "said once: {message}"
    );
    assert!(
        !data.exists(),
        "a taken MQTT port created {}",
        data.display()
    );
}

/// `hexdash serve` as an operator runs it, output piped: the taken port is
/// stated once, without colour codes, and `./data/` is not created.
#[test]
fn the_binary_states_a_taken_port_once_in_plain_text() {
    let (taken, dir) = taken_port_and_folder();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hexdash"))
        .args(["serve", "--http-addr", "127.0.0.1:0", "--mqtt-addr"])
        .arg(taken.local_addr().unwrap().to_string())
        .current_dir(&dir.0)
        .env_clear()
        .env("HEXDASH_JWT_SECRET", "a-test-secret")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("hexdash did not exit with its port taken");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(text.matches("--mqtt-addr").count(), 1, "{text}");
    assert!(text.contains("HEXDASH_MQTT_ADDR"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in piped output: {text:?}"
    );
    assert!(!dir.0.join("data").exists(), "./data/ was created");
}

#[tokio::test]
async fn the_root_says_where_to_go() {
    let app = spawn_app().await;
    let (status, index) = app.get("/", None).await;
    assert_eq!(status, 200, "{index}");
    let links = index["links"].as_object().expect("links");
    for name in ["console", "docs", "openapi", "health", "metrics"] {
        let link = links[name].as_str().expect(name);
        let response = app.client.get(app.url(link)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}: {link}");
    }
    app.stop().await;
}

#[tokio::test]
async fn metrics_have_help_requests_by_route_build_and_process() {
    let app = spawn_app().await;
    let order = uuid::Uuid::new_v4();
    let (status, _) = app.get(&format!("/v1/orders/{order}"), None).await;
    assert_eq!(status, 401);
    let (status, _) = app.get(&format!("/no-such-page/{order}"), None).await;
    assert_eq!(status, 404);

    let text = prometheus_text::scrape(&app).await;
    prometheus_text::assert_well_formed(&text);
    for expected in [
        r#"hexdash_http_requests_total{method="GET",route="/v1/orders/{order_id}",status="401"}"#,
        r#"hexdash_http_requests_total{method="GET",route="unmatched",status="404"}"#,
        r#"hexdash_http_request_duration_seconds_bucket{method="GET",route="/v1/orders/{order_id}",status="401",le="0.001"}"#,
        concat!(
            r#"hexdash_build_info{version=""#,
            env!("CARGO_PKG_VERSION"),
            r#""} 1"#
        ),
        "\nprocess_cpu_seconds_total ",
        "\nprocess_resident_memory_bytes ",
        "\nprocess_open_fds ",
        "\nprocess_start_time_seconds ",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(
        !text.contains(&order.to_string()),
        "a raw path became a label:\n{text}"
    );
    app.stop().await;
}
