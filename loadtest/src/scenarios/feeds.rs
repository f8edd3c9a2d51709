//! Notification feeds (`--notify-feeds`, orders scenario): every customer
//! keeps its own `me` channel open on `/v1/ws`, as a customer's phone
//! does, and each notification it receives (the orders' `order.paid` and
//! whatever follows) is timed from the event's `at_ms` (when the change
//! committed, on the server's clock; same machine) to its arrival: the
//! latency from event to screen through the outbox, the relay, the
//! notification consumer's store and the push.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use contract::ws::{ClientMessage, ServerMessage};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::accounts::Account;
use crate::cli::Cli;
use crate::clock::now_us;
use crate::stats::Window;
use crate::ws::{self, Socket, WatcherStats};

/// The `me` subscription message (no `after`: only what happens from now).
fn subscribe_me() -> String {
    let message = ClientMessage {
        op: contract::ws::OP_SUBSCRIBE.to_owned(),
        channel: contract::ws::ME_CHANNEL.to_owned(),
        bbox: None,
        after: None,
    };
    // A struct of strings: serde_json cannot fail on it.
    serde_json::to_string(&message).unwrap_or_default()
}

/// Connects one feed per customer and subscribes it to `me`.
pub async fn connect(cli: &Cli, customers: &[Account], stats: &WatcherStats) -> Vec<Socket> {
    let url = format!("{}/v1/ws", cli.watch_ws_url());
    let mut results = futures_util::stream::iter(customers.iter().map(|c| {
        let url = url.clone();
        async move { ws::connect_watcher(&url, &c.access_token, subscribe_me()).await }
    }))
    .buffer_unordered(cli.connect_concurrency.max(1));
    let mut sockets = Vec::with_capacity(customers.len());
    while let Some(r) = results.next().await {
        match r {
            Ok(s) => {
                stats.connected.add(1);
                sockets.push(s);
            }
            Err(e) => {
                if stats.connect_failed.get() < 3 {
                    eprintln!("feed failed to connect: {e:#}");
                }
                stats.connect_failed.add(1);
            }
        }
    }
    sockets
}

/// Runs every feed until `stop`.
pub fn start(
    sockets: Vec<Socket>,
    stats: Arc<WatcherStats>,
    window: Window,
    since_ms: Arc<AtomicI64>,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    sockets
        .into_iter()
        .map(|s| {
            tokio::spawn(run(
                s,
                stats.clone(),
                window.clone(),
                since_ms.clone(),
                stop.clone(),
            ))
        })
        .collect()
}

/// What a feed makes of one server message.
#[derive(Debug, PartialEq)]
enum Received {
    /// A notification of an event at this instant, Unix ms.
    Notification { at_ms: i64 },
    /// The server's `error` message.
    Error,
    /// Anything else (acks, other channels).
    Other,
}

fn classify(text: &str) -> Received {
    match serde_json::from_str::<ServerMessage>(text) {
        Ok(ServerMessage::Notification(n)) => Received::Notification { at_ms: n.at_ms },
        Ok(ServerMessage::Error(_)) => Received::Error,
        _ => Received::Other,
    }
}

/// One feed: counts notifications (`frames` and `positions` of the shared
/// watcher stats) and times those of events inside the window.
async fn run(
    mut socket: Socket,
    stats: Arc<WatcherStats>,
    window: Window,
    since_ms: Arc<AtomicI64>,
    stop: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            () = stop.cancelled() => break,
            msg = socket.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                stats.disconnected.add(1);
                return;
            }
        };
        let received_us = now_us();
        match classify(&text) {
            Received::Notification { at_ms } => {
                stats.frames.add(1);
                stats.positions.add(1);
                if window.is_open() && at_ms >= since_ms.load(Ordering::Relaxed) {
                    stats.latency.record_all(&[received_us - at_ms * 1000]);
                }
            }
            Received::Error => stats.error_messages.add(1),
            Received::Other => {}
        }
    }
    let _ = socket.close(None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subscription_and_notifications_follow_the_contract() {
        let sub: ClientMessage = serde_json::from_str(&subscribe_me()).expect("a client message");
        assert_eq!((sub.op.as_str(), sub.channel.as_str()), ("subscribe", "me"));
        let note = ServerMessage::Notification(contract::Notification {
            id: 3,
            event_id: 99,
            event_type: "order.paid".into(),
            order_id: None,
            restaurant_id: None,
            status: None,
            text: "Payment received".into(),
            at_ms: 1_765_000_000_123,
            read_at_ms: None,
        });
        let text = serde_json::to_string(&note).expect("encodes");
        assert_eq!(
            classify(&text),
            Received::Notification {
                at_ms: 1_765_000_000_123
            }
        );
        assert_eq!(
            classify(r#"{"type":"subscribed","channel":"me"}"#),
            Received::Other
        );
    }
}
