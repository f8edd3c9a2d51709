//! Fuzzing access (hidden from the docs; not an API): a client message of
//! the tracking socket through what the connection's reader does before any
//! store is involved: the size limit, [`protocol::parse_request`], the
//! error reply, and for an area subscription the cell cover and the hub
//! registration with its `subscribed` reply. Order, `me` and restaurant
//! subscriptions answer with their `subscribed`/`unsubscribed` message
//! without reading their records (those need the domain store).

use auth::{Principal, Role, Tokens};
use engine::UserId;
use engine::cells::fanout_cover;

use crate::hub::MAX_AREA_CELLS;
use crate::mailbox::Mailbox;
use crate::protocol::{self, ProtocolError, Request, code};
use crate::{Config, Gateway};

/// The client every message comes from (an admin, so area subscriptions
/// are allowed).
const CLIENT: u64 = 1;

/// A gateway on an empty engine with one registered admin client.
pub struct ClientMessages {
    gateway: Gateway,
}

impl Default for ClientMessages {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientMessages {
    /// Default settings, no sockets.
    pub fn new() -> Self {
        let engine = engine::Handle::new(engine::Config::default());
        let gateway = Gateway::new(Config::default(), engine, Tokens::new(b"fuzz", 60));
        let shared = &gateway.shared;
        let mailbox = std::sync::Arc::new(Mailbox::new(shared.config.mailbox_limits()));
        let principal = Principal {
            user_id: UserId::from(uuid::Uuid::from_u64_pair(0, CLIENT)),
            role: Role::Admin,
        };
        // The gateway is not closing: registration cannot fail.
        let _ = shared.hub.lock().add_client(CLIENT, principal, mailbox);
        Self { gateway }
    }

    /// Handles one text message; returns the JSON reply the client gets.
    pub fn text(&self, text: &str) -> String {
        let shared = &self.gateway.shared;
        let limit = shared.config.max_message_bytes;
        if text.len() > limit {
            let message = format!("client messages are limited to {limit} bytes");
            return reply_text(protocol::error(&ProtocolError::new(
                code::MESSAGE_TOO_LARGE,
                message,
            )));
        }
        let reply = match protocol::parse_request(text) {
            Err(e) => protocol::error(&e),
            Ok(Request::SubscribeArea(bbox)) => {
                let cover = fanout_cover(bbox, MAX_AREA_CELLS);
                let mut hub = shared.hub.lock();
                let _ = hub.watch_area(CLIENT, bbox, cover);
                let _ = shared.engine.within(
                    bbox,
                    shared.config.snapshot_limit,
                    engine::StatusFilter::Any,
                );
                protocol::subscribed(protocol::AREA_CHANNEL, Some(bbox))
            }
            Ok(Request::UnsubscribeArea) => {
                shared.hub.lock().unwatch_area(CLIENT);
                protocol::unsubscribed(protocol::AREA_CHANNEL, None)
            }
            Ok(Request::SubscribeOrder(id)) => {
                protocol::subscribed(&protocol::order_channel(id), None)
            }
            Ok(Request::UnsubscribeOrder(id)) => {
                protocol::unsubscribed(&protocol::order_channel(id), None)
            }
            Ok(Request::SubscribeMe { .. }) => protocol::subscribed(protocol::ME_CHANNEL, None),
            Ok(Request::UnsubscribeMe) => protocol::unsubscribed(protocol::ME_CHANNEL, None),
            Ok(Request::SubscribeRestaurant(id)) => {
                protocol::subscribed(&protocol::restaurant_channel(id), None)
            }
            Ok(Request::UnsubscribeRestaurant(id)) => {
                protocol::unsubscribed(&protocol::restaurant_channel(id), None)
            }
        };
        reply_text(reply)
    }
}

fn reply_text(reply: protocol::Outgoing) -> String {
    reply.text.as_str().to_owned()
}
