//! Notifications: what happened that concerns one user, as stored in their
//! feed (`GET /v1/notifications`) and pushed live (the tracking socket's
//! `me` channel, and for drivers their stream and MQTT inbox).
//!
//! Every notification carries its **id**: per recipient 1, 2, 3 … in the
//! order they were stored, so the last id a device saw is its cursor
//! (`?after=` over REST, `"after"` when subscribing to `me`).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::OrderStatus;

/// One notification of one user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    /// Per recipient: 1, 2, 3 … in the order stored; the resync cursor.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub id: i64,
    /// The event stream's id of what happened (the same event may notify
    /// several people; each gets it once).
    pub event_id: i64,
    /// The event's type (`order.accepted`, `payment.failed` …).
    pub event_type: String,
    /// The order it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid, nullable = false))]
    pub order_id: Option<Uuid>,
    /// The order's restaurant, if it is about an order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid, nullable = false))]
    pub restaurant_id: Option<Uuid>,
    /// The order's status after the event, if it is about an order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub status: Option<OrderStatus>,
    /// A short sentence for people, in the recipient's language (wording
    /// may change; program against `event_type`).
    pub text: String,
    /// When it happened, Unix ms.
    pub at_ms: i64,
    /// When the recipient marked it read, Unix ms; absent while unread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub read_at_ms: Option<i64>,
}

/// `GET /v1/notifications`: a page of the caller's notifications, oldest
/// first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationList {
    /// By ascending id.
    pub notifications: Vec<Notification>,
    /// Pass as `after` for the next page; absent when this page was the
    /// last (poll again with the last id seen for newer ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub next_after: Option<i64>,
}

/// `GET /v1/notifications/unread`: the badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnreadCount {
    /// Notifications not marked read.
    pub unread: i64,
    /// The newest notification's id; 0 with none.
    pub last_id: i64,
}

/// `POST /v1/notifications/read-all`'s body: what to mark read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MarkAllRead {
    /// Only notifications with ids up to this one (what the screen showed,
    /// so one that arrived meanwhile stays unread); all when absent or
    /// null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub up_to: Option<i64>,
}

/// `POST /v1/notifications/read-all`'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarkedRead {
    /// How many were unread and are read now.
    pub marked: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_round_trips_and_leaves_out_what_is_empty() {
        let n = Notification {
            id: 3,
            event_id: 42,
            event_type: "order.accepted".into(),
            order_id: Some(Uuid::from_u128(1)),
            restaurant_id: None,
            status: Some(OrderStatus::Accepted),
            text: "Your order was accepted".into(),
            at_ms: 5,
            read_at_ms: None,
        };
        let v = serde_json::to_value(&n).unwrap();
        assert!(v.get("restaurant_id").is_none());
        assert!(v.get("read_at_ms").is_none());
        assert_eq!(v["status"], "accepted");
        assert_eq!(serde_json::from_value::<Notification>(v).unwrap(), n);
    }
}
