//! The dispatcher console: a browser application served by hexdash at
//! `/console/`, its files embedded in the binary at compile time, so
//! `cargo build` alone makes a binary that serves it and nothing is
//! loaded from elsewhere at run time (the machine and many deployments
//! are offline).
//!
//! - [`router`]: `GET /console` (a redirect to `/console/`, so relative
//!   module imports resolve under it) and one route per file of
//!   [`assets::ASSETS`].
//! - [`assets`]: the embedded files, their media types, and the headers
//!   every answer carries (a content security policy that allows this
//!   origin only).
//!
//! The application itself (`assets/`) is plain JavaScript modules drawing
//! on Canvas 2D, with no build step and no third-party code: it logs in
//! through `POST /v1/auth/login`, reads `GET /v1/admin/console/*` and the
//! admin listings, follows couriers over the tracking socket's `area`
//! channel (`/v1/ws`) and intervenes through the admin REST routes, like
//! any other client of the public API.
//!
//! **Architecture Invariant:** depends on axum only: the console is a
//! client of the public interfaces, never of hexdash's crates.

pub mod assets;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Where the console is served (the directory; `/console` redirects here).
pub const PATH: &str = "/console/";

/// `GET /console` and one route per embedded file.
pub fn router() -> Router {
    let redirect = get(|| async { Redirect::permanent(PATH) });
    assets::ASSETS.iter().fold(
        Router::new().route("/console", redirect),
        |router, asset| {
            let path = if asset.path == assets::INDEX {
                PATH.to_owned()
            } else {
                format!("{PATH}{}", asset.path)
            };
            router.route(&path, get(move || async move { serve(asset) }))
        },
    )
}

fn serve(asset: &'static assets::Asset) -> Response {
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    for (name, value) in assets::HEADERS {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> Response {
        router()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_type_and_the_policy() {
        for asset in assets::ASSETS {
            let path = if asset.path == assets::INDEX {
                PATH.to_owned()
            } else {
                format!("{PATH}{}", asset.path)
            };
            let r = get(&path).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], asset.content_type);
            assert!(
                r.headers()[header::CONTENT_SECURITY_POLICY]
                    .to_str()
                    .unwrap()
                    .contains("default-src 'self'")
            );
        }
    }

    #[tokio::test]
    async fn the_bare_path_redirects_to_the_directory() {
        let r = get("/console").await;
        assert!(r.status().is_redirection());
        assert_eq!(r.headers()[header::LOCATION], PATH);
    }

    #[tokio::test]
    async fn an_unknown_file_is_not_served() {
        assert_eq!(
            get("/console/nope.js").await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
