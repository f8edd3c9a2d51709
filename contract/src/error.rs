//! The JSON error body every HTTP path answers 4xx and 5xx with:
//! `{"error": {"code": "snake_case_code", "message": "human readable"}}`,
//! sometimes with one more field inside `error`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::OrderStatus;

/// The error body of every 4xx and 5xx answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"error": {"code": "illegal_transition",
    "message": "cannot move the order from delivered to accepted",
    "current_status": "delivered"}})))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

impl ErrorBody {
    /// A body with only `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                current_status: None,
                retry_after_s: None,
                menu_item_id: None,
                restaurant_id: None,
                offer_state: None,
                refundable_cents: None,
            },
        }
    }
}

/// `code` and `message`, and at most one of the optional fields (which
/// error carries which is said on each operation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable, machine-readable, snake_case (`invalid_json`, `not_found`,
    /// `illegal_transition`, ...).
    pub code: String,
    /// For people; wording may change.
    pub message: String,
    /// 409 `illegal_transition`: the order's status now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub current_status: Option<OrderStatus>,
    /// 429 `rate_limited`: seconds to wait, as a decimal string (also in
    /// the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, example = "120"))]
    pub retry_after_s: Option<String>,
    /// 409 `out_of_stock`, 422 `unknown_item` and `item_unavailable`: the
    /// menu item concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, value_type = Option<String>, format = Uuid))]
    pub menu_item_id: Option<Uuid>,
    /// 409 `cart_has_other_restaurant`: the restaurant the cart holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, value_type = Option<String>, format = Uuid))]
    pub restaurant_id: Option<Uuid>,
    /// 409 `offer_not_pending`: `accepted`, `declined`, `expired` or
    /// `withdrawn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub offer_state: Option<String>,
    /// 422 `refund_exceeds_paid`: cents still refundable, as a decimal
    /// string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub refundable_cents: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_body_has_code_then_message_only() {
        let body = ErrorBody::new("not_found", "no such order");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"not_found","message":"no such order"}}"#
        );
        let back: ErrorBody = serde_json::from_str(
            r#"{"error":{"code":"illegal_transition","message":"m","current_status":"delivered"}}"#,
        )
        .unwrap();
        assert_eq!(back.error.current_status, Some(OrderStatus::Delivered));
    }
}
