//! The notification feed: turning an event into notifications for the
//! people it concerns, each in their language ([`record`], called by the api's consumer of the
//! event stream), and a user's own feed ([`list`], [`unread`],
//! [`mark_read`], [`mark_all_read`]).
//!
//! [`record`] is idempotent: the store keeps one notification per
//! recipient and event, so the stream's redeliveries store nothing and
//! return nothing (nothing is pushed twice).

use std::collections::HashMap;

use engine::{OrderId, UserId};
use events::{Actor, Event, EventType};
use serde::Deserialize;

use crate::event::{CourierArrived, DispatchStalled, OrderChanged, RefundSettled};
use crate::notify::{self, Language, Party};
use crate::store::{
    ChannelStore, NewNotification, Notification, NotificationStore, Order, OrderStore, UnreadCount,
};
use crate::{Error, Result};

/// The largest page of [`list`].
pub const MAX_PAGE: u32 = 200;

/// What an order event says, whatever its payload's shape.
struct Told {
    status: Option<engine::OrderStatus>,
    driver: Option<UserId>,
    driver_from: Option<UserId>,
    amount_cents: Option<i64>,
}

/// The event's payload as far as notifications need it; `None` for a
/// backfilled event (not news) or a body that is not the type's shape
/// (never written by hexdash: skipped, not retried).
fn told(event: &Event) -> Option<Told> {
    // Read in place (`&Value` is a deserializer): no copy of the payload
    // per consumer and event.
    let body = &event.payload.body;
    match event.event_type {
        EventType::RefundSucceeded | EventType::RefundFailed => {
            let r: RefundSettled = Deserialize::deserialize(body).ok()?;
            Some(Told {
                status: None,
                driver: None,
                driver_from: None,
                amount_cents: Some(r.refund.amount_cents),
            })
        }
        EventType::OrderArrivedAtRestaurant | EventType::OrderArrivedAtCustomer => {
            let a: CourierArrived = Deserialize::deserialize(body).ok()?;
            Some(Told {
                status: None,
                driver: Some(a.driver_id.into()),
                driver_from: None,
                amount_cents: None,
            })
        }
        EventType::OrderDispatchStalled => {
            let _: DispatchStalled = Deserialize::deserialize(body).ok()?;
            Some(Told {
                status: None,
                driver: None,
                driver_from: None,
                amount_cents: None,
            })
        }
        _ => {
            let c: OrderChanged = Deserialize::deserialize(body).ok()?;
            if c.backfilled {
                return None;
            }
            Some(Told {
                status: Some(c.status),
                driver: c.driver_id.map(Into::into),
                driver_from: c.driver_from.map(Into::into),
                amount_cents: Some(c.total_cents),
            })
        }
    }
}

/// Who an event tells: its order, the amount it is about, its status
/// after, and each recipient with their part in it.
pub(crate) struct Recipients {
    /// The order the event is about.
    pub order: Order,
    /// The amount the event is about (a refund's, else the order's total).
    pub amount_cents: i64,
    /// The order's status after the event, when the event says.
    pub status: Option<engine::OrderStatus>,
    /// Each person told, once, with their part (the actor left out).
    pub list: Vec<(UserId, Party)>,
}

/// The order `event` is about, if it is news to anyone (see
/// [`crate::notify`]): `None` for events nobody is told of, about no
/// order, or backfilled.
fn told_about(event: &Event) -> Option<(OrderId, Told)> {
    if !notify::wanted(event.event_type) {
        return None;
    }
    let order_id = event.aggregate.id.parse::<OrderId>().ok()?;
    Some((order_id, told(event)?))
}

/// Who `event` tells, given what it says (`told`) and its order as read
/// now (`order`).
async fn recipients(
    store: &(impl OrderStore + NotificationStore + ?Sized),
    event: &Event,
    told: Told,
    order: &Order,
) -> Result<Recipients> {
    let actor = match &event.actor {
        Actor::User(id) => Some(UserId::from(*id)),
        Actor::System(_) => None,
    };
    // A stall is told once per order: the matcher raises it again after a
    // restart (it starts counting anew), which is not news.
    let told_before = if event.event_type == EventType::OrderDispatchStalled {
        store.notified_of_stall(order.id, event.id).await?
    } else {
        Vec::new()
    };
    let mut list: Vec<(UserId, Party)> = Vec::new();
    let mut add = |user: Option<UserId>, party: Party| {
        if let Some(user) = user
            && Some(user) != actor
            && !told_before.contains(&user)
            && !list.iter().any(|(u, _)| *u == user)
        {
            list.push((user, party));
        }
    };
    for &party in notify::audience(event.event_type, told.status) {
        match party {
            Party::Customer => add(Some(order.customer_id), party),
            Party::Restaurant => add(Some(order.restaurant_owner_id), party),
            Party::Driver => add(told.driver, party),
            Party::DriverFrom => add(told.driver_from, party),
            Party::Admins => {
                for admin in store.admin_ids().await? {
                    add(Some(admin), party);
                }
            }
        }
    }
    Ok(Recipients {
        amount_cents: told.amount_cents.unwrap_or(order.total_cents),
        status: told.status,
        order: order.clone(),
        list,
    })
}

