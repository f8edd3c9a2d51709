//! `hexdash serve --demo`: a living city on the map the project ships,
//! driving hexdash **only through its public interfaces**, so the demo is
//! also a smoke test of the whole system.
//!
//! - [`config`]: the `[demo]` settings (fleet, rate, city) and their checks.
//! - [`map`]: the road graph, places on it, fastest drives; [`route`]: a
//!   drive and the GPS fix at any moment of it.
//! - [`api`]: the REST client and per-account sessions (signup once, login,
//!   login again on expiry).
//! - [`restaurants`]: owners, restaurants and menus (made once, found again
//!   on the next start); [`kitchen`]: each restaurant accepts, prepares and
//!   readies its paid orders over REST.
//! - [`courier`]: one task per courier with its own MQTT connection:
//!   pings, offers, pickup and delivery.
//! - [`customers`]: the order stream (REST) and each order watched over
//!   WebSocket to its end, at most `max_in_flight` at once.
//! - [`stats`]: counters and the periodic summary line.
//!
//! **Architecture Invariant:** like `loadtest`, the demo is a client: of
//! hexdash's crates it depends on `contract` (the JSON), `cityseed`
//! (menus) and `routing` (the road graph couriers drive) only, never on
//! `engine`, `api` or the store. Everything it does, a driver app, a
//! restaurant tablet or a customer app could do.
//!
//! **Architecture Invariant:** its memory is bounded by its settings: one
//! task and connection per courier, one kitchen list per restaurant, at
//! most `max_in_flight` order watchers; nothing grows with running time.

pub mod api;
pub mod config;
pub mod courier;
pub mod customers;
pub mod kitchen;
pub mod map;
pub mod restaurants;
pub mod route;
pub mod stats;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use futures_util::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, ConfigError};

use api::{Api, ApiError, Session};
use map::{Map, MapError};
use restaurants::SetupError;
use stats::Stats;

/// The domain of every demo account (`.example` is reserved: never a
/// real mailbox).
pub const DEMO_EMAIL_DOMAIN: &str = "demo.hexdash.example";
/// The admin the demo creates when the operator configured none: printed
/// at start so a newcomer can log in to the console.
pub const ADMIN_EMAIL: &str = "admin@demo.hexdash.example";
/// The demo admin's password (public: a demo server holds made-up data).
pub const ADMIN_PASSWORD: &str = "demo-admin-password";
/// Accounts signed up or logged in at once at start: password hashing
/// runs a few at a time on the server anyway (one per core).
const OPENING_CONCURRENCY: usize = 4;

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The road graph.
    #[error(transparent)]
    Map(#[from] MapError),
    /// Setting up accounts, restaurants or menus failed.
    #[error("cannot set up the demo city: {0}")]
    Setup(#[from] SetupError),
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Error {
        Error::Setup(SetupError::Api(e))
    }
}

/// Where the demo reaches the server.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// REST and WebSocket.
    pub http: SocketAddr,
    /// The MQTT broker.
    pub mqtt: SocketAddr,
}

/// The admin the demo logs in as (to find its restaurants again and
/// cancel orders stuck for half an hour).
pub struct Admin {
    /// Its email.
    pub email: String,
    /// Its password.
    pub password: String,
}

/// `addr` as a client reaches it: a wildcard address becomes the loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// Builds the city and runs it until `shutdown`. Returns an error only
/// when the city cannot be set up (a bad setting, the map, the server
/// refusing the set-up); once running, trouble is logged and counted.
pub async fn run(
    config: Config,
    target: Target,
    admin: Admin,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    config.validate()?;
    let city = config.city.clone();
    let map = tokio::task::spawn_blocking(move || Map::load(&city))
        .await
        .map_err(|e| SetupError::Unexpected(format!("loading the map: {e}")))??;
    let map = Arc::new(map);
    let api = Arc::new(Api::new(target.http));
    let admin = Arc::new(Session::login(api.clone(), &admin.email, &admin.password).await?);
    let stats = Arc::new(Stats::default());
    let tracker = TaskTracker::new();

    let restaurants: Vec<Arc<restaurants::Restaurant>> =
        restaurants::set_up(&api, &admin, &map, &config)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
    for r in &restaurants {
        tracker.spawn(kitchen::run(
            r.clone(),
            config.clone(),
            stats.clone(),
            shutdown.clone(),
        ));
    }
    tracing::info!(restaurants = restaurants.len(), "demo: restaurants open");

    // Couriers go on the road as their accounts open.
    let fleet = Arc::new(courier::Fleet {
        map: map.clone(),
        config: config.clone(),
        stats: stats.clone(),
        mqtt: reachable(target.mqtt),
    });
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut starts = Vec::with_capacity(config.couriers as usize);
    for _ in 0..config.couriers {
        starts.push(map.place_in_ring(&mut rng, map.centre(), 0.0, config.restaurant_radius_m)?);
    }
    let mut opening = futures_util::stream::iter((0..config.couriers).zip(starts))
        .map(|(i, start)| {
            let api = api.clone();
            async move {
                let email = format!("courier-{i:04}@{DEMO_EMAIL_DOMAIN}");
                let name = format!("Demo courier {}", i + 1);
                (Session::open(api, &email, &name, "driver").await, start)
            }
        })
        .buffer_unordered(OPENING_CONCURRENCY);
    let mut couriers = 0;
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = opening.next() => next,
        };
        let Some((session, start)) = next else { break };
        tracker.spawn(courier::run(
            fleet.clone(),
            session?,
            start,
            shutdown.clone(),
        ));
        couriers += 1;
    }
    tracing::info!(couriers, "demo: couriers on the road");

    let sessions: Vec<Session> = futures_util::stream::iter(0..config.customers)
        .map(|i| {
            let api = api.clone();
            async move {
                let email = format!("customer-{i:04}@{DEMO_EMAIL_DOMAIN}");
                let name = format!("Demo customer {}", i + 1);
                Session::open(api, &email, &name, "customer").await
            }
        })
        .buffer_unordered(OPENING_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let ws_base = format!("ws://{}", reachable(target.http));
    let customers = Arc::new(customers::Customers {
        sessions,
        restaurants,
        admin,
        map,
        ws_base,
    });
    tracker.spawn(customers::run(
        customers,
        config.clone(),
        stats.clone(),
        shutdown.clone(),
    ));
    tracing::info!(
        customers = config.customers,
        orders_per_min = config.orders_per_min,
        "demo: customers ordering"
    );
    tracker.close();
    stats.run(shutdown.clone()).await;
    tracker.wait().await;
    stats.log();
    Ok(())
}
