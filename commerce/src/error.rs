//! [`Error`]: why a use-case did not do what it was asked. Domain words
//! only: the REST layer maps each variant to one HTTP status, in one place
//! (`impl From<commerce::Error> for api::ApiError`).
//!
//! `code`s are the stable machine-readable names clients see
//! (`out_of_stock`, `order_unavailable`); `reason`s are messages written
//! for them.

use engine::OrderStatus;

use crate::store::StoreError;

/// What a use-case returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a use-case refused, or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such thing (`"order"`, `"restaurant"`, `"offer"`), or the caller
    /// may not know it exists.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller's credentials do not (or no longer) open a session: a
    /// refresh token unknown, expired or used, a banned account.
    #[error("{reason}")]
    Unauthorized {
        /// Stable name of the refusal (`invalid_refresh_token`, `banned`).
        code: &'static str,
        /// Why, for the client.
        reason: String,
    },
    /// The caller is known but may not do this; why.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (a racing change, an
    /// offer no longer open, a driver who already holds an order).
    #[error("{reason}")]
    Conflict {
        /// Stable name of the conflict.
        code: &'static str,
        /// Why, for the client.
        reason: String,
        /// One more named value for the client (`offer_state`).
        detail: Option<(&'static str, String)>,
    },
    /// The order cannot take this step from where it is.
    #[error("cannot move an order from {current:?} to {target:?}")]
    IllegalTransition {
        /// Where the order is now.
        current: OrderStatus,
        /// Where the step wanted it.
        target: OrderStatus,
        /// Why, when the lifecycle says more than "no such step".
        reason: Option<&'static str>,
    },
    /// Well-formed, but cannot be done as asked (an item out of stock, a
    /// closed restaurant, an idempotency key reused for another request).
    #[error("{reason}")]
    Invalid {
        /// Stable name of the refusal.
        code: &'static str,
        /// Why, for the client.
        reason: String,
        /// One more named value for the client (`menu_item_id`).
        detail: Option<(&'static str, String)>,
    },
    /// Something this needs is down for now (the payment gateway behind
    /// an open circuit breaker); nothing was written. Try again after
    /// `retry_after_s`.
    #[error("{reason}")]
    Unavailable {
        /// Stable name of the refusal (`payment_unavailable`).
        code: &'static str,
        /// Why, for the client.
        reason: String,
        /// Seconds to wait, at least 1.
        retry_after_s: u64,
    },
    /// The store failed (never a client's fault).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// [`Error::Conflict`] without detail.
    pub fn conflict(code: &'static str, reason: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            reason: reason.into(),
            detail: None,
        }
    }

    /// [`Error::Invalid`] without detail.
    pub fn invalid(code: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            reason: reason.into(),
            detail: None,
        }
    }

    /// [`Error::Forbidden`].
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::Forbidden(reason.into())
    }
}
