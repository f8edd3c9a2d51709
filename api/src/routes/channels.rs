//! Outside channels (push, email, SMS): the caller's preferences, the log
//! of what was sent, and the simulated provider's failure rules.
//!
//! | route                                                              | who              |
//! |--------------------------------------------------------------------|------------------|
//! | `GET /v1/me/notification-preferences`, `PUT …`                     | anyone signed in |
//! | `GET /v1/notifications/sent?channel=&status=&limit=&cursor=`       | anyone signed in (their own) |
//! | `GET /v1/admin/notifications/sent?user_id=&channel=&status=&limit=&cursor=` | admin    |
//! | `GET /v1/admin/notifications/simulator`, `PUT …`                   | admin            |
//!
//! The log is newest first; `next_cursor` is opaque (pass it back as
//! `cursor`), absent on the last page; a page boundary never skips or
//! repeats a message while messages are added. The rules are
//! `commerce::usecase::channels`'.

use ::auth::{Authenticated, Role};
use axum::Json;
use axum::extract::State;
use commerce::channels::prefs::{self, Preferences};
use commerce::channels::simulated::{FailureRules, MAX_FAIL_TO};
use commerce::channels::{Channel, SendStatus};
use commerce::notify::Language;
use commerce::usecase::channels::{self as usecase, Choice};
use contract::channels::{
    self as wire, ChannelPreferences, ChannelPreferencesUpdate, NotificationPreferences,
    NotificationPreferencesUpdate, SentMessage, SentMessageList, SimulatorRules,
};
use engine::UserId;
use serde::Deserialize;
use utoipa::IntoParams;

use super::require_role;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::openapi::AUTH_401;
use crate::openapi::ErrorBody;
use crate::store::{ChannelSend, SendFilter};

/// The operations this module serves ([`super::ROUTES`]).
pub(crate) const ROUTES: &[super::Route] = &[
    route!(Get "/v1/me/notification-preferences" => get_notification_preferences),
    route!(Put "/v1/me/notification-preferences" => set_notification_preferences),
    route!(Get "/v1/notifications/sent" => list_my_sent),
    route!(Get "/v1/admin/notifications/sent" => list_sent),
    route!(Get "/v1/admin/notifications/simulator" => get_simulator),
    route!(Put "/v1/admin/notifications/simulator" => set_simulator),
];

/// Page size when none is asked for.
const DEFAULT_PAGE: u32 = 20;
/// The largest page (the document's `maximum`, checked by a test).
pub(crate) const MAX_PAGE: u32 = usecase::MAX_PAGE;
/// The document's pattern for a cursor, exactly what [`decode_cursor`]
/// accepts.
pub const CURSOR_PATTERN: &str = "^[0-9]{1,18}$";

/// `GET /v1/notifications/sent`'s filters and page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MySentQuery {
    /// Only on this channel.
    #[param(inline, value_type = Option<wire::Channel>)]
    pub channel: Option<String>,
    /// Only in this status.
    #[param(inline, value_type = Option<wire::SendStatus>)]
    pub status: Option<String>,
    /// Page size, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// `GET /v1/admin/notifications/sent`'s filters and page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SentQuery {
    /// Only this recipient's.
    #[param(value_type = Option<String>, format = Uuid)]
    pub user_id: Option<UserId>,
    /// Only on this channel.
    #[param(inline, value_type = Option<wire::Channel>)]
    pub channel: Option<String>,
    /// Only in this status.
    #[param(inline, value_type = Option<wire::SendStatus>)]
    pub status: Option<String>,
    /// Page size, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

// ---- conversions ----

/// The domain language of a wire one.
pub fn language_of(l: wire::Language) -> Language {
    match l {
        wire::Language::En => Language::English,
        wire::Language::Sv => Language::Swedish,
    }
}

