//! Fuzzing access (hidden from the docs; not an API): a request body
//! through [`ApiJson`], the extractor every JSON route takes, for each
//! request type the routes read. The `fuzz/` crate picks the type with the
//! first byte of its input.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::Request;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::extract::ApiJson;
use crate::extract::strict;
use crate::routes;

/// What the extractor made of a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The body was read into the route's type.
    Accepted,
    /// Refused with this status (the route would answer it).
    Refused(StatusCode),
}

/// The request types, in the order [`body`] numbers them.
pub const TYPES: [&str; 26] = [
    "SignupRequest",
    "LoginRequest",
    "RefreshRequest",
    "LogoutRequest",
    "CreateOrderRequest",
    "StatusRequest",
    "AddItemRequest",
    "SetQuantityRequest",
    "CheckoutRequest",
    "AddItemsRequest",
    "UpdateItemRequest",
    "ProfileUpdate",
    "NewAddress",
    "RefundBody",
    "ForceCancelRequest",
    "ReassignRequest",
    "AvailabilityRequest",
    "NewWebhook",
    "WebhookUpdate",
    "CreateRestaurantRequest",
    "UpdateRestaurantRequest",
    "ReviewRequest",
    "HideRequest",
    "MarkAllRead",
    "NotificationPreferencesUpdate",
    "SimulatorRules",
];

/// Reads `bytes` as the body of a route taking `TYPES[kind % TYPES.len()]`,
/// with `Content-Type: application/json`. Request types that are also
/// serialised (orders, checkout) must read back what they write.
pub fn body(kind: u8, bytes: &[u8]) -> Outcome {
    use routes::{
        auth, cart, dispatcher, drivers, menu, orders, payments, profile, restaurants, reviews,
        webhooks,
    };
    match usize::from(kind) % TYPES.len() {
        0 => extract::<auth::SignupRequest>(bytes),
        1 => extract::<auth::LoginRequest>(bytes),
        2 => extract::<auth::RefreshRequest>(bytes),
        3 => extract::<auth::LogoutRequest>(bytes),
        4 => round_trip::<orders::CreateOrderRequest>(bytes),
        5 => extract::<orders::StatusRequest>(bytes),
        6 => extract::<cart::AddItemRequest>(bytes),
        7 => extract::<cart::SetQuantityRequest>(bytes),
        8 => round_trip::<cart::CheckoutRequest>(bytes),
        9 => extract::<menu::AddItemsRequest>(bytes),
        10 => extract::<menu::UpdateItemRequest>(bytes),
        11 => extract::<profile::ProfileUpdate>(bytes),
        12 => extract::<profile::NewAddress>(bytes),
        13 => extract::<payments::RefundBody>(bytes),
        14 => extract::<dispatcher::ForceCancelRequest>(bytes),
        15 => extract::<dispatcher::ReassignRequest>(bytes),
        16 => extract::<drivers::AvailabilityRequest>(bytes),
        17 => extract::<webhooks::NewWebhook>(bytes),
        18 => extract::<webhooks::WebhookUpdate>(bytes),
        19 => extract::<restaurants::CreateRestaurantRequest>(bytes),
        20 => extract::<restaurants::UpdateRestaurantRequest>(bytes),
        21 => extract::<reviews::ReviewRequest>(bytes),
        22 => extract::<reviews::HideRequest>(bytes),
        23 => extract::<contract::notify::MarkAllRead>(bytes),
        24 => extract::<contract::channels::NotificationPreferencesUpdate>(bytes),
        _ => extract::<contract::channels::SimulatorRules>(bytes),
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StatusCode> {
    let request = Request::builder()
        .method("POST")
        .uri("/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes.to_vec()));
    // A request of a fixed method, URI and header cannot be invalid.
    let request = request.unwrap_or_else(|e| panic!("building the request failed: {e}"));
    match ready(ApiJson::<T>::from_request(request, &())) {
        Ok(ApiJson(value)) => Ok(value),
        Err(e) => Err(e.into_response().status()),
    }
}

fn extract<T: DeserializeOwned>(bytes: &[u8]) -> Outcome {
    match decode::<T>(bytes) {
        Ok(_) => Outcome::Accepted,
        Err(status) => Outcome::Refused(status),
    }
}

/// As [`extract`], and an accepted value written as JSON reads back into
/// the same JSON.
fn round_trip<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Outcome {
    let value = match decode::<T>(bytes) {
        Ok(value) => value,
        Err(status) => return Outcome::Refused(status),
    };
    let written = serde_json::to_value(&value)
        .unwrap_or_else(|e| panic!("an accepted body does not serialise: {e}"));
    let again: T = strict::from_value(written.clone())
        .unwrap_or_else(|e| panic!("an accepted body does not read back: {e}; {written}"));
    let rewritten = serde_json::to_value(&again)
        .unwrap_or_else(|e| panic!("a read-back body does not serialise: {e}"));
    assert_eq!(
        written, rewritten,
        "an accepted body changed on a round trip"
    );
    Outcome::Accepted
}

/// Polls a future that never waits (the body is in memory) to its end.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        // Reading an in-memory body completes in its first poll.
        Poll::Pending => panic!("the extractor waited on an in-memory body"),
    }
}
