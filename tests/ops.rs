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

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = TempDir(std::env::temp_dir().join(format!("hexdash-test-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();

    let mut config = test_config(&dir.0);
    config.http_addr = taken.local_addr().unwrap();
    let err = hexdash::App::build(config)
        .await
        .err()
        .expect("HTTP port taken");
    assert!(
        format!("{err:#}").contains("cannot listen for HTTP"),
        "{err:#}"
    );

    let mut config = test_config(&dir.0);
    config.mqtt_addr = taken.local_addr().unwrap();
    let err = hexdash::App::build(config)
        .await
        .err()
        .expect("MQTT port taken");
    assert!(format!("{err:#}").contains("MQTT"), "{err:#}");
}
