//! What every HTTP answer says to browsers: security headers, and the
//! cross-origin (CORS) policy of the API.
//!
//! **Security headers**, added to each answer that does not set its own
//! (the console sets a policy of its own for its pages):
//! `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
//! `X-Frame-Options: DENY`, and on everything that is not an HTML page
//! `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`
//! (a JSON answer opened as a page runs nothing and cannot be framed; the
//! API docs page at `/docs` keeps the scripts it needs) and
//! `Cache-Control: no-store` (answers carry personal data; nothing in
//! between keeps them).
//!
//! With TLS (`[tls]`), `Strict-Transport-Security: max-age=31536000` too.
//!
//! **CORS**: none by default. The console is served from the same origin
//! as the API, so it needs none, and a browser on another site may not
//! read the API's answers. [`Config::cors_allowed_origins`] lets named
//! origins (a restaurant dashboard on its own domain) call it: their
//! preflights get `204` with the methods and headers the API takes, their
//! answers `Access-Control-Allow-Origin`. Credentials are never allowed:
//! the API authenticates with bearer tokens, not cookies, so a site can
//! only use a token its own user gave it. A preflight from any other
//! origin is answered `403` with the error body.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http_server::Config;

/// The methods a cross-origin caller may use (every method the API routes).
const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";

/// The request headers a cross-origin caller may send: the token, the JSON
/// body's type, and the idempotency key of payments and orders.
const ALLOW_HEADERS: &str = "authorization, content-type, idempotency-key";

/// Headers a cross-origin caller may read besides the safe ones.
const EXPOSE_HEADERS: &str = "retry-after, location";

/// How long a browser may keep a preflight's answer, seconds.
const PREFLIGHT_MAX_AGE_S: &str = "600";

/// HSTS on a listener that serves TLS: a year, as browsers' preload lists
/// ask.
const HSTS: &str = "max-age=31536000";

/// The policy on answers that are not HTML pages.
const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Why an entry of `http.cors_allowed_origins` was refused.
#[derive(Debug)]
pub struct BadOrigin(pub String);

impl std::fmt::Display for BadOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "http.cors_allowed_origins: {:?} is not an origin (scheme://host[:port], no path) or \"*\"",
            self.0
        )
    }
}

impl std::error::Error for BadOrigin {}

/// What [`apply`] adds: the CORS policy, and HSTS when the listener
/// serves TLS.
#[derive(Clone, Debug)]
pub struct Policy {
    cors: Cors,
    hsts: bool,
}

impl Policy {
    /// The policy of a listener with `config`, serving TLS or not.
    pub fn new(config: &Config, tls: bool) -> Result<Self, BadOrigin> {
        Ok(Self {
            cors: Cors::new(config)?,
            hsts: tls,
        })
    }
}

/// The CORS policy [`Config::cors_allowed_origins`] describes.
#[derive(Clone, Debug, Default)]
pub struct Cors {
    any: bool,
    origins: Vec<HeaderValue>,
}

impl Cors {
    /// Checks and keeps the configured origins.
    pub fn new(config: &Config) -> Result<Self, BadOrigin> {
        let mut cors = Self::default();
        for origin in &config.cors_allowed_origins {
            if origin == "*" {
                cors.any = true;
                continue;
            }
            if !is_origin(origin) {
                return Err(BadOrigin(origin.clone()));
            }
            let value = HeaderValue::from_str(origin).map_err(|_| BadOrigin(origin.clone()))?;
            cors.origins.push(value);
        }
        Ok(cors)
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        self.any || self.origins.iter().any(|o| o == origin)
    }

    fn enabled(&self) -> bool {
        self.any || !self.origins.is_empty()
    }
}

/// `scheme://host[:port]` with an http(s) scheme, as browsers send it.
fn is_origin(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// Middleware: answers CORS preflights, then adds the CORS and security
/// headers to the answer (module docs).
pub async fn apply(
    State(policy): State<std::sync::Arc<Policy>>,
    request: Request,
    next: Next,
) -> Response {
    let cors = &policy.cors;
    let origin = request.headers().get(header::ORIGIN).cloned();
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let allowed = match &origin {
        Some(origin) if cors.enabled() => cors.allows(origin),
        _ => false,
    };
    let mut response = if preflight && cors.enabled() {
        if allowed {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE_S),
            );
            response
        } else {
            forbidden_origin()
        }
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    if let (true, Some(origin)) = (allowed, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    if cors.enabled() {
        // The answer depends on the Origin: caches must not mix them.
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
    security_headers(headers);
    if policy.hsts {
        // Served over TLS: browsers keep to https for a year.
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}

fn forbidden_origin() -> Response {
    auth::reply::error_response(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        "this origin may not call the API from a browser (http.cors_allowed_origins)",
    )
}

fn security_headers(headers: &mut HeaderMap) {
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_FRAME_OPTIONS, "DENY");
    if !html {
        set(header::CONTENT_SECURITY_POLICY, API_CONTENT_SECURITY_POLICY);
        set(header::CACHE_CONTROL, "no-store");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(origins: &[&str]) -> Config {
        Config {
            cors_allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            ..Config::default()
        }
    }

    #[test]
    fn origins_are_checked() {
        assert!(
            Cors::new(&config(&[
                "https://shop.example",
                "http://localhost:3000",
                "*"
            ]))
            .is_ok()
        );
        for bad in [
            "shop.example",
            "https://shop.example/path",
            "ftp://x",
            "https://",
            "https://a b",
        ] {
            let err = Cors::new(&config(&[bad])).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn security_headers_keep_what_an_answer_set() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        security_headers(&mut headers);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            API_CONTENT_SECURITY_POLICY
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

        let mut page = HeaderMap::new();
        page.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        security_headers(&mut page);
        assert!(page.get(header::CONTENT_SECURITY_POLICY).is_none());
        assert_eq!(page[header::X_FRAME_OPTIONS], "DENY");
    }
}
