//! One delivery attempt: a signed HTTP POST of an event, classified.
//!
//! The [`Deliverer`] holds one HTTP client (its connection pool is shared by
//! every endpoint; nothing else is) and never follows a redirect: a
//! receiver that moved answers 3xx, which is a failure an admin sees in the
//! log, rather than a signed event sent somewhere nobody registered. Every
//! attempt is bounded by [`Config::timeout_ms`], connecting included.
//!
//! **TLS:** `https` endpoints are reached over the system's TLS library
//! (OpenSSL on Linux, through `native-tls`), which trusts the system's
//! certificate authorities and, with [`Config::ca_file`], the extra ones
//! an operator names (a private CA for receivers on an internal network).
//! A certificate that does not verify fails the attempt as a
//! [`Outcome::ConnectError`] whose error text says why; nothing is ever
//! sent over a connection that did not verify.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use tokio::time::Instant;
use url::Url;

use crate::endpoint::Secret;
use crate::signature::{EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, signature_header};

/// Longest error text kept per attempt, in bytes: enough for a cause
/// chain, bounded so a receiver cannot fill the log through us.
const MAX_ERROR_LEN: usize = 512;

/// What deliveries send as `User-Agent`, so receivers can tell them apart
/// in their logs.
const USER_AGENT: &str = concat!("hexdash-webhooks/", env!("CARGO_PKG_VERSION"));

/// How deliveries are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The most one attempt may take, from connecting to the response's
    /// status line, ms. A receiver that has not answered by then has
    /// failed this attempt ([`Outcome::Timeout`]).
    pub timeout_ms: u64,
    /// The most connecting may take, ms (capped by `timeout_ms`): a dead
    /// host fails fast instead of using the whole attempt.
    pub connect_timeout_ms: u64,
    /// A PEM file of certificate authorities to trust for `https`
    /// endpoints besides the system's (one or more certificates).
    pub ca_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            ca_file: None,
        }
    }
}

/// Why a [`Deliverer`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `ca_file` could not be read.
    #[error("cannot read the webhook CA file {path}: {source}")]
    CaFile {
        /// The file named.
        path: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// `ca_file` holds no certificate, or one that does not parse.
    #[error("the webhook CA file {path} holds no usable PEM certificate: {reason}")]
    CaCertificate {
        /// The file named.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The HTTP client could not be built (the system's TLS library or
    /// resolver configuration is unusable).
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// An event as the stream hands it over: its envelope already serialised
/// (id, type, aggregate, version, time, payload), and the two fields the
/// headers need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeBytes {
    /// The event's id in the stream (`Hexdash-Event-Id`).
    pub event_id: String,
    /// The event's type, `noun.past_verb` (`Hexdash-Event-Type`).
    pub event_type: String,
    /// The JSON body POSTed, byte for byte what is signed.
    pub body: Bytes,
}

/// How an attempt ended. The names ([`Outcome::as_str`]) are what the
/// delivery log stores and the API shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered,
    /// The receiver answered 410 Gone: it wants no more deliveries, and the
    /// endpoint is disabled (see [`crate::consumer`]).
    Gone,
    /// The receiver answered something else (3xx included: redirects are
    /// not followed). Retried.
    HttpError,
    /// No answer within [`Config::timeout_ms`]. Retried.
    Timeout,
    /// No connection (refused, unreachable, DNS failure). Retried.
    ConnectError,
    /// What builds without TLS logged for an `https` endpoint; never
    /// produced now, kept so their log rows still read.
    TlsUnsupported,
    /// The request failed some other way (the connection broke mid-way).
    /// Retried.
    RequestError,
}

impl Outcome {
    /// Every outcome, for tests and for the API's documentation.
    pub const ALL: [Outcome; 7] = [
        Outcome::Delivered,
        Outcome::Gone,
        Outcome::HttpError,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::TlsUnsupported,
        Outcome::RequestError,
    ];

