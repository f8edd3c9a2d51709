//! A registered webhook endpoint and the validation of a registration.
//!
//! A registration is parsed once, at the boundary, into an
//! [`EndpointSpec`] (an absolute http(s) URL with a host and no
//! credentials, and a non-empty list of known event types without
//! duplicates); [`Endpoint::new`] then gives it an id and a fresh secret.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use url::Url;
use uuid::Uuid;

/// Longest URL accepted, in bytes: far over any real receiver's URL, and
/// small enough that the table and the logs stay sane.
pub const MAX_URL_LEN: usize = 2_048;

/// Bytes of randomness in a [`Secret`]: as many as the HMAC-SHA256 key
/// needs to be unguessable.
const SECRET_BYTES: usize = 32;

/// What every secret's text starts with, so one found in a config file or a
/// log is recognisable (and can be searched for) as a hexdash webhook
/// secret.
const SECRET_PREFIX: &str = "whsec_";

/// An endpoint's id: a UUIDv7, so ids sort by creation time (the list's
/// keyset order). Made at the edge from the app's injected clock (the
/// registering handler's `clock::Ids`), never here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointId(pub Uuid);

impl From<Uuid> for EndpointId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for EndpointId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// An endpoint's signing secret: `whsec_` and 64 lowercase hex digits (32
/// random bytes). The HMAC key is this whole text, as the receiver is shown
/// it, so a receiver never decodes anything.
///
/// Shown once, when the endpoint is created; stored to sign deliveries.
/// `Debug` never prints it, and it has no `Serialize`, so it cannot end up
/// in a log line or a listing by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A new secret from the thread's CSPRNG (ChaCha, seeded from the OS).
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{SECRET_PREFIX}{}", hex::encode(bytes)))
    }

    /// A secret read back from the store.
    pub(crate) fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The secret's text: the HMAC key, and what the admin is shown once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A validated registration: what an admin asked for, before it has an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSpec {
    /// Where deliveries are POSTed: absolute, http or https, with a host.
    pub url: Url,
    /// The event types it wants, each known, none twice, in the order given.
    pub event_types: Vec<String>,
}

/// Why a registration was refused. The `Display` text is client-safe: the
/// API answers it as the reason of its 4xx.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The URL is longer than [`MAX_URL_LEN`] bytes.
    #[error("url is longer than {max} bytes")]
    UrlTooLong {
        /// The limit, [`MAX_URL_LEN`].
        max: usize,
    },
    /// The URL does not parse as an absolute URL (a relative one lands
    /// here).
    #[error("url is not an absolute URL: {0}")]
    UrlNotAbsolute(String),
    /// The scheme is neither `http` nor `https`.
    #[error("url scheme must be http or https, not {0:?}")]
    UrlScheme(String),
    /// No host to connect to.
    #[error("url has no host")]
    UrlNoHost,
    /// A user name or password in the URL: they would be stored and logged
    /// with it; receivers authenticate deliveries by their signature.
    #[error("url must not contain a user name or password")]
    UrlCredentials,
    /// The list of event types is empty.
    #[error("event_types must name at least one event type")]
    NoEventTypes,
    /// An event type nobody emits.
    #[error("unknown event type {0:?}")]
    UnknownEventType(String),
    /// The same event type twice.
    #[error("event type {0:?} is listed twice")]
    DuplicateEventType(String),
}

impl EndpointSpec {
    /// Validates a registration: `url` must be an absolute `http` or
    /// `https` URL with a host, without user name or password, at most
    /// [`MAX_URL_LEN`] bytes; `event_types` must be non-empty, each one for
    /// which `is_known` answers true, none twice. The first failure found is
    /// answered, URL first.
    ///
    /// `is_known` is a closure because the event types are the event
    /// stream's (`|t| ALL.contains(&t)` over a list of names works).
    pub fn parse(
        url: &str,
        event_types: &[String],
        is_known: impl Fn(&str) -> bool,
    ) -> Result<Self, ValidationError> {
        let url = parse_url(url)?;
        if event_types.is_empty() {
            return Err(ValidationError::NoEventTypes);
        }
        let mut seen: Vec<&str> = Vec::with_capacity(event_types.len());
        for event_type in event_types {
            if !is_known(event_type) {
                return Err(ValidationError::UnknownEventType(event_type.clone()));
            }
            if seen.contains(&event_type.as_str()) {
                return Err(ValidationError::DuplicateEventType(event_type.clone()));
            }
            seen.push(event_type);
        }
        Ok(Self {
            url,
            event_types: event_types.to_vec(),
        })
    }
}

fn parse_url(text: &str) -> Result<Url, ValidationError> {
    if text.len() > MAX_URL_LEN {
        return Err(ValidationError::UrlTooLong { max: MAX_URL_LEN });
    }
    let url = Url::parse(text).map_err(|e| ValidationError::UrlNotAbsolute(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ValidationError::UrlScheme(url.scheme().to_owned()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::UrlNoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ValidationError::UrlCredentials);
    }
    // Normalising (`Url` adds a `/` path, lowercases the host) may lengthen
    // it a little; the column holds what we will POST to.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(ValidationError::UrlTooLong { max: MAX_URL_LEN });
    }
    Ok(url)
}