/// The wire language of a domain one.
pub fn wire_language(l: Language) -> wire::Language {
    match l {
        Language::English => wire::Language::En,
        Language::Swedish => wire::Language::Sv,
    }
}

fn wire_channel(c: Channel) -> wire::Channel {
    match c {
        Channel::Push => wire::Channel::Push,
        Channel::Email => wire::Channel::Email,
        Channel::Sms => wire::Channel::Sms,
    }
}

fn wire_status(s: SendStatus) -> wire::SendStatus {
    match s {
        SendStatus::Sent => wire::SendStatus::Sent,
        SendStatus::Failed => wire::SendStatus::Failed,
        SendStatus::Skipped => wire::SendStatus::Skipped,
    }
}

/// Every channel and event type of `prefs`, spelt out.
fn wire_preferences(prefs: &Preferences) -> NotificationPreferences {
    let channel = |c: Channel| ChannelPreferences {
        enabled: prefs.channel_on(c),
        events: prefs::event_types()
            .map(|t| (t.as_str().to_owned(), prefs.event_on(c, t)))
            .collect(),
    };
    NotificationPreferences {
        push: channel(Channel::Push),
        email: channel(Channel::Email),
        sms: channel(Channel::Sms),
    }
}

/// A logged message as the wire has it.
pub fn wire_sent(s: ChannelSend) -> SentMessage {
    SentMessage {
        id: s.id,
        user_id: s.last.user_id.0,
        channel: wire_channel(s.last.channel),
        to: s.last.to,
        event_id: s.last.event_id,
        event_type: s.last.event_type,
        party: s.last.party,
        order_id: s.last.order_id.map(|id| id.0),
        language: wire_language(s.last.language),
        subject: s.last.subject,
        body: s.last.body,
        status: wire_status(s.last.status),
        attempts: s.attempts,
        last_error: s.last.error,
        provider_id: s.last.provider_id,
        created_at_ms: s.created_at_ms,
        last_attempt_at_ms: s.last.at_ms,
        sent_at_ms: s.sent_at_ms,
    }
}

fn parse_channel(name: Option<&str>) -> ApiResult<Option<Channel>> {
    name.map(|n| {
        Channel::parse(n).ok_or_else(|| {
            ApiError::bad_request("invalid_channel", "channel must be one of push, email, sms")
        })
    })
    .transpose()
}

fn parse_status(name: Option<&str>) -> ApiResult<Option<SendStatus>> {
    name.map(|n| {
        SendStatus::parse(n).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_status",
                "status must be one of sent, failed, skipped",
            )
        })
    })
    .transpose()
}

fn limit(asked: Option<u32>) -> ApiResult<u32> {
    match asked.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// Cursors are the id of the last message of the previous page
/// ([`CURSOR_PATTERN`]).
fn decode_cursor(s: &str) -> ApiResult<i64> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this server issued");
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    s.parse().map_err(|_| bad())
}

/// A page of the log, as the wire has it.
async fn sent_page(
    state: &AppState,
    filter: SendFilter,
    cursor: Option<&str>,
    asked: Option<u32>,
) -> ApiResult<SentMessageList> {
    let limit = limit(asked)?;
    let before = cursor.map(decode_cursor).transpose()?;
    let page = usecase::sent(state.store.as_ref(), &filter, before, limit).await?;
    Ok(SentMessageList {
        messages: page.items.into_iter().map(wire_sent).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
    })
}

// ---- handlers ----

