//! An admin's ban reaches every edge: the banned driver's token is refused
//! by REST, by the WebSocket stream and by the MQTT broker's login, and the
//! unban lets it back in. A logout does the same for the tokens the user
//! held, also after a restart.

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

/// A ban closes the user's open sessions at once, without waiting for
/// them to send anything: the driver's MQTT connection (idle, keep-alive
/// 30 s, longer than the test waits), its driver stream and its tracking
/// socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_closes_open_mqtt_and_websocket_sessions() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let app = spawn_app().await;
    let driver = app.signup("soon-banned", "driver").await;
    let bystander = app.signup("bystander", "driver").await;
    let admin = app.admin_token().await;

    // MQTT: connected and subscribed to its offers topic.
    let connect = |user: &User| {
        let mut opts = MqttOptions::new(
            format!("ban-open-{}", uuid::Uuid::new_v4().simple()),
            app.mqtt.ip().to_string(),
            app.mqtt.port(),
        );
        opts.set_credentials(user.id.clone(), user.token.clone());
        opts.set_keep_alive(Duration::from_secs(30));
        AsyncClient::new(opts, 8)
    };
    let (client, mut mqtt) = connect(&driver);
    let (other_client, mut other_mqtt) = connect(&bystander);
    for (client, eventloop, user) in [
        (&client, &mut mqtt, &driver),
        (&other_client, &mut other_mqtt, &bystander),
    ] {
        client
            .subscribe(
                format!("drivers/{}/offers", user.id),
                rumqttc::QoS::AtMostOnce,
            )
            .await
            .unwrap();
        tokio::time::timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await.unwrap() {
                    return;
                }
            }
        })
        .await
        .expect("subscribed in time");
    }
    // Its driver stream and a tracking socket.
    let (mut stream, _) = tokio_tungstenite::connect_async(
        app.ws_url(&format!("/v1/drivers/stream?token={}", driver.token)),
    )
    .await
    .unwrap();
    let (mut tracking, _) =
        tokio_tungstenite::connect_async(app.ws_url(&format!("/v1/ws?token={}", driver.token)))
            .await
            .unwrap();

    let (status, body) = app
        .post(
            &format!("/v1/admin/users/{}/ban", driver.id),
            Some(&admin),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The MQTT connection ends (the broker drops it).
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            if mqtt.poll().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the banned driver's MQTT connection was closed"
    );
    // Both sockets get a Close frame saying why (the tracking socket an
    // error `banned` first).
    for (name, socket) in [("driver stream", &mut stream), ("tracking", &mut tracking)] {
        let close = tokio::time::timeout(WAIT, async {
            loop {
                match socket.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(Message::Text(t))) => {
                        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                        assert_eq!(v["code"], "banned", "{v}");
                    }
                    Some(Ok(_)) => {}
                    other => panic!("{name}: {other:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name} closed in time"));
        let frame = close.expect("a close frame");
        assert_eq!(
            (u16::from(frame.code), frame.reason.as_str()),
            (1008, "banned"),
            "{name}"
        );
    }
    // Another driver's session is untouched: it still talks to the broker.
    other_client
        .publish(
            format!("drivers/{}/location", bystander.id),
            rumqttc::QoS::AtLeastOnce,
            false,
            serde_json::json!({"lat": 57.7, "lng": 11.97, "ts": now_ms()}).to_string(),
        )
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::PubAck(_)) = other_mqtt.poll().await.unwrap() {
                return;
            }
        }
    })
    .await
    .expect("the bystander's connection still works");
    app.stop().await;
}

/// `GET /v1/me` with `token`: the status and the error code, if any.
async fn me(app: &TestApp, token: &str) -> (u16, Option<String>) {
    let (status, body) = app.get("/v1/me", Some(token)).await;
    (status, body["error"]["code"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_replayed_after_logout_is_refused_everywhere_and_after_a_restart() {
    let dir = TempDir::create();
    let app = spawn_app_in(&dir.0, |_| {}).await;
    let driver = app.signup("logged-out-driver", "driver").await;
    assert!(mqtt_login_accepted(&app, &driver).await);
    let (status, body) = app
        .post(
            "/v1/auth/logout",
            Some(&driver.token),
            serde_json::json!({"all": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        me(&app, &driver.token).await,
        (401, Some("token_revoked".into()))
    );
    assert_eq!(ws_stream_status(&app, &driver.token).await, 401);
    assert!(
        !mqtt_login_accepted(&app, &driver).await,
        "MQTT took a logged-out token"
    );
    app.stop().await;

    // The same database, a new process's memory: still refused.
    let app = spawn_app_in(&dir.0, |_| {}).await;
    assert_eq!(
        me(&app, &driver.token).await,
        (401, Some("token_revoked".into()))
    );
    assert!(!mqtt_login_accepted(&app, &driver).await);
    app.stop().await;
}
