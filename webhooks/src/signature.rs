//! The signature of a delivery, and its check.
//!
//! Every delivery carries `Hexdash-Signature: t=<unix seconds>,v1=<hex>`,
//! where `<hex>` is the lowercase hex HMAC-SHA256, keyed with the
//! endpoint's secret text (`whsec_…`), of the timestamp, a `.` and the raw
//! request body. Signing the timestamp with the body lets a receiver refuse
//! a captured delivery replayed later ([`verify`]'s tolerance). A header may
//! carry several `v1=` values (one per secret while a secret is rotated);
//! one matching is enough. The scheme is Stripe's.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header with the timestamp and the signature(s).
pub const SIGNATURE_HEADER: &str = "Hexdash-Signature";
/// The header with the event's id: receivers deduplicate by it, since a
/// delivery may come more than once.
pub const EVENT_ID_HEADER: &str = "Hexdash-Event-Id";
/// The header with the event's type (`order.placed`), so a receiver can
/// route before parsing the body.
pub const EVENT_TYPE_HEADER: &str = "Hexdash-Event-Type";

/// The scheme's version tag in the header.
const SCHEME: &str = "v1";

/// Longest header [`verify`] reads, in bytes: a timestamp and a few
/// signatures fit many times over; anything longer is not ours.
const MAX_HEADER_LEN: usize = 1_024;

type HmacSha256 = Hmac<Sha256>;

/// The keyed MAC over `"{timestamp_s}.{body}"`.
fn mac(secret: &[u8], timestamp_s: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (longer ones are hashed first), so
    // `new_from_slice`, shared with fixed-key MACs, never fails for it.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The lowercase hex signature of `body` sent at `timestamp_s`.
pub fn sign(secret: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp_s, body).finalize().into_bytes())
}

/// The `Hexdash-Signature` value for `body` sent at `timestamp_s`.
pub fn signature_header(secret: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp_s},{SCHEME}={}",
        sign(secret, timestamp_s, body)
    )
}

/// Why [`verify`] refused a delivery.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is not `t=<seconds>,v1=<hex>[,v1=<hex>…]`.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is further than the tolerance from now: a replay, or a
    /// clock far off.
    #[error("signature timestamp outside the tolerance")]
    OutsideTolerance,
    /// No `v1` signature matches the body with this secret.
    #[error("no signature matches")]
    Mismatch,
}

/// Checks a delivery as a receiver does: `header` is the
/// `Hexdash-Signature` value, `body` the raw request body, `now_s` the
/// receiver's Unix time in seconds; the timestamp must be within
/// `tolerance_s` of it (either side) and one `v1` signature must match.
/// The comparison is constant-time (`Mac::verify_slice`), so a forger
/// learns nothing from how long a refusal takes.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(VerifyError::Malformed);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(VerifyError::Malformed)?;
        match key {
            "t" if timestamp.is_none() => {
                timestamp = Some(value.parse::<i64>().map_err(|_| VerifyError::Malformed)?);
            }
            SCHEME => signatures.push(hex::decode(value).map_err(|_| VerifyError::Malformed)?),
            // Schemes this version does not know: room for a `v2`.
            "t" => return Err(VerifyError::Malformed),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed)?;
    if signatures.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if now_s.abs_diff(timestamp) > tolerance_s.unsigned_abs() {
        return Err(VerifyError::OutsideTolerance);
    }
    let expected = mac(secret, timestamp, body);
    if signatures
        .iter()
        .any(|candidate| expected.clone().verify_slice(candidate).is_ok())
    {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_0123456789abcdef";
    const BODY: &[u8] = br#"{"id":"42","type":"order.placed"}"#;

    #[test]
    fn a_known_vector() {
        // Computed independently with Python:
        // hmac.new(b"whsec_0123456789abcdef", b"1700000000." + BODY, hashlib.sha256).hexdigest()
        assert_eq!(
            signature_header(SECRET, 1_700_000_000, BODY),
            "t=1700000000,v1=509fa073db6a52a6364ff66aedbd81da8b6a30e3831ceaab00fdbf8336680ec6"
        );
    }

    #[track_caller]
    fn check(header: &str, body: &[u8], now_s: i64, expected: Result<(), VerifyError>) {
        assert_eq!(
            verify(SECRET, header, body, now_s, 300),
            expected,
            "{header}"
        );
    }

    #[test]
    fn verification() {
        let t = 1_700_000_000;
        let good = signature_header(SECRET, t, BODY);
        check(&good, BODY, t, Ok(()));
        check(&good, BODY, t + 300, Ok(()));
        check(&good, BODY, t - 300, Ok(()));
        check(&good, BODY, t + 301, Err(VerifyError::OutsideTolerance));
        check(&good, b"{}", t, Err(VerifyError::Mismatch));
        let other = signature_header(b"whsec_other", t, BODY);
        check(&other, BODY, t, Err(VerifyError::Mismatch));
        // A re-signed timestamp without the secret does not verify.
        let moved = good.replace("t=1700000000", "t=1700000100");
        check(&moved, BODY, t, Err(VerifyError::Mismatch));
        // Rotation: any one v1 matching is enough; unknown schemes ignored.
        let sig = sign(SECRET, t, BODY);
        check(
            &format!("t={t},v1={},v1={sig},v0=zz", "00".repeat(32)),
            BODY,
            t,
            Ok(()),
        );
        check(&format!(" t={t} , v1={sig} "), BODY, t, Ok(()));
        for malformed in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={sig}"),
            format!("t={t}"),
            format!("t=soon,v1={sig}"),
            format!("t={t},v1=not-hex"),
            format!("t={t},t={t},v1={sig}"),
            format!("t={t},v1={sig},{}", "x".repeat(MAX_HEADER_LEN)),
        ] {
            check(&malformed, BODY, t, Err(VerifyError::Malformed));
        }
    }
}
