//! Deliveries: customers watching their own order's courier, the customer
//! half of ping-to-screen (`--deliveries N`, hexdash over MQTT).
//!
//! Set-up, for each of the first N connected drivers (a few at a time),
//! through the public contract only:
//! 1. the courier subscribes to `drivers/{id}/offers` and pings once where
//!    it stands;
//! 2. a restaurant opens right there, so for the matcher the nearest
//!    available driver to its orders is this courier, at distance zero;
//! 3. a customer orders from it (paid with `tok_ok`), the restaurant
//!    accepts, the courier reads its offer from MQTT and accepts it over
//!    REST;
//! 4. the customer opens `/v1/ws` and subscribes to `order:{order_id}`.
//!
//! During the run the couriers ping with the rest of the fleet; every ping of
//! a courier becomes one `location` message to its customer, and the delay
//! from the ping's `ts` is the customer's ping-to-screen latency. After the
//! run every order is taken to `delivered` (ready, picked up, delivered), so
//! the couriers are free for the next run.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::orders::{self, get_json, post_json};
use crate::accounts::{self, Account, AuthApi};
use crate::cli::Cli;
use crate::fleet::Conn;
use crate::mqtt::{self, Packet};
use crate::roads::RoadNetwork;
use crate::walker::SplitMix64;
use crate::ws::{self, Socket, WatcherStats};

/// How long a courier waits for its offer.
const OFFER_WAIT: Duration = Duration::from_secs(30);
/// Deliveries set up at once (each is a handful of REST calls and the
/// matcher's offer).
const SET_UP_CONCURRENCY: usize = 32;
/// Seed tweak for the delivery addresses.
const DELIVERY_SEED: u64 = 0x6465_6C69_7665_7279;

/// `POST /v1/orders`'s answer, as far as needed.
#[derive(Deserialize)]
struct CreatedOrder {
    order_id: String,
}

/// An offer as the courier reads it from MQTT.
#[derive(Debug, Deserialize, PartialEq)]
struct OfferMsg {
    #[serde(rename = "type")]
    kind: String,
    offer_id: String,
    order_id: String,
}

/// `GET /v1/drivers/{id}`'s answer, as far as needed.
#[derive(Deserialize)]
struct DriverState {
    current_order: Option<String>,
}

/// Who takes part in one delivery.
struct Parties<'a> {
    courier: &'a Account,
    owner: &'a Account,
    customer: &'a Account,
}

/// A delivery under way: what finishing it takes.
pub struct Delivery {
    order_id: String,
    owner_token: String,
    courier_token: String,
}

/// The customers' sockets, subscribed to their orders, and the deliveries.
pub struct Prepared {
    pub sockets: Vec<Socket>,
    pub deliveries: Vec<Delivery>,
}

/// Sets up a delivery for each of the first `cli.deliveries` of `conns`
/// (connected, not yet sending). Failures are counted in `stats` (the first
/// few printed); the run goes on with the deliveries that worked.
pub async fn prepare(
    cli: &Cli,
    http: &reqwest::Client,
    auth: &AuthApi,
    net: &RoadNetwork,
    drivers: &[Account],
    conns: &mut [Conn],
    stats: &WatcherStats,
) -> anyhow::Result<Prepared> {
    let n = cli.deliveries.min(conns.len());
    let file = &cli.accounts_file;
    let owners = accounts::ensure(
        auth,
        file,
        "restaurant",
        n,
        cli.signup_concurrency,
        cli.quiet,
    )
    .await?;
    let customers =
        accounts::ensure(auth, file, "customer", n, cli.signup_concurrency, cli.quiet).await?;
    if owners.len() < n || customers.len() < n {
        bail!("could not create {n} restaurant owners and customers for the deliveries");
    }
    let base = cli.http_base();
    let ws_url = format!("{}/v1/ws", cli.watch_ws_url());
    let mut rng = SplitMix64::new(cli.seed ^ DELIVERY_SEED);
    let jobs = conns[..n].iter_mut().enumerate().map(|(k, conn)| {
        let dropoff = net.position(rng.below(net.node_count()) as u32);
        let parties = drivers.get(conn.index()).map(|courier| Parties {
            courier,
            owner: &owners[k],
            customer: &customers[k],
        });
        let ws_url = &ws_url;
        async move {
            let parties = parties.context("no account for this courier")?;
            set_up_one(http, base, ws_url, net, conn, &parties, k, dropoff).await
        }
    });
    let mut results = futures_util::stream::iter(jobs).buffer_unordered(SET_UP_CONCURRENCY);
    let mut prepared = Prepared {
        sockets: Vec::with_capacity(n),
        deliveries: Vec::with_capacity(n),
    };
    while let Some(r) = results.next().await {
        match r {
            Ok((socket, delivery)) => {
                stats.connected.add(1);
                prepared.sockets.push(socket);
                prepared.deliveries.push(delivery);
            }
            Err(e) => {
                if stats.connect_failed.get() < 3 {
                    eprintln!("a delivery could not be set up: {e:#}");
                }
                stats.connect_failed.add(1);
            }
        }
    }
    Ok(prepared)
}

/// Takes every order to `delivered`: the restaurant marks it ready, the
/// courier picks it up and delivers. Returns how many could not be
/// finished.
pub async fn finish(http: &reqwest::Client, base: &str, deliveries: &[Delivery]) -> usize {
    let steps = async |d: &Delivery| {
        let url = format!("{base}/v1/orders/{}/status", d.order_id);
        for (token, status) in [
            (&d.owner_token, "ready_for_pickup"),
            (&d.courier_token, "picked_up"),
            (&d.courier_token, "delivered"),
        ] {
            let body = serde_json::json!({ "status": status });
            post_json::<serde_json::Value>(http, &url, token, &body).await?;
        }
        anyhow::Ok(())
    };
    futures_util::stream::iter(deliveries.iter().map(steps))
        .buffer_unordered(SET_UP_CONCURRENCY)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await
}

