//! Where a driver's answer to an offer is handled. On one node, here: the
//! offer is in this process's matcher. In a cluster the answer may reach
//! any api node, while the offer lives in the memory of the node whose
//! matcher made it (the leader of the order's region); an
//! [`AnswerRouting`] (the binary's, over Redis and HTTP) forwards it
//! there. The REST contract does not change: the driver gets the owner's
//! answer as if it had asked the owner.

use async_trait::async_trait;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use engine::OfferId;

use crate::AppState;

/// Marks a request another node forwarded: it is answered where it lands,
/// never forwarded again (no loops, whatever Redis says).
pub const FORWARDED_HEADER: &str = "x-hexdash-forwarded-by";

/// Forwards an answer to the node that holds its offer.
#[async_trait]
pub trait AnswerRouting: Send + Sync {
    /// The owner's response to the request (`path_and_query` as the driver
    /// sent it, with its `Authorization` header, for the owner to
    /// authenticate again), a 503 when the owner cannot be reached, or
    /// `None` when no other node holds the offer (answer here).
    async fn forward(
        &self,
        offer_id: OfferId,
        path_and_query: &str,
        headers: &HeaderMap,
    ) -> Option<Response>;
}

/// The owner's response when another node holds `offer_id`; `None` when
/// the answer is this node's to give (one node, a forwarded request, or an
/// offer this node's matcher knows).
pub(crate) async fn forwarded(
    state: &AppState,
    offer_id: OfferId,
    headers: &HeaderMap,
    uri: &Uri,
) -> Option<Response> {
    let routing = state.answers.as_ref()?;
    if headers.contains_key(FORWARDED_HEADER) || state.matcher.offer_state(offer_id).is_some() {
        return None;
    }
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    routing.forward(offer_id, path_and_query, headers).await
}
