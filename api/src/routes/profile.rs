//! The caller's own account: profile and saved delivery addresses.
//!
//! | route                                   | who            |
//! |-----------------------------------------|----------------|
//! | `GET /v1/me`, `PATCH /v1/me`            | anyone signed in |
//! | `GET /v1/me/addresses`, `POST …`        | anyone signed in |
//! | `DELETE /v1/me/addresses/{address_id}`  | its owner      |

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use commerce::notify::Language;
use commerce::usecase::account::{self as usecase, ProfilePatch};
use engine::{AddressId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{MAX_ADDRESS_CHARS, MAX_NAME_CHARS, Point, required_text};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;
use crate::store::{Address, User};

/// Longest phone number, in characters (E.164 is 15 digits and a `+`;
/// room for spaces and dashes as people write them).
pub(crate) const MAX_PHONE_CHARS: usize = 32;
/// Fewest and most digits in a phone number.
pub(crate) const MIN_PHONE_DIGITS: usize = 5;
pub(crate) const MAX_PHONE_DIGITS: usize = 15;
/// The document's pattern for a phone number, exactly what [`check_phone`]
/// accepts.
pub const PHONE_PATTERN: &str = "^\\+?[-. ()]*([0-9][-. ()]*){5,15}$";
/// Longest address label ("Home").
pub(crate) const MAX_LABEL_CHARS: usize = 50;

/// The operations this module serves ([`super::ROUTES`] builds the router
/// from them and the OpenAPI tests compare them with the document).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/me" => get_profile),
    route!(Patch "/v1/me" => update_profile),
    route!(Get "/v1/me/addresses" => list_addresses),
    route!(Post "/v1/me/addresses" => add_address),
    route!(Delete "/v1/me/addresses/{address_id}" => delete_address),
];

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProfileResponse {
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    #[schema(value_type = crate::openapi::Role)]
    pub role: Role,
    /// Unix ms.
    pub created_at: i64,
    /// The language notifications (feed, push, email, SMS) are written
    /// in; null: not chosen (English).
    pub language: Option<contract::channels::Language>,
}

impl From<User> for ProfileResponse {
    fn from(u: User) -> Self {
        Self {
            user_id: u.id,
            email: u.email,
            name: u.name,
            phone: u.phone,
            role: u.role,
            created_at: u.created_at_ms,
            language: u.language.map(super::channels::wire_language),
        }
    }
}