#[utoipa::path(
    get,
    path = "/v1/me/notification-preferences",
    tag = "notifications",
    summary = "Get my notification preferences",
    description = "Which event types come on which outside channel (push, email, SMS), every channel and event type spelt out. Defaults where the caller chose nothing: push for every event type, email for paid, payment failed, rejected, cancelled, delivered and refunds, SMS when the courier is at the door (to the profile's phone). The in-app feed always has everything.",
    responses(
        (status = 200, description = "The caller's preferences.", body = NotificationPreferences),
        (status = 401, description = AUTH_401, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_notification_preferences(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<Json<NotificationPreferences>> {
    let prefs = usecase::preferences(state.store.as_ref(), principal.user_id).await?;
    Ok(Json(wire_preferences(&prefs)))
}

#[utoipa::path(
    put,
    path = "/v1/me/notification-preferences",
    tag = "notifications",
    summary = "Set my notification preferences",
    description = "Replaces the caller's preferences: each channel named is enabled unless `enabled` is false, with the event types named on or off and the others at their defaults; a channel not named takes its defaults (`{}` restores every default). `GET`'s answer put back changes nothing.",
    request_body = NotificationPreferencesUpdate,
    responses(
        (status = 200, description = "The preferences as stored now.", body = NotificationPreferences),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (not the shape: an unknown channel or field, a value not a boolean).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`unknown_event_type`: an `events` key is not an event type one is told of (the keys `GET` lists).", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn set_notification_preferences(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<NotificationPreferencesUpdate>,
) -> ApiResult<Json<NotificationPreferences>> {
    let choice = |channel: Channel, update: Option<ChannelPreferencesUpdate>| {
        update.map(|u| Choice {
            channel,
            enabled: u.enabled.unwrap_or(true),
            events: u.events.into_iter().collect(),
        })
    };
    let choices: Vec<Choice> = [
        choice(Channel::Push, body.push),
        choice(Channel::Email, body.email),
        choice(Channel::Sms, body.sms),
    ]
    .into_iter()
    .flatten()
    .collect();
    let prefs = usecase::set_preferences(
        state.store.as_ref(),
        principal.user_id,
        &choices,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(wire_preferences(&prefs)))
}

#[utoipa::path(
    get,
    path = "/v1/notifications/sent",
    tag = "notifications",
    summary = "List the messages sent to me",
    description = "The caller's messages on the outside channels (push, email, SMS), newest first: to, subject, text, status and tries.",
    params(MySentQuery),
    responses(
        (status = 200, description = "A page of the caller's messages.", body = SentMessageList),
        (status = 400, description = "`invalid_channel`, `invalid_status`, `invalid_limit` (1 to 100), `invalid_cursor` (not one this server issued), `invalid_query` (a parameter of the wrong type).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_my_sent(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<MySentQuery>,
) -> ApiResult<Json<SentMessageList>> {
    let filter = SendFilter {
        user_id: Some(principal.user_id),
        channel: parse_channel(query.channel.as_deref())?,
        status: parse_status(query.status.as_deref())?,
    };
    Ok(Json(
        sent_page(&state, filter, query.cursor.as_deref(), query.limit).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/v1/admin/notifications/sent",
    tag = "admin",
    summary = "List messages sent on the outside channels",
    description = "Every message on push, email and SMS, newest first, filtered by recipient, channel and status. A `failed` message is being retried or is a dead letter of its channel's consumer (`channel:push`, `channel:email`, `channel:sms` in `/v1/admin/dead-letters`).",
    params(SentQuery),
    responses(
        (status = 200, description = "A page of messages.", body = SentMessageList),
        (status = 400, description = "`invalid_channel`, `invalid_status`, `invalid_limit` (1 to 100), `invalid_cursor` (not one this server issued), `invalid_query` (a parameter of the wrong type, a `user_id` not a UUID).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_sent(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<SentQuery>,
) -> ApiResult<Json<SentMessageList>> {
    require_role(&principal, &[Role::Admin])?;
    let filter = SendFilter {
        user_id: query.user_id,
        channel: parse_channel(query.channel.as_deref())?,
        status: parse_status(query.status.as_deref())?,
    };
    Ok(Json(
        sent_page(&state, filter, query.cursor.as_deref(), query.limit).await?,
    ))
}

/// The simulated provider, or why there is none to change.
fn simulator(
    state: &AppState,
) -> ApiResult<&std::sync::Arc<commerce::channels::simulated::SimulatedSender>> {
    state.senders.simulator().ok_or_else(|| {
        ApiError::conflict(
            "not_simulated",
            "the outside channels go through real providers, not the simulator",
        )
    })
}

fn wire_rules(r: FailureRules) -> SimulatorRules {
    SimulatorRules {
        push_failure_rate: r.push_failure_rate,
        email_failure_rate: r.email_failure_rate,
        sms_failure_rate: r.sms_failure_rate,
        fail_to: r.fail_to,
    }
}

#[utoipa::path(
    get,
    path = "/v1/admin/notifications/simulator",
    tag = "admin",
    summary = "Get the simulated provider's failure rules",
    responses(
        (status = 200, description = "The rules in force on this node.", body = SimulatorRules),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 409, description = "`not_simulated`: real providers serve the channels.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_simulator(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> ApiResult<Json<SimulatorRules>> {
    require_role(&principal, &[Role::Admin])?;
    Ok(Json(wire_rules(simulator(&state)?.rules())))
}

#[utoipa::path(
    put,
    path = "/v1/admin/notifications/simulator",
    tag = "admin",
    summary = "Set the simulated provider's failure rules",
    description = "Which sends fail from now on (on this node, until it restarts; `[channels]` sets them at start): a share of each channel's tries, and every send to the addresses listed. Failed sends are retried with backoff and end as dead letters of the channel's consumer.",
    request_body = SimulatorRules,
    responses(
        (status = 200, description = "The rules in force now.", body = SimulatorRules),
        (status = 400, description = "`invalid_json` (not JSON), `invalid_body` (not the shape), `invalid_rules` (a rate outside 0 to 1, over 100 addresses).", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only.", body = ErrorBody),
        (status = 409, description = "`not_simulated`: real providers serve the channels.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over the size limit.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not declared as `application/json`.", body = ErrorBody),
        (status = 422, description = "`invalid_address`: an address in `fail_to` is blank or over 254 characters.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn set_simulator(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<SimulatorRules>,
) -> ApiResult<Json<SimulatorRules>> {
    require_role(&principal, &[Role::Admin])?;
    let sim = simulator(&state)?;
    // What the document bounds (rates, how many addresses) is the body's
    // shape: 400. What is left for the rules to refuse (a blank or
    // over-long address) fits the document: 422.
    let rates = [
        body.push_failure_rate,
        body.email_failure_rate,
        body.sms_failure_rate,
    ];
    if !rates.iter().all(|r| (0.0..=1.0).contains(r)) {
        return Err(ApiError::bad_request(
            "invalid_rules",
            "failure rates must be between 0 and 1",
        ));
    }
    if body.fail_to.len() > MAX_FAIL_TO {
        return Err(ApiError::bad_request(
            "invalid_rules",
            format!("fail_to lists at most {MAX_FAIL_TO} addresses"),
        ));
    }
    let rules = FailureRules {
        push_failure_rate: body.push_failure_rate,
        email_failure_rate: body.email_failure_rate,
        sms_failure_rate: body.sms_failure_rate,
        fail_to: body.fail_to,
    };
    sim.set_rules(rules)
        .map_err(|e| ApiError::unprocessable("invalid_address", e.0))?;
    Ok(Json(wire_rules(sim.rules())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(decode_cursor("42").unwrap(), 42);
        for bad in ["", "-1", "1.5", "x", "1234567890123456789"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_spelt_out() {
        let p = wire_preferences(&Preferences::default());
        assert!(p.push.enabled && p.email.enabled && p.sms.enabled);
        assert!(p.sms.events["order.arrived_at_customer"]);
        assert!(!p.sms.events["order.paid"]);
        assert!(p.email.events["order.delivered"]);
        assert!(p.push.events.values().all(|&on| on));
        assert!(!p.push.events.contains_key("menu.updated"));
    }
}
