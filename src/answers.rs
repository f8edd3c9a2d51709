//! Drivers' answers to offers across nodes (see `api::answers`): a
//! matcher node records who holds each offer it makes
//! ([`record_offer_owners`]: `{prefix}offer:{offer_id}` → its advertised
//! URL, in Redis, for as long as the offer can be answered), and every api
//! node forwards an answer to an offer it does not hold to that URL over
//! HTTP ([`Forwarder`]), with the driver's own `Authorization` header (the
//! owner authenticates the driver again) and a loop-guard header.
//!
//! Why HTTP and not a Redis request/reply: the owner already serves the
//! answer's route, with its checks, errors and metrics; forwarding keeps
//! one implementation and gives the driver the owner's response
//! byte for byte, and a dead owner shows as a connection error at once
//! rather than as a reply that never comes.

use std::time::Duration;

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::OfferId;
use tokio_util::sync::CancellationToken;

/// How long an offer's owner is remembered beyond the offer's own
/// timeout: a late answer still reaches the owner, which says it lapsed.
const OWNER_MEMORY_MS: u64 = 120_000;

/// Looks for an owner this many times, [`LOOKUP_GAP`] apart: an answer
/// right after the offer can beat the owner's record (it is written
/// beside the offer's delivery, not before it).
const LOOKUPS: u32 = 10;
const LOOKUP_GAP: Duration = Duration::from_millis(50);

/// How long the owner may take to answer a forwarded request.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers forwarded, by `outcome` (forwarded, unreachable, unknown).
pub const FORWARDED_TOTAL: &str = "hexdash_offer_answers_forwarded_total";
/// Offer owners this node recorded in Redis, by `outcome` (recorded,
/// failed, lagged).
pub const OWNERS_RECORDED_TOTAL: &str = "hexdash_offer_owners_recorded_total";

/// HELP text of this module's metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        FORWARDED_TOTAL,
        "Drivers' answers to offers another node holds, by outcome (forwarded, unreachable, unknown)"
    );
    metrics::describe_counter!(
        OWNERS_RECORDED_TOTAL,
        "Offers whose owning node this node recorded in Redis, by outcome"
    );
}

/// The URL other nodes reach this node at: `cluster.advertise_url`, else
/// the bound HTTP address (a wildcard as 127.0.0.1).
pub fn advertise_url(config: &cluster::Config, http_addr: std::net::SocketAddr) -> String {
    match &config.advertise_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if http_addr.ip().is_unspecified() => {
            format!("http://127.0.0.1:{}", http_addr.port())
        }
        None => format!("http://{http_addr}"),
    }
}

/// Records in Redis, for every offer this node's matcher makes, that this
/// node (`me`) holds it, until `shutdown`.
pub async fn record_offer_owners(
    mut changes: engine::Receiver<engine::Change>,
    owners: cluster::OfferOwners,
    me: String,
    offer_timeout_s: u64,
    shutdown: CancellationToken,
) {
    let ttl_ms = offer_timeout_s
        .saturating_mul(1000)
        .saturating_add(OWNER_MEMORY_MS);
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv_direct() => change,
        };
        let offer = match change {
            // An offer relayed here from its owner's matcher (for a driver
            // pinging this node) is the owner's to record, not ours.
            Ok(engine::Change::Offer(offer)) if !offer.relayed => offer,
            Ok(_) => continue,
            Err(engine::RecvError::Overflowed(n)) => {
                // Those offers' answers reach this node only directly.
                metrics::counter!(OWNERS_RECORDED_TOTAL, "outcome" => "lagged").increment(n);
                continue;
            }
            Err(engine::RecvError::Closed) => return,
        };
        match owners
            .record(&offer.offer_id.to_string(), &me, ttl_ms)
            .await
        {
            Ok(()) => {
                metrics::counter!(OWNERS_RECORDED_TOTAL, "outcome" => "recorded").increment(1)
            }
            Err(e) => {
                metrics::counter!(OWNERS_RECORDED_TOTAL, "outcome" => "failed").increment(1);
                tracing::warn!(offer_id = %offer.offer_id, error = %e, "cannot record an offer's owner");
            }
        }
    }
}

/// Forwards answers to the node that holds the offer.
pub struct Forwarder {
    pub owners: cluster::OfferOwners,
    /// This node's advertised URL: an offer it holds is answered here.
    pub me: String,
    pub http: reqwest::Client,
}

impl Forwarder {
    /// A forwarder with its own HTTP client.
    pub fn new(owners: cluster::OfferOwners, me: String) -> Forwarder {
        let http = reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .connect_timeout(Duration::from_secs(1))
            .build()
            .unwrap_or_default();
        Forwarder { owners, me, http }
    }

    async fn owner(&self, offer_id: OfferId) -> Result<Option<String>, cluster::Error> {
        let key = offer_id.to_string();
        for _ in 0..LOOKUPS {
            let owner = self.owners.owner(&key).await?;
            if owner.is_some() {
                return Ok(owner);
            }
            tokio::time::sleep(LOOKUP_GAP).await;
        }
        Ok(None)
    }
}

fn unavailable(code: &str, message: &str) -> Response {
    auth::reply::error_response(StatusCode::SERVICE_UNAVAILABLE, code, message)
}

#[async_trait]
impl api::answers::AnswerRouting for Forwarder {
    async fn forward(
        &self,
        offer_id: OfferId,
        path_and_query: &str,
        headers: &HeaderMap,
    ) -> Option<Response> {
        let owner = match self.owner(offer_id).await {
            Ok(Some(owner)) if owner != self.me => owner,
            // This node's, or nobody's: answered here (a 404 if unknown).
            Ok(_) => {
                metrics::counter!(FORWARDED_TOTAL, "outcome" => "unknown").increment(1);
                return None;
            }
            Err(e) => {
                tracing::warn!(%offer_id, error = %e, "cannot look up an offer's owner");
                metrics::counter!(FORWARDED_TOTAL, "outcome" => "unreachable").increment(1);
                return Some(unavailable(
                    "offer_owner_unreachable",
                    "cannot find the node that made this offer (Redis is unreachable); try again",
                ));
            }
        };
        let mut request = self
            .http
            .post(format!("{owner}{path_and_query}"))
            .header(api::answers::FORWARDED_HEADER, &self.me);
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            request = request.header(header::AUTHORIZATION, auth.clone());
        }
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(%offer_id, owner, error = %e, "the node that made an offer does not answer");
                metrics::counter!(FORWARDED_TOTAL, "outcome" => "unreachable").increment(1);
                return Some(unavailable(
                    "offer_owner_unreachable",
                    "the node that made this offer does not answer; try again, or wait for the offer to lapse",
                ));
            }
        };
        let status = answer.status();
        let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
        let body = match answer.bytes().await {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(%offer_id, owner, error = %e, "the offer's node broke off its answer");
                metrics::counter!(FORWARDED_TOTAL, "outcome" => "unreachable").increment(1);
                return Some(unavailable(
                    "offer_owner_unreachable",
                    "the node that made this offer broke off its answer; try again",
                ));
            }
        };
        metrics::counter!(FORWARDED_TOTAL, "outcome" => "forwarded").increment(1);
        let mut response = (status, body).into_response();
        if let Some(content_type) = content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        Some(response)
    }
}