/// A registered endpoint, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Its id (UUIDv7).
    pub id: EndpointId,
    /// Where deliveries are POSTed.
    pub url: Url,
    /// The event types it gets; others are skipped.
    pub event_types: Vec<String>,
    /// The signing key. Show it to the admin only in the answer to the
    /// registration.
    pub secret: Secret,
    /// False: nothing is sent to it (an admin disabled it, or it answered
    /// 410 Gone).
    pub enabled: bool,
    /// Why it was disabled, when it was (`None` while enabled or when the
    /// admin gave no reason).
    pub disabled_reason: Option<String>,
    /// When it was registered, Unix ms.
    pub created_at_ms: i64,
    /// When it last changed (registered, enabled or disabled), Unix ms.
    pub updated_at_ms: i64,
}

impl Endpoint {
    /// A new, enabled endpoint for a validated registration.
    pub fn new(spec: EndpointSpec, id: EndpointId, secret: Secret, now_ms: i64) -> Self {
        Self {
            id,
            url: spec.url,
            event_types: spec.event_types,
            secret,
            enabled: true,
            disabled_reason: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }

    /// Whether it wants events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|t| t == event_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["order.placed", "order.delivered", "refund.failed"];

    fn parse(url: &str, types: &[&str]) -> Result<EndpointSpec, ValidationError> {
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        EndpointSpec::parse(url, &types, |t| KNOWN.contains(&t))
    }

    #[track_caller]
    fn check(url: &str, types: &[&str], expected: Result<&str, ValidationError>) {
        let got = parse(url, types).map(|spec| spec.url.to_string());
        assert_eq!(
            got,
            expected.map(str::to_owned),
            "url {url:?}, types {types:?}"
        );
    }

    #[test]
    fn urls() {
        let ok = &["order.placed"][..];
        check(
            "https://hooks.example.com/hexdash",
            ok,
            Ok("https://hooks.example.com/hexdash"),
        );
        check(
            "http://127.0.0.1:8080/in?x=1",
            ok,
            Ok("http://127.0.0.1:8080/in?x=1"),
        );
        check("HTTP://Example.COM", ok, Ok("http://example.com/"));
        check(
            "/hooks",
            ok,
            Err(ValidationError::UrlNotAbsolute(
                "relative URL without a base".into(),
            )),
        );
        check(
            "example.com/hooks",
            ok,
            Err(ValidationError::UrlNotAbsolute(
                "relative URL without a base".into(),
            )),
        );
        check(
            "ftp://example.com/hooks",
            ok,
            Err(ValidationError::UrlScheme("ftp".into())),
        );
        check(
            "mailto:ops@example.com",
            ok,
            Err(ValidationError::UrlScheme("mailto".into())),
        );
        check(
            "https://user:pw@example.com/",
            ok,
            Err(ValidationError::UrlCredentials),
        );
        check(
            "https://token@example.com/",
            ok,
            Err(ValidationError::UrlCredentials),
        );
        check(
            "http://",
            ok,
            Err(ValidationError::UrlNotAbsolute("empty host".into())),
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        check(
            &long,
            ok,
            Err(ValidationError::UrlTooLong { max: MAX_URL_LEN }),
        );
    }

    #[test]
    fn event_types() {
        let url = "https://example.com/";
        check(url, &["order.placed", "refund.failed"], Ok(url));
        check(url, &[], Err(ValidationError::NoEventTypes));
        check(
            url,
            &["order.placed", "order.teleported"],
            Err(ValidationError::UnknownEventType("order.teleported".into())),
        );
        check(
            url,
            &["order.placed", "order.placed"],
            Err(ValidationError::DuplicateEventType("order.placed".into())),
        );
        // Names are exact: no case folding, no wildcards.
        check(
            url,
            &["Order.Placed"],
            Err(ValidationError::UnknownEventType("Order.Placed".into())),
        );
        check(
            url,
            &["*"],
            Err(ValidationError::UnknownEventType("*".into())),
        );
    }

    #[test]
    fn reasons_read_well() {
        let reason = parse("ftp://example.com", &["order.placed"])
            .unwrap_err()
            .to_string();
        assert_eq!(reason, "url scheme must be http or https, not \"ftp\"");
        let reason = parse("https://example.com", &[]).unwrap_err().to_string();
        assert_eq!(reason, "event_types must name at least one event type");
    }

    #[test]
    fn secrets_are_fresh_and_never_debug_printed() {
        let (a, b) = (Secret::generate(), Secret::generate());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), SECRET_PREFIX.len() + 2 * SECRET_BYTES);
        assert!(a.expose().starts_with(SECRET_PREFIX));
        assert_eq!(format!("{a:?}"), "Secret(..)");
    }

    #[test]
    fn a_new_endpoint_is_enabled_and_wants_its_types() {
        let spec = parse("https://example.com/", &["order.placed"]).unwrap();
        let endpoint = Endpoint::new(spec, EndpointId(Uuid::now_v7()), Secret::generate(), 7);
        assert!(endpoint.enabled);
        assert!(endpoint.wants("order.placed"));
        assert!(!endpoint.wants("order.delivered"));
        assert_eq!((endpoint.created_at_ms, endpoint.updated_at_ms), (7, 7));
    }
}