    /// Its name in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Gone => "gone",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::TlsUnsupported => "tls_unsupported",
            Outcome::RequestError => "request_error",
        }
    }

    /// The outcome with this log name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// What one attempt did, as the log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// How it ended.
    pub outcome: Outcome,
    /// The receiver's status, when it answered.
    pub http_status: Option<u16>,
    /// What went wrong, when something did (at most 512 bytes).
    pub error: Option<String>,
    /// How long it took, ms (monotonic clock).
    pub duration_ms: i64,
}

/// The certificates of a PEM file of certificate authorities.
fn extra_authorities(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, SetupError> {
    let pem = std::fs::read(path).map_err(|source| SetupError::CaFile {
        path: path.to_owned(),
        source,
    })?;
    let unusable = |reason: String| SetupError::CaCertificate {
        path: path.to_owned(),
        reason,
    };
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| unusable(e.to_string()))?;
    if certificates.is_empty() {
        return Err(unusable("no CERTIFICATE block".to_owned()));
    }
    Ok(certificates)
}

/// Sends events to endpoints. Cheap to clone (the client is shared), and
/// clones share the connection pool.
#[derive(Clone, Debug)]
pub struct Deliverer {
    client: reqwest::Client,
}

impl Deliverer {
    /// A deliverer with these timeouts, trusting the system's certificate
    /// authorities and those in [`Config::ca_file`]. Fails on a CA file
    /// that cannot be read or holds no certificate, or if the HTTP client
    /// cannot be built.
    pub fn new(config: &Config) -> Result<Self, SetupError> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms).min(timeout);
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &config.ca_file {
            for certificate in extra_authorities(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .user_agent(USER_AGENT)
            .build()?;
        Ok(Self { client })
    }

    /// POSTs `envelope` to `url`, signed with `secret` at `now_ms`, and
    /// says how it went. Never fails: every way it can go wrong is an
    /// [`Outcome`].
    pub async fn deliver(
        &self,
        url: &Url,
        secret: &Secret,
        envelope: &EnvelopeBytes,
        now_ms: i64,
    ) -> Attempt {
        let started = Instant::now();
        let attempt = |outcome, http_status, error: Option<String>| Attempt {
            outcome,
            http_status,
            error: error.map(bounded),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        let signature = signature_header(
            secret.expose().as_bytes(),
            now_ms.div_euclid(1000),
            &envelope.body,
        );
        let request = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, &envelope.event_id)
            .header(EVENT_TYPE_HEADER, &envelope.event_type)
            .body(envelope.body.clone());
        // Only the status is read: the body of the answer means nothing to
        // us, and dropping the response closes the connection if the
        // receiver is still sending.
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let code = Some(status.as_u16());
                if status.is_success() {
                    attempt(Outcome::Delivered, code, None)
                } else if status == reqwest::StatusCode::GONE {
                    attempt(
                        Outcome::Gone,
                        code,
                        Some(format!("receiver answered {status}")),
                    )
                } else {
                    attempt(
                        Outcome::HttpError,
                        code,
                        Some(format!("receiver answered {status}")),
                    )
                }
            }
            Err(e) => {
                let outcome = if e.is_timeout() {
                    Outcome::Timeout
                } else if e.is_connect() {
                    Outcome::ConnectError
                } else {
                    Outcome::RequestError
                };
                attempt(outcome, None, Some(error_chain(&e)))
            }
        }
    }
}

/// The error and its causes, `: `-separated (reqwest's own text is only
/// "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `text` cut to at most [`MAX_ERROR_LEN`] bytes, on a character boundary.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::from_name(outcome.as_str()), Some(outcome));
        }
        assert_eq!(Outcome::from_name("lost"), None);
    }

    #[test]
    fn errors_are_bounded_on_a_char_boundary() {
        assert_eq!(bounded("short".to_owned()), "short");
        let long = "é".repeat(MAX_ERROR_LEN);
        let cut = bounded(long);
        assert!(cut.len() <= MAX_ERROR_LEN && cut.len() >= MAX_ERROR_LEN - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