/// The recipients of each of `events` that tells anyone (in order), and
/// every person among them once (sorted): what a batch's bulk reads ask
/// about. The events' orders are read in one statement
/// ([`OrderStore::order_heads`]), not one per event: this runs for the
/// feed and each outside channel on every read of the stream. Events
/// about an order the store does not have tell no one.
pub(crate) async fn recipients_of_batch<'a>(
    store: &(impl OrderStore + NotificationStore + ?Sized),
    events: &[&'a Event],
) -> Result<(Vec<(&'a Event, Recipients)>, Vec<UserId>)> {
    let about: Vec<(&'a Event, OrderId, Told)> = events
        .iter()
        .filter_map(|event| told_about(event).map(|(id, told)| (*event, id, told)))
        .collect();
    if about.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut ids: Vec<OrderId> = about.iter().map(|(_, id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let orders: HashMap<OrderId, Order> = store
        .order_heads(&ids)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let mut told = Vec::with_capacity(about.len());
    for (event, id, what) in about {
        if let Some(order) = orders.get(&id) {
            told.push((event, recipients(store, event, what, order).await?));
        }
    }
    let mut users: Vec<UserId> = told
        .iter()
        .flat_map(|(_, to)| to.list.iter().map(|(u, _)| *u))
        .collect();
    users.sort_unstable();
    users.dedup();
    Ok((told, users))
}

/// Stores a notification of `event` for each person it concerns (see
/// [`crate::notify`]) who has none of it yet, written in their language;
/// the newly stored ones, to push live. Events about no order, about an
/// order the store does not have, or backfilled, store nothing.
pub async fn record(
    store: &(impl OrderStore + NotificationStore + ChannelStore + ?Sized),
    event: &Event,
    now_ms: i64,
) -> Result<Vec<Notification>> {
    record_many(store, &[event], now_ms).await
}

/// [`record`] for several events, in their order, with one write: every
/// notification they make is stored in one transaction (the write is
/// what a busy stream waits on, one per event otherwise), and the
/// recipients' languages are read once for the batch. The newly stored
/// ones, in the events' order (so per recipient in id order).
pub async fn record_many(
    store: &(impl OrderStore + NotificationStore + ChannelStore + ?Sized),
    events: &[&Event],
    now_ms: i64,
) -> Result<Vec<Notification>> {
    let (told, users) = recipients_of_batch(store, events).await?;
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let languages: HashMap<UserId, Language> = store
        .contacts(&users)
        .await?
        .into_iter()
        .map(|c| (c.user_id, c.language.unwrap_or_default()))
        .collect();
    let new: Vec<NewNotification> = told
        .into_iter()
        .flat_map(|(event, to)| notifications_of(event, to, &languages, now_ms))
        .collect();
    Ok(store.insert_notifications(&new).await?)
}

/// The notifications `event` makes for the people it tells (`to`), one
/// each, in their language.
fn notifications_of(
    event: &Event,
    to: Recipients,
    languages: &HashMap<UserId, Language>,
    now_ms: i64,
) -> Vec<NewNotification> {
    to.list
        .into_iter()
        .map(|(user_id, party)| NewNotification {
            user_id,
            event_id: event.id,
            event_type: event.event_type.as_str().to_owned(),
            order_id: Some(to.order.id),
            restaurant_id: Some(to.order.restaurant_id),
            status: to.status,
            text: notify::text(
                event.event_type,
                party,
                to.amount_cents,
                languages.get(&user_id).copied().unwrap_or_default(),
            ),
            at_ms: event.at_ms,
            created_at_ms: now_ms,
        })
        .collect()
}

/// A page of `user`'s notifications after `after` (oldest first).
pub async fn list(
    store: &(impl NotificationStore + ?Sized),
    user: UserId,
    after: i64,
    limit: u32,
) -> Result<Vec<Notification>> {
    Ok(store
        .notifications_after(user, after, limit.clamp(1, MAX_PAGE))
        .await?)
}

/// `user`'s unread count and newest id.
pub async fn unread(
    store: &(impl NotificationStore + ?Sized),
    user: UserId,
) -> Result<UnreadCount> {
    Ok(store.unread_notifications(user).await?)
}

/// Marks one of `user`'s notifications read; not found when they have no
/// notification with that id.
pub async fn mark_read(
    store: &(impl NotificationStore + ?Sized),
    user: UserId,
    id: i64,
    now_ms: i64,
) -> Result<Notification> {
    store
        .mark_notification_read(user, id, now_ms)
        .await?
        .ok_or(Error::NotFound("notification"))
}

/// Marks `user`'s notifications up to `up_to` (all with `None`) read; how
/// many were unread.
pub async fn mark_all_read(
    store: &(impl NotificationStore + ?Sized),
    user: UserId,
    up_to: Option<i64>,
    now_ms: i64,
) -> Result<u64> {
    Ok(store
        .mark_all_notifications_read(user, up_to, now_ms)
        .await?)
}
