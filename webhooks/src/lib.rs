//! Webhooks: hexdash's domain events POSTed, signed, to integrators' HTTP
//! endpoints, with a log of every attempt.
//!
//! The parts, each in its own module:
//! - [`endpoint`]: what an admin registers ([`Endpoint`]: id, url, event
//!   types, secret, enabled flag) and the validation of a registration
//!   ([`EndpointSpec::parse`], [`ValidationError`] with a client-safe
//!   reason).
//! - [`signature`]: the `Hexdash-Signature` header (HMAC-SHA256 over
//!   `"{timestamp}.{body}"` with the endpoint's secret) and [`verify`],
//!   which a receiver (and our tests) use to check it.
//! - [`store`]: the endpoints and the delivery log in SQL, over sqlx's `Any`
//!   pool (SQLite or PostgreSQL, one statement text for both). The tables
//!   come from the `0006_webhooks.sql` migrations, which the domain crate's
//!   migrator applies; this crate runs no migrations.
//! - [`deliver`]: the [`Deliverer`], one HTTP POST of an event with a bounded
//!   timeout and no redirects, classified into an [`Attempt`].
//! - [`consumer`]: [`WebhookConsumer`], one per endpoint, which takes an
//!   event ([`EnvelopeBytes`], defined in [`deliver`]) from the event stream, skips it unless the
//!   endpoint wants it, delivers it, logs the attempt and answers
//!   `Err` for a failure the stream's runner should retry.
//!
//! **Architecture Invariant:** this crate knows no event type, no order and
//! no HTTP route: the caller passes the known event types in, the event
//! arrives as bytes already serialised, and the API maps [`ValidationError`]
//! to its own error body. It depends on neither the event stream nor the
//! domain crate, so those can change without touching it.
//!
//! **Architecture Invariant:** one [`WebhookConsumer`] delivers to one
//! endpoint and shares nothing with the others but the HTTP client's
//! connection pool (no lock, no queue): a slow or dead receiver holds up
//! only its own consumer, and the runner that drives consumers retries it
//! with backoff and dead-letters what keeps failing.
//!
//! **API Boundary:** the public items re-exported below.

pub mod consumer;
pub mod deliver;
pub mod endpoint;
pub mod signature;
pub mod store;

pub use consumer::{DeliveryError, Handled, NowMs, Skipped, WebhookConsumer};
pub use deliver::{Attempt, Config, Deliverer, EnvelopeBytes, Outcome};
pub use endpoint::{Endpoint, EndpointId, EndpointSpec, MAX_URL_LEN, Secret, ValidationError};
pub use signature::{
    EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, VerifyError, signature_header, verify,
};
