//! An admin's ban reaches every edge: the banned driver's token is refused
//! by REST, by the WebSocket stream and by the MQTT broker's login, and the
//! unban lets it back in.

mod common;

use std::time::Duration;

use common::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};

/// Whether the broker lets `user` in: a CONNACK, or the connection dropped
/// (rumqttd closes refused logins without a CONNACK code).
async fn mqtt_login_accepted(app: &TestApp, user: &User) -> bool {
    let mut opts = MqttOptions::new(
        format!("ban-{}", uuid::Uuid::new_v4().simple()),
        app.mqtt.ip().to_string(),
        app.mqtt.port(),
    );
    opts.set_credentials(user.id.clone(), user.token.clone());
    opts.set_keep_alive(Duration::from_secs(30));
    let (_client, mut eventloop) = AsyncClient::new(opts, 8);
    let answer = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    });
    answer.await.expect("the broker answers in time")
}

async fn ws_stream_status(app: &TestApp, token: &str) -> u16 {
    let url = app.ws_url(&format!("/v1/drivers/stream?token={token}"));
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected WebSocket error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_reaches_rest_websocket_and_mqtt() {
    let app = spawn_app().await;
    let driver = app.signup("banned-driver", "driver").await;
    let admin = app.admin_token().await;
    assert!(mqtt_login_accepted(&app, &driver).await);
    assert_eq!(ws_stream_status(&app, &driver.token).await, 101);

    let (status, body) = app
        .post(
            &format!("/v1/admin/users/{}/ban", driver.id),
            Some(&admin),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.get("/v1/me", Some(&driver.token)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("banned"))
    );
    assert_eq!(ws_stream_status(&app, &driver.token).await, 401);
    assert!(
        !mqtt_login_accepted(&app, &driver).await,
        "MQTT refuses the banned driver"
    );

    let (status, _) = app
        .post(
            &format!("/v1/admin/users/{}/unban", driver.id),
            Some(&admin),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(mqtt_login_accepted(&app, &driver).await);
    app.stop().await;
}
