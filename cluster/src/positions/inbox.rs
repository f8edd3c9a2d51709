//! Driver-bound messages between nodes: an offer, an offer's end, a
//! stored notification (cancellation, reassignment …) or a declaration
//! made on one node for a driver whose connection is on another. The
//! drivers' directory (`{prefix}pos:drivers`, written by the node a driver
//! pings) names that node; the message goes to its own channel
//! (`{prefix}node:{id}`), where its feed hands it to the local paths
//! (the engine's change stream for offers, [`Deliver`] for
//! notifications). JSON: these are rare, and readable in `MONITOR`.

use engine::{Availability, DriverId, LatLng, OfferEnd, OfferId, OrderId, UserId};
use serde::{Deserialize, Serialize};

/// Where a node hands a notification that came from another node (the
/// binary: ingest's driver stream and MQTT inbox, the tracking socket's
/// `me` channel).
pub trait Deliver: Send + Sync + 'static {
    /// Sends `notification` (the contract's JSON) to `driver`'s
    /// connections on this node.
    fn notify(&self, driver: DriverId, notification: &serde_json::Value);

    /// Sends `notification` to `user`'s `me` subscriptions on this node
    /// (a customer's or an owner's phone on another node than the one that
    /// stored it).
    fn notify_user(&self, user: UserId, notification: &serde_json::Value);
}

/// A stored notification for a user, broadcast to every node
/// (`{prefix}notify:users`): whichever node holds the user's `me`
/// subscription pushes it. The origin skips its own (it pushed locally).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserNotice {
    /// The node that stored the notification and pushed it locally.
    pub node: String,
    /// Whose notification it is.
    pub user_id: UserId,
    /// The contract's JSON of the notification.
    pub notification: serde_json::Value,
}

/// One driver-bound message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum DriverMessage {
    /// An offer made by a matcher on another node.
    Offer {
        offer_id: OfferId,
        order_id: OrderId,
        driver_id: DriverId,
        pickup: [f64; 2],
        dropoff: [f64; 2],
        expires_at_ms: i64,
        /// Stacking: the order the driver already holds that this one
        /// rides along with (absent from a node that does not stack).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stacked_with: Option<OrderId>,
    },
    /// That offer can no longer be answered.
    OfferEnded {
        offer_id: OfferId,
        driver_id: DriverId,
        /// `expired` or `withdrawn`.
        end: String,
    },
    /// A stored notification (the contract's JSON).
    Notify {
        driver_id: DriverId,
        notification: serde_json::Value,
    },
    /// What the driver declared, on another node, and when.
    Availability {
        driver_id: DriverId,
        available: bool,
        at_ms: i64,
    },
}

impl DriverMessage {
    /// The message for an offer made here.
    pub fn offer(offer: &engine::Offer) -> DriverMessage {
        DriverMessage::Offer {
            offer_id: offer.offer_id,
            order_id: offer.order_id,
            driver_id: offer.driver_id,
            pickup: [offer.pickup.lat, offer.pickup.lng],
            dropoff: [offer.dropoff.lat, offer.dropoff.lng],
            expires_at_ms: offer.expires_at_ms,
            stacked_with: offer.stacked_with,
        }
    }

    /// The message for an offer's end.
    pub fn offer_ended(offer_id: OfferId, driver_id: DriverId, end: OfferEnd) -> DriverMessage {
        DriverMessage::OfferEnded {
            offer_id,
            driver_id,
            end: match end {
                OfferEnd::Expired => "expired",
                OfferEnd::Withdrawn => "withdrawn",
            }
            .into(),
        }
    }

    /// The message for a declaration.
    pub fn availability(driver_id: DriverId, availability: Availability, at_ms: i64) -> Self {
        DriverMessage::Availability {
            driver_id,
            available: availability == Availability::Available,
            at_ms,
        }
    }

    /// The driver it is for.
    pub fn driver(&self) -> DriverId {
        match self {
            DriverMessage::Offer { driver_id, .. }
            | DriverMessage::OfferEnded { driver_id, .. }
            | DriverMessage::Notify { driver_id, .. }
            | DriverMessage::Availability { driver_id, .. } => *driver_id,
        }
    }

    /// An offer message as the engine carries it; `None` for other kinds
    /// or coordinates out of range.
    pub fn to_offer(&self) -> Option<engine::Offer> {
        let DriverMessage::Offer {
            offer_id,
            order_id,
            driver_id,
            pickup,
            dropoff,
            expires_at_ms,
            stacked_with,
        } = self
        else {
            return None;
        };
        Some(engine::Offer {
            offer_id: *offer_id,
            order_id: *order_id,
            driver_id: *driver_id,
            pickup: LatLng::new(pickup[0], pickup[1]).ok()?,
            dropoff: LatLng::new(dropoff[0], dropoff[1]).ok()?,
            expires_at_ms: *expires_at_ms,
            relayed: true,
            stacked_with: *stacked_with,
        })
    }
}

/// A directory entry: the driver's region index (u64 LE) then the id of
/// the node it pings.
pub(crate) fn directory_entry(region: super::Region, node: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + node.len());
    v.extend_from_slice(&region.index().to_le_bytes());
    v.extend_from_slice(node.as_bytes());
    v
}

/// Reads a directory entry: (region index, node id).
pub(crate) fn parse_directory_entry(bytes: &[u8]) -> Option<(u64, &str)> {
    if bytes.len() < 8 {
        return None;
    }
    let mut index = [0; 8];
    index.copy_from_slice(&bytes[..8]);
    Some((
        u64::from_le_bytes(index),
        std::str::from_utf8(&bytes[8..]).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json() {
        let offer = engine::Offer {
            offer_id: OfferId::new(),
            order_id: OrderId::new(),
            driver_id: DriverId::new(),
            pickup: LatLng::new(57.7, 11.9).unwrap(),
            dropoff: LatLng::new(57.71, 11.95).unwrap(),
            expires_at_ms: 42,
            relayed: true,
            stacked_with: None,
        };
        let msg = DriverMessage::offer(&offer);
        let text = serde_json::to_string(&msg).unwrap();
        assert!(text.starts_with(r#"{"t":"offer""#), "{text}");
        assert!(!text.contains("stacked_with"), "{text}");
        let back: DriverMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_offer().as_ref(), Some(&offer));
        // A stacked offer keeps the order it rides along with.
        let stacked = engine::Offer {
            stacked_with: Some(OrderId::new()),
            ..offer.clone()
        };
        let text = serde_json::to_string(&DriverMessage::offer(&stacked)).unwrap();
        let back: DriverMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_offer().as_ref(), Some(&stacked));
        assert_eq!(back.driver(), offer.driver_id);
        let ended = DriverMessage::offer_ended(offer.offer_id, offer.driver_id, OfferEnd::Expired);
        assert!(
            serde_json::to_string(&ended)
                .unwrap()
                .contains(r#""end":"expired""#)
        );
        assert_eq!(ended.to_offer(), None);
    }

    #[test]
    fn directory_entries_read_back() {
        let region = super::super::Region::of_point(
            LatLng::new(57.7, 11.9).unwrap(),
            engine::cells::CellResolution::Five,
        );
        let entry = directory_entry(region, "node-a");
        assert_eq!(
            parse_directory_entry(&entry),
            Some((region.index(), "node-a"))
        );
        assert_eq!(parse_directory_entry(b"short"), None);
    }
}
