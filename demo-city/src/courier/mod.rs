//! A simulated courier: one task per courier with its own MQTT connection.
//! It declares itself available over REST, pings its position along the
//! roads every `ping_interval_ms`, answers offers (declining a share),
//! drives to the restaurant, waits for the food, records `picked_up`,
//! drives to the door and records `delivered`, then roams the city again.
//!
//! - `phase`: the state machine (pure, unit-tested).
//! - `link`: the MQTT connection.
//!
//! A restart on the same database resumes: a courier whose account still
//! holds an order drives on with it from its last known position.

mod link;
pub mod phase;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::Method;
use routing::LatLng;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, Session};
use crate::config::Config;
use crate::kitchen::unexpected;
use crate::map::{Map, Place};
use crate::route::Route;
use crate::stats::Stats;
use link::Link;
use phase::{Command, Event, Job, Phase};

/// Wait before trying a lost MQTT connection again.
const RECONNECT_AFTER: Duration = Duration::from_secs(5);

/// What every courier shares.
pub struct Fleet {
    /// The roads.
    pub map: Arc<Map>,
    /// The demo's settings.
    pub config: Config,
    /// The counters.
    pub stats: Arc<Stats>,
    /// The broker, reachable.
    pub mqtt: SocketAddr,
}

/// One courier's state.
struct Courier {
    fleet: Arc<Fleet>,
    session: Session,
    phase: Phase,
    /// The current drive and when it began.
    route: Route,
    started: Instant,
    /// Whether the current drive's arrival was handled.
    arrived: bool,
    /// The last offer received, to turn an acceptance into a job.
    offer: Option<(String, Job)>,
    /// When to ask next whether the food is ready (at a restaurant).
    next_food_check: Option<Instant>,
}

/// Runs one courier until shutdown.
pub async fn run(fleet: Arc<Fleet>, session: Session, start: Place, shutdown: CancellationToken) {
    let Some(mut link) = connect(&fleet, &session, &shutdown).await else {
        return;
    };
    let mut courier = Courier {
        route: Route::stay(start.position, start.node),
        fleet,
        session,
        phase: Phase::Roaming,
        started: Instant::now(),
        arrived: false,
        offer: None,
        next_food_check: None,
    };
    courier.start().await;
    let interval = Duration::from_millis(courier.fleet.config.ping_interval_ms);
    // Spread the fleet's pings over the interval.
    let offset = interval.mul_f64(rand::rng().random::<f64>());
    let mut tick = tokio::time::interval_at(Instant::now() + offset, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                link.close();
                return;
            }
            _ = tick.tick() => courier.tick(&link).await,
            message = link.messages.recv() => match message {
                Some(m) => courier.message(m).await,
                None => {
                    // The connection is gone: a fresh token, a new one.
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(RECONNECT_AFTER) => {}
                    }
                    let _ = courier.session.renew().await;
                    match connect(&courier.fleet, &courier.session, &shutdown).await {
                        Some(l) => link = l,
                        None => return,
                    }
                }
            },
        }
    }
}

