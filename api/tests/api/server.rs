//! The router behind a real server on port 0, with a real HTTP client.

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn over_real_http() {
    let app = TestApp::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    let email = format!("real-{}@example.com", uuid::Uuid::new_v4().simple());
    let r = http
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"email": email, "password": "password123", "name": "Real", "role": "restaurant"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email": email, "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .post(format!("{base}/v1/restaurants"))
        .bearer_auth(&token)
        .json(&json!({"name": "Real", "location": {"lat": 57.7, "lng": 11.97}, "address": "Street 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["restaurant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .get(format!("{base}/v1/restaurants/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Errors arrive as JSON with the right content type.
    let r = http
        .post(format!("{base}/v1/auth/signup"))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");

    server.abort();
}
