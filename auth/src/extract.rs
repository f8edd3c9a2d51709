//! `Authenticated`: an axum extractor that verifies the caller's token from
//! `Authorization: Bearer …` or, for browsers opening WebSockets (which
//! cannot set headers), from the `token` query parameter.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::reply::error_response;
use crate::tokens::{AuthError, Principal, Tokens};

#[derive(Clone, Copy, Debug)]
pub struct Authenticated(pub Principal);

/// A principal whose token a layer in front of the handler verified
/// already (the REST API's rate limits read it), carried in the request's
/// extensions so [`Authenticated`] does not verify the token twice. Only
/// code that just verified the request's own token may insert one.
#[derive(Clone, Copy, Debug)]
pub struct Verified(pub Principal);

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        error_response(StatusCode::UNAUTHORIZED, self.code(), &self.to_string())
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Tokens: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(Verified(principal)) = parts.extensions.get::<Verified>() {
            return Ok(Authenticated(*principal));
        }
        let tokens = Tokens::from_ref(state);
        let token = bearer_token(parts).ok_or(AuthError::Missing)?;
        tokens.verify(&token).map(Authenticated)
    }
}

/// The token from the `Authorization` header, else from `?token=`.
pub fn bearer_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    let query = parts.uri.query()?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(percent_decode)
}

/// Minimal percent-decoding for the token parameter (JWTs are URL-safe, but
/// clients may still encode). Works on bytes: untrusted input may put a `%`
/// before a multi-byte character.
fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some(hex(*bytes.get(i + 1)?)? * 16 + hex(*bytes.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(uri: &str, auth: Option<&str>) -> Parts {
        let mut b = Request::builder().uri(uri);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn token_sources() {
        assert_eq!(
            bearer_token(&parts("/x", Some("Bearer abc"))),
            Some("abc".into())
        );
        assert_eq!(
            bearer_token(&parts("/x", Some("bearer  abc "))),
            Some("abc".into())
        );
        assert_eq!(bearer_token(&parts("/x", Some("Basic abc"))), None);
        assert_eq!(
            bearer_token(&parts("/x?a=1&token=t%2Ek", None)),
            Some("t.k".into())
        );
        assert_eq!(bearer_token(&parts("/x?a=1", None)), None);
        // A '%' before a multi-byte character or at the end is kept as is.
        assert_eq!(percent_decode("%aé%"), "%aé%");
        assert_eq!(percent_decode("%41%4a"), "AJ");
        assert_eq!(bearer_token(&parts("/x", None)), None);
    }
}