/// Connects to the broker, retrying until it works or shutdown (`None`).
async fn connect(fleet: &Fleet, session: &Session, shutdown: &CancellationToken) -> Option<Link> {
    loop {
        match Link::connect(fleet.mqtt, session.user_id(), &session.token()).await {
            Ok(link) => return Some(link),
            Err(e) => {
                if shutdown.is_cancelled() {
                    return None;
                }
                Stats::bump(&fleet.stats.unexpected);
                tracing::warn!("demo: courier {}: {e}", session.user_id());
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(RECONNECT_AFTER) => {}
        }
        let _ = session.renew().await;
    }
}

impl Courier {
    /// Goes on duty: available, and on with an order an earlier start
    /// left it holding, from where the server last saw it.
    async fn start(&mut self) {
        let id = self.session.user_id().to_owned();
        let available = json!({"status": "available"});
        if let Err(e) = self
            .session
            .send(
                Method::PUT,
                &format!("/v1/drivers/{id}/availability"),
                Some(&available),
            )
            .await
        {
            unexpected(&self.fleet.stats, &e);
        }
        let me = match self
            .session
            .send(Method::GET, &format!("/v1/drivers/{id}"), None)
            .await
        {
            Ok(me) => me,
            // Never pinged: the server does not know where it is yet.
            Err(e) if e.status() == Some(404) => Value::Null,
            Err(e) => {
                unexpected(&self.fleet.stats, &e);
                Value::Null
            }
        };
        if let (Some(lat), Some(lng)) = (me["lat"].as_f64(), me["lng"].as_f64())
            && let Some(place) = self.fleet.map.snap(LatLng { lat, lng })
        {
            self.route = Route::stay(place.position, place.node);
        }
        if let Some(order_id) = me["current_order"].as_str().map(str::to_owned)
            && self.resume(&order_id).await.is_some()
        {
            return;
        }
        self.execute(Command::Roam).await;
    }

    /// Takes up `order_id` where an earlier start left it; `Some` when it
    /// is still this courier's and open.
    async fn resume(&mut self, order_id: &str) -> Option<()> {
        let order = self
            .session
            .send(Method::GET, &format!("/v1/orders/{order_id}"), None)
            .await
            .ok()?;
        let point = |v: &Value| {
            Some(LatLng {
                lat: v["lat"].as_f64()?,
                lng: v["lng"].as_f64()?,
            })
        };
        let job = Job {
            order_id: order_id.to_owned(),
            pickup: point(&order["pickup"])?,
            dropoff: point(&order["dropoff"])?,
        };
        let status = contract::OrderStatus::parse(order["status"].as_str()?)?;
        if status.is_terminal() {
            return None;
        }
        tracing::info!(order_id, "demo: courier resumes its order");
        let (phase, target) = if status == contract::OrderStatus::PickedUp {
            (Phase::ToCustomer(job.clone()), job.dropoff)
        } else {
            (Phase::ToRestaurant(job.clone()), job.pickup)
        };
        self.phase = phase;
        self.execute(Command::DriveTo(target)).await;
        Some(())
    }

    /// Milliseconds into the current drive.
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One ping, and what the moment brings: an arrival, a look at the
    /// kitchen.
    async fn tick(&mut self, link: &Link) {
        let elapsed = self.elapsed_ms();
        let fix = self.route.fix(elapsed);
        if link.ping(&fix, now_ms()) {
            Stats::bump(&self.fleet.stats.pings);
        }
        if self.route.is_done(elapsed) && !self.arrived {
            self.arrived = true;
            self.handle(Event::Arrived).await;
        }
        if let (Phase::AtRestaurant(job), Some(at)) = (&self.phase, self.next_food_check)
            && Instant::now() >= at
        {
            let order_id = job.order_id.clone();
            self.next_food_check =
                Some(Instant::now() + Duration::from_millis(self.fleet.config.poll_interval_ms));
            if let Some(event) = self.look_at_order(&order_id).await {
                self.handle(event).await;
            }
        }
    }

    /// `FoodReady`, `OrderGone`, or `None` to keep waiting.
    async fn look_at_order(&self, order_id: &str) -> Option<Event> {
        let order = match self
            .session
            .send(Method::GET, &format!("/v1/orders/{order_id}"), None)
            .await
        {
            Ok(order) => order,
            Err(e) => {
                unexpected(&self.fleet.stats, &e);
                return None;
            }
        };
        let status = order["status"]
            .as_str()
            .and_then(contract::OrderStatus::parse);
        let mine = order["driver_id"].as_str() == Some(self.session.user_id());
        match status {
            _ if !mine => Some(Event::OrderGone),
            Some(s) if s.is_terminal() => Some(Event::OrderGone),
            Some(contract::OrderStatus::ReadyForPickup) => Some(Event::FoodReady),
            _ => None,
        }
    }

    /// A message from the broker: an offer, or the end of one.
    async fn message(&mut self, m: Value) {
        if m["type"] != "offer" {
            return;
        }
        let Ok(offer) = serde_json::from_value::<contract::driver::OfferMessage>(m) else {
            Stats::bump(&self.fleet.stats.unexpected);
            tracing::warn!("demo: an offer the courier cannot read");
            return;
        };
        Stats::bump(&self.fleet.stats.offers);
        let offer_id = offer.offer_id.to_string();
        self.offer = Some((
            offer_id.clone(),
            Job {
                order_id: offer.order_id.to_string(),
                pickup: LatLng {
                    lat: offer.pickup.lat,
                    lng: offer.pickup.lng,
                },
                dropoff: LatLng {
                    lat: offer.dropoff.lat,
                    lng: offer.dropoff.lng,
                },
            },
        ));
        let accept = rand::rng().random::<f64>() >= self.fleet.config.decline_share;
        self.handle(Event::Offer { offer_id, accept }).await;
    }

    /// Moves the state machine by `event` and carries out its commands
    /// (a command may bring the next event).
    async fn handle(&mut self, event: Event) {
        let mut next = Some(event);
        while let Some(event) = next.take() {
            let phase = std::mem::replace(&mut self.phase, Phase::Roaming);
            let (phase, command) = phase.on(event);
            tracing::debug!(
                courier = self.session.user_id(),
                ?phase,
                ?command,
                "demo: courier"
            );
            self.phase = phase;
            next = self.execute(command).await;
        }
    }

    /// Carries out `command`; the event it leads to, if any.
    async fn execute(&mut self, command: Command) -> Option<Event> {
        let stats = &self.fleet.stats;
        match command {
            Command::Nothing => None,
            Command::Answer { offer_id, accept } => {
                let verb = if accept { "accept" } else { "decline" };
                let path = format!("/v1/offers/{offer_id}/{verb}");
                let answer = self.session.send(Method::POST, &path, None).await;
                let job = self
                    .offer
                    .take()
                    .filter(|(id, _)| *id == offer_id)
                    .map(|(_, job)| job);
                match answer {
                    Ok(_) if accept => {
                        Stats::bump(&stats.accepted);
                        job.map(Event::Assigned)
                    }
                    Ok(_) => {
                        Stats::bump(&stats.declined);
                        None
                    }
                    // The offer expired or was withdrawn meanwhile.
                    Err(e) if matches!(e.status(), Some(404 | 409 | 410)) => None,
                    Err(e) => {
                        unexpected(stats, &e);
                        None
                    }
                }
            }
            Command::DriveTo(to) => {
                let target = self.fleet.map.snap(to)?;
                self.drive(target).await;
                None
            }
            Command::Roam => {
                let target = {
                    let mut rng = rand::rng();
                    self.fleet.map.place_in_ring(
                        &mut rng,
                        self.fleet.map.centre(),
                        0.0,
                        self.fleet.config.restaurant_radius_m,
                    )
                };
                if let Ok(target) = target {
                    self.drive(target).await;
                }
                None
            }
            Command::WaitForFood(_) => {
                self.next_food_check = Some(Instant::now());
                None
            }
            Command::PickUp(order_id) => match self.step(&order_id, "picked_up").await {
                Ok(()) => Some(Event::PickedUp),
                // Not ready after all, or no longer ours: look again.
                Err(e) if e.status() == Some(409) => self.look_at_order(&order_id).await,
                Err(e) => {
                    unexpected(stats, &e);
                    Some(Event::OrderGone)
                }
            },
            Command::Deliver(order_id) => {
                match self.step(&order_id, "delivered").await {
                    Ok(()) => {}
                    // Cancelled or reassigned on the way: nothing to hand over.
                    Err(e) if e.status() == Some(409) => {}
                    Err(e) => unexpected(stats, &e),
                }
                Box::pin(self.execute(Command::Roam)).await
            }
        }
    }

    /// Records a step of the order as its driver.
    async fn step(&self, order_id: &str, status: &str) -> Result<(), ApiError> {
        let body = json!({ "status": status });
        self.session
            .send(
                Method::POST,
                &format!("/v1/orders/{order_id}/status"),
                Some(&body),
            )
            .await
            .map(|_| ())
    }

    /// Starts a drive to `target` from where the courier is now.
    async fn drive(&mut self, target: Place) {
        let elapsed = self.elapsed_ms();
        let here = self.route.fix(elapsed).position;
        let Some((_, from_node)) = self.route.next_node(elapsed) else {
            return;
        };
        let map = self.fleet.map.clone();
        let speed = self.fleet.config.speed_factor;
        // A Dijkstra over the city: off the async threads.
        let route =
            tokio::task::spawn_blocking(move || map.drive(here, from_node, target.node, speed))
                .await;
        if let Ok(route) = route {
            tracing::debug!(
                courier = self.session.user_id(),
                drive_s = route.duration_ms() / 1000,
                crow_m = here.distance_m(target.position) as u64,
                "demo: courier drives"
            );
            self.route = route;
            self.started = Instant::now();
            self.arrived = false;
        }
    }
}

/// Unix ms on this machine's clock: what a phone stamps its fixes with.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
