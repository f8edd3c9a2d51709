//! hexdash's REST API as the demo's actors call it: one shared HTTP client
//! and, per account, a [`Session`] that signs up once (an existing account
//! is reused, so a restart on the same database finds its city again),
//! logs in, and logs in again when its access token expires.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

/// Every demo account's password. Public on purpose: the accounts are
/// made-up people of a demo city (README says so).
pub const ACCOUNT_PASSWORD: &str = "demo-city-password";

/// What a REST call can end in besides a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server could not be reached or the answer not read.
    #[error("{method} {path}: {source}")]
    Transport {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// What failed.
        source: reqwest::Error,
    },
    /// A non-2xx answer, with our error body's code.
    #[error("{method} {path}: {status} {code}: {message}")]
    Status {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// `error.code` of the body (empty when there was none).
        code: String,
        /// `error.message` of the body.
        message: String,
    },
}

impl ApiError {
    /// The HTTP status of a non-2xx answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::Transport { .. } => None,
        }
    }
}

/// The server's REST API.
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    /// The API of the server listening on `http` (a wildcard address is
    /// reached on the loopback).
    pub fn new(http: SocketAddr) -> Api {
        Api {
            base: format!("http://{}", crate::reachable(http)),
            client: reqwest::Client::new(),
        }
    }

    /// The HTTP base URL, `http://host:port`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request; the JSON answer of a 2xx (`null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(key) = idempotency_key {
            req = req.header("idempotency-key", key);
        }
        let transport = |source| ApiError::Transport {
            method: method.clone(),
            path: path.to_owned(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let text = |k: &str| value["error"][k].as_str().unwrap_or_default().to_owned();
        Err(ApiError::Status {
            method,
            path: path.to_owned(),
            status: status.as_u16(),
            code: text("code"),
            message: text("message"),
        })
    }
}

/// One account's logged-in session.
pub struct Session {
    api: Arc<Api>,
    email: String,
    /// Kept to log in again; never logged.
    password: String,
    /// The account's user id (a courier's driver id).
    user_id: String,
    /// The current access token; replaced when it expires.
    token: Mutex<String>,
}

impl Session {
    /// Signs up `email` with `role` unless it exists, then logs in.
    pub async fn open(
        api: Arc<Api>,
        email: &str,
        name: &str,
        role: &str,
    ) -> Result<Session, ApiError> {
        let signup =
            json!({"email": email, "password": ACCOUNT_PASSWORD, "name": name, "role": role});
        match api
            .call(Method::POST, "/v1/auth/signup", None, Some(&signup), None)
            .await
        {
            Ok(_) => {}
            // Made by an earlier start on this database.
            Err(e) if e.status() == Some(409) => {}
            Err(e) => return Err(e),
        }
        Session::login(api, email, ACCOUNT_PASSWORD).await
    }

    /// Logs in to an existing account (the admin's).
    pub async fn login(api: Arc<Api>, email: &str, password: &str) -> Result<Session, ApiError> {
        let token = login_token(&api, email, password).await?;
        let me = api
            .call(Method::GET, "/v1/me", Some(&token), None, None)
            .await?;
        let user_id = me["user_id"].as_str().unwrap_or_default().to_owned();
        Ok(Session {
            api,
            email: email.to_owned(),
            password: password.to_owned(),
            user_id,
            token: Mutex::new(token),
        })
    }

    /// The account's user id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The current access token.
    pub fn token(&self) -> String {
        // A poisoned lock only means another task panicked mid-assignment
        // of a `String`; the value is still a whole token.
        self.token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Logs in again (after a 401 or for a new MQTT connection); the new
    /// token replaces the old.
    pub async fn renew(&self) -> Result<String, ApiError> {
        let token = login_token(&self.api, &self.email, &self.password).await?;
        *self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = token.clone();
        Ok(token)
    }

    /// A request as this account; a 401 logs in again and retries once.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        self.send_with_key(method, path, body, None).await
    }

    /// [`Session::send`] with an `Idempotency-Key` header.
    pub async fn send_with_key(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiError> {
        let token = self.token();
        match self
            .api
            .call(method.clone(), path, Some(&token), body, idempotency_key)
            .await
        {
            Err(e) if e.status() == Some(401) => {
                let token = self.renew().await?;
                self.api
                    .call(method, path, Some(&token), body, idempotency_key)
                    .await
            }
            other => other,
        }
    }
}

async fn login_token(api: &Api, email: &str, password: &str) -> Result<String, ApiError> {
    let body = json!({"email": email, "password": password});
    let answer = api
        .call(Method::POST, "/v1/auth/login", None, Some(&body), None)
        .await?;
    Ok(answer["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}