#[allow(clippy::too_many_arguments)]
async fn set_up_one(
    http: &reqwest::Client,
    base: &str,
    ws_url: &str,
    net: &RoadNetwork,
    conn: &mut Conn,
    parties: &Parties<'_>,
    k: usize,
    dropoff: crate::geo::LatLng,
) -> anyhow::Result<(Socket, Delivery)> {
    let courier = parties.courier;
    let state: DriverState = get_json(
        http,
        &format!("{base}/v1/drivers/{}", courier.user_id),
        &courier.access_token,
    )
    .await?;
    if let Some(earlier) = state.current_order {
        bail!(
            "courier {} still carries order {earlier} from an earlier run that did not finish; \
             start hexdash on a fresh database",
            courier.user_id
        );
    }
    let offers = format!("drivers/{}/offers", courier.user_id);
    mqtt::subscribe(conn.stream_mut(), &offers)
        .await
        .context("subscribing the courier to its offers")?;
    conn.ping_once(net).await.context("courier ping")?;
    let at = conn.position(net);
    let restaurant =
        orders::create_restaurant(http, base, &parties.owner.access_token, k, at).await?;
    let mut rng = SplitMix64::new(k as u64);
    let order: CreatedOrder = post_json(
        http,
        &format!("{base}/v1/orders"),
        &parties.customer.access_token,
        &orders::order_body(&restaurant, &mut rng, dropoff),
    )
    .await
    .context("placing the order")?;
    let order_id = order.order_id;
    let _: serde_json::Value = post_json(
        http,
        &format!("{base}/v1/orders/{order_id}/status"),
        &parties.owner.access_token,
        &serde_json::json!({"status": "accepted"}),
    )
    .await
    .context("the restaurant accepting the order")?;
    let offer = tokio::time::timeout(OFFER_WAIT, next_offer(conn.stream_mut()))
        .await
        .context("no offer reached the courier within 30 s")??;
    if offer.order_id != order_id {
        bail!(
            "the courier was offered order {} instead of {order_id}",
            offer.order_id
        );
    }
    let _: serde_json::Value = post_json(
        http,
        &format!("{base}/v1/offers/{}/accept", offer.offer_id),
        &courier.access_token,
        &serde_json::json!({}),
    )
    .await
    .context("the courier accepting the offer")?;
    let subscribe =
        serde_json::json!({"op": "subscribe", "channel": format!("order:{order_id}")}).to_string();
    let socket = ws::connect_watcher(ws_url, &parties.customer.access_token, subscribe)
        .await
        .context("the customer subscribing to the order")?;
    let delivery = Delivery {
        order_id,
        owner_token: parties.owner.access_token.clone(),
        courier_token: courier.access_token.clone(),
    };
    Ok((socket, delivery))
}

/// Reads the courier's socket until an offer arrives; other packets
/// (PINGRESP, other messages) are skipped.
async fn next_offer(stream: &mut (impl AsyncRead + Unpin)) -> anyhow::Result<OfferMsg> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        while let Some((packet, used)) = mqtt::decode(&buf)? {
            let offer = match packet {
                Packet::Publish { payload, .. } => parse_offer(payload),
                _ => None,
            };
            if let Some(offer) = offer {
                return Ok(offer);
            }
            buf.drain(..used);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the broker closed the courier's connection");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An `offer` message, or `None` for anything else on the offers topic.
fn parse_offer(payload: &[u8]) -> Option<OfferMsg> {
    serde_json::from_slice::<OfferMsg>(payload)
        .ok()
        .filter(|o| o.kind == "offer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_told_from_other_messages() {
        let offer = br#"{"type":"offer","offer_id":"o1","order_id":"r1","pickup":{"lat":1,"lng":2},"dropoff":{"lat":1,"lng":2},"expires_at":5}"#;
        assert_eq!(
            parse_offer(offer),
            Some(OfferMsg {
                kind: "offer".into(),
                offer_id: "o1".into(),
                order_id: "r1".into(),
            })
        );
        assert_eq!(
            parse_offer(br#"{"type":"offer_ended","offer_id":"o1","reason":"expired"}"#),
            None
        );
        assert_eq!(parse_offer(b"not json"), None);
    }

    #[tokio::test]
    async fn next_offer_skips_other_packets_and_reassembles_split_reads() {
        let mut bytes = vec![0xD0, 0x00]; // PINGRESP
        mqtt::encode_publish(
            &mut bytes,
            b"drivers/d/offers",
            br#"{"type":"offer_ended","offer_id":"o0","reason":"expired"}"#,
        );
        mqtt::encode_publish(
            &mut bytes,
            b"drivers/d/offers",
            br#"{"type":"offer","offer_id":"o1","order_id":"r1"}"#,
        );
        // Two reads, split inside the offer: a chain yields the first part
        // until it is used up, then the second.
        let (first, second) = bytes.split_at(bytes.len() - 10);
        let mut stream = first.chain(second);
        let offer = next_offer(&mut stream).await.expect("offer");
        assert_eq!(offer.offer_id, "o1");
        assert_eq!(offer.order_id, "r1");
        // Nothing after it: a closed stream is an error, not a hang.
        let mut rest: &[u8] = &[];
        assert!(next_offer(&mut rest).await.is_err());
    }
}