/// Fields to change; absent fields stay. `phone: null` removes the phone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// Leading and trailing whitespace is dropped; `null` keeps the name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: Option<String>,
    /// Digits with an optional leading `+`; spaces, dashes, dots and
    /// parentheses between them.
    #[serde(default, deserialize_with = "super::explicit_null")]
    #[schema(
        max_length = 32,
        pattern = "^\\+?[-. ()]*([0-9][-. ()]*){5,15}$",
        example = "+46 70-123 45 67"
    )]
    pub phone: Option<Option<String>>,
    /// The language notifications are written in: `en` or `sv`; `null`
    /// goes back to the default (English).
    #[serde(default, deserialize_with = "super::explicit_null")]
    #[schema(value_type = Option<contract::channels::Language>)]
    pub language: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAddress {
    /// "Home", "Work"; trimmed.
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub label: String,
    /// Trimmed.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub address: String,
    pub location: Point,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressResponse {
    #[schema(value_type = String, format = Uuid)]
    pub address_id: AddressId,
    pub label: String,
    pub address: String,
    pub location: Point,
    pub created_at: i64,
}

impl From<Address> for AddressResponse {
    fn from(a: Address) -> Self {
        Self {
            address_id: a.id,
            label: a.label,
            address: a.address,
            location: a.location.into(),
            created_at: a.created_at_ms,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressList {
    pub addresses: Vec<AddressResponse>,
}

#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "profile",
    summary = "Get my profile",
    responses(
        (status = 200, description = "The caller's profile.", body = ProfileResponse),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 404, description = "`not_found`: the account no longer exists.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_profile(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<Json<ProfileResponse>> {
    let user = usecase::profile(state.store.as_ref(), principal.user_id).await?;
    Ok(Json(user.into()))
}

#[utoipa::path(
    patch,
    path = "/v1/me",
    tag = "profile",
    summary = "Update my profile",
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "The updated profile.", body = ProfileResponse),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_name`, `invalid_phone` (5 to 15 digits, optional leading `+` and separators), `invalid_language` (`en` or `sv`).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 404, description = "`not_found`: the account no longer exists.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn update_profile(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(req): ApiJson<ProfileUpdate>,
) -> ApiResult<Json<ProfileResponse>> {
    let patch = ProfilePatch {
        name: req
            .name
            .map(|name| required_text("invalid_name", "name", &name, MAX_NAME_CHARS))
            .transpose()?,
        phone: req
            .phone
            .map(|phone| phone.as_deref().map(check_phone).transpose())
            .transpose()?,
        language: req
            .language
            .map(|code| code.as_deref().map(check_language).transpose())
            .transpose()?,
    };
    let user = usecase::update_profile(state.store.as_ref(), principal.user_id, patch).await?;
    Ok(Json(user.into()))
}

/// `en` or `sv`, exactly.
fn check_language(code: &str) -> ApiResult<Language> {
    Language::parse(code).ok_or_else(|| {
        let codes: Vec<&str> = Language::ALL.iter().map(|l| l.code()).collect();
        ApiError::bad_request(
            "invalid_language",
            format!("language must be one of {}", codes.join(", ")),
        )
    })
}

/// Digits with an optional leading `+` and spaces, dashes, dots or
/// parentheses between them; 5 to 15 digits ([`PHONE_PATTERN`]). Stored
/// without surrounding spaces.
fn check_phone(phone: &str) -> ApiResult<String> {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let shaped = phone.chars().enumerate().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')') || (c == '+' && i == 0)
    });
    if shaped
        && (MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits)
        && phone.chars().count() <= MAX_PHONE_CHARS
    {
        Ok(phone.trim().to_owned())
    } else {
        Err(ApiError::bad_request(
            "invalid_phone",
            "phone must be 5 to 15 digits, optionally with a leading + and separators",
        ))
    }
}

#[utoipa::path(
    get,
    path = "/v1/me/addresses",
    tag = "profile",
    summary = "List my saved addresses",
    responses(
        (status = 200, description = "The caller's saved addresses.", body = AddressList),
        (status = 401, description = AUTH_401, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_addresses(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<Json<AddressList>> {
    let addresses = usecase::addresses(state.store.as_ref(), principal.user_id).await?;
    Ok(Json(AddressList {
        addresses: addresses.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/me/addresses",
    tag = "profile",
    summary = "Save an address",
    request_body = NewAddress,
    responses(
        (status = 201, description = "Address saved.", body = AddressResponse),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (wrong shape, types or unknown fields), `invalid_label`, `invalid_address`, `invalid_location`.", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 409, description = "`too_many_addresses`: at most 20; delete one first.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn add_address(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(req): ApiJson<NewAddress>,
) -> ApiResult<(StatusCode, Json<AddressResponse>)> {
    let new = usecase::NewAddress {
        label: required_text("invalid_label", "label", &req.label, MAX_LABEL_CHARS)?,
        address: required_text(
            "invalid_address",
            "address",
            &req.address,
            MAX_ADDRESS_CHARS,
        )?,
        location: req.location.to_lat_lng("location")?,
    };
    let address = usecase::add_address(
        state.store.as_ref(),
        &state.ids,
        principal.user_id,
        new,
        state.clock.now_ms(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(address.into())))
}

#[utoipa::path(
    delete,
    path = "/v1/me/addresses/{address_id}",
    tag = "profile",
    summary = "Delete a saved address",
    params(("address_id" = uuid::Uuid, Path, description = "The saved address.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`invalid_path` (an id is not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 404, description = "`not_found`: no such address of the caller's.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn delete_address(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiPath(address_id): ApiPath<AddressId>,
) -> ApiResult<StatusCode> {
    usecase::delete_address(state.store.as_ref(), principal.user_id, address_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages() {
        assert_eq!(check_language("sv").unwrap(), Language::Swedish);
        assert_eq!(check_language("en").unwrap(), Language::English);
        for bad in ["", "SV", "se", " sv", "english"] {
            assert!(check_language(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert!(check_phone("+46 70-123 45 67").is_ok());
        assert!(check_phone("(031) 123.456").is_ok());
        assert!(check_phone("123").is_err());
        assert!(check_phone("+46 70 12+3").is_err());
        assert!(check_phone("call me").is_err());
        assert!(check_phone("1234567890123456").is_err());
        assert!(check_phone("\t+46 70 123").is_err());
    }
}
