//! [`WebhookConsumer`]: one endpoint's consumer of the event stream.
//!
//! The event stream's runner calls [`WebhookConsumer::handle`] with each
//! event in order; `Ok` moves it on, `Err` makes it retry the same event
//! with backoff and, after its configured number of failures, put the event
//! in this consumer's dead-letter table and move on. One consumer per
//! endpoint (named by [`WebhookConsumer::name`]), so each endpoint has its
//! own position, retries and dead letters, and a receiver that hangs until
//! the timeout delays only its own events.
//!
//! Each call reads the endpoint's row again, so disabling, deleting or a
//! 410 takes effect at the next event without restarting the consumer.
//! Skipped (answered `Ok` without sending, and not logged): events of types
//! the endpoint did not subscribe to, events for a disabled or deleted
//! endpoint, and events the log says were already delivered (the stream
//! delivers at least once).
//!
//! **410 Gone** disables the endpoint (reason logged and stored) and
//! answers `Ok`: the receiver said it wants nothing more, so retrying or
//! dead-lettering every later event would only fill tables. An admin
//! re-enables it; events in between are not sent.

use std::sync::Arc;

use sqlx::AnyPool;

use crate::deliver::{Deliverer, EnvelopeBytes, Outcome};
use crate::endpoint::Endpoint;
use crate::store;

/// The wall clock, Unix ms: injected, so tests and the application's one
/// clock decide what "now" is (signature timestamps, log times).
pub type NowMs = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Why [`WebhookConsumer::handle`] did not deliver and wants the event
/// retried. Every variant is retryable.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The attempt failed (logged as attempt number `attempt`).
    #[error("attempt {attempt} failed ({}): {}", outcome.as_str(), detail.as_deref().unwrap_or("-"))]
    Failed {
        /// Its number in the log, from 1.
        attempt: i64,
        /// How it failed.
        outcome: Outcome,
        /// The receiver's status, when it answered.
        http_status: Option<u16>,
        /// What went wrong.
        detail: Option<String>,
    },
    /// Reading the endpoint or writing the log failed. If the POST itself
    /// had succeeded, the retry sends it again: receivers deduplicate by
    /// `Hexdash-Event-Id`.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// What [`WebhookConsumer::handle`] did with an event it answered `Ok` for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Delivered (2xx) on attempt number `attempt`.
    Delivered {
        /// Its number in the log, from 1.
        attempt: i64,
    },
    /// The receiver answered 410 Gone; the endpoint is now disabled.
    Disabled,
    /// Not sent, and not logged.
    Skipped(Skipped),
}

/// Why an event was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// The endpoint did not subscribe to its type.
    NotSubscribed,
    /// The endpoint is disabled.
    Disabled,
    /// The endpoint was deleted.
    Deleted,
    /// The log already has a successful delivery of it.
    AlreadyDelivered,
}

/// One endpoint's consumer of the event stream (see the module docs).
#[derive(Clone)]
pub struct WebhookConsumer {
    /// The endpoint as it was when the consumer was made: its id names the
    /// consumer; every event re-reads the rest from the store.
    pub endpoint: Endpoint,
    deliverer: Deliverer,
    pool: AnyPool,
    now_ms: NowMs,
}

impl WebhookConsumer {
    /// A consumer delivering to `endpoint` with `deliverer` (share one
    /// among all consumers), logging to `pool`.
    pub fn new(endpoint: Endpoint, deliverer: Deliverer, pool: AnyPool, now_ms: NowMs) -> Self {
        Self {
            endpoint,
            deliverer,
            pool,
            now_ms,
        }
    }

    /// The consumer's name for the event stream (its position and dead
    /// letters are kept under it): `webhook:<endpoint id>`.
    pub fn name(&self) -> String {
        format!("webhook:{}", self.endpoint.id)
    }

    /// Delivers one event if the endpoint wants it, and logs the attempt.
    /// `Err` means "retry this event later" (see [`DeliveryError`]).
    pub async fn handle(&self, envelope: &EnvelopeBytes) -> Result<Handled, DeliveryError> {
        let id = self.endpoint.id;
        let Some(endpoint) = store::get_endpoint(&self.pool, id).await? else {
            return Ok(Handled::Skipped(Skipped::Deleted));
        };
        if !endpoint.enabled {
            return Ok(Handled::Skipped(Skipped::Disabled));
        }
        if !endpoint.wants(&envelope.event_type) {
            return Ok(Handled::Skipped(Skipped::NotSubscribed));
        }
        if store::was_delivered(&self.pool, id, &envelope.event_id).await? {
            return Ok(Handled::Skipped(Skipped::AlreadyDelivered));
        }
        let started_ms = (self.now_ms)();
        let attempt = self
            .deliverer
            .deliver(&endpoint.url, &endpoint.secret, envelope, started_ms)
            .await;
        let number = store::record_attempt(
            &self.pool,
            id,
            &envelope.event_id,
            &envelope.event_type,
            started_ms,
            &attempt,
        )
        .await?;
        match attempt.outcome {
            Outcome::Delivered => Ok(Handled::Delivered { attempt: number }),
            Outcome::Gone => {
                let reason = "the receiver answered 410 Gone";
                store::set_enabled(&self.pool, id, false, Some(reason), (self.now_ms)()).await?;
                tracing::warn!(endpoint = %id, event_id = %envelope.event_id, "webhook endpoint disabled: {reason}");
                Ok(Handled::Disabled)
            }
            outcome => {
                tracing::info!(
                    endpoint = %id,
                    event_id = %envelope.event_id,
                    attempt = number,
                    outcome = outcome.as_str(),
                    "webhook delivery failed"
                );
                Err(DeliveryError::Failed {
                    attempt: number,
                    outcome,
                    http_status: attempt.http_status,
                    detail: attempt.error,
                })
            }
        }
    }
}
