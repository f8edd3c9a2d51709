//! The REST layer: accounts, restaurants, menus, search, carts, orders,
//! payments, driver availability and queries, and answers to offers, over
//! the store that is the source of truth, mirrored into the engine for the
//! live side.
//!
//! - [`router`]: the pure `axum::Router` of every `/v1` REST route, built
//!   from one [`AppState`], plus `GET /openapi.json` and the docs UI at
//!   `/docs`; [`routes`] has one module per resource, and [`openapi`] the
//!   OpenAPI document of them all (and of the routes the other crates serve
//!   in the binary).
//! - [`store`], [`lifecycle`], [`payments`]: re-exported from the
//!   `commerce` crate, which holds the order's life (records, store,
//!   rules, the payments saga and the use-cases the handlers call).
//! - [`search`]: the in-memory restaurant and dish catalog behind search,
//!   kept in step with the store.
//! - [`live`]: after the store commits, the engine's order board and the
//!   matcher are told ([`live::Live`] implements the domain's ports over
//!   them; `ready_for_pickup` steps teach the matcher preparation times);
//!   [`restore_live_state`] rebuilds them (and the catalog, and the
//!   preparation estimates) at start-up. Customer ETAs come from
//!   [`AppState::etas`] (the matcher's road ETAs).
//! - [`consumers`]: the in-process consumers of the event stream (the
//!   order board by version, the matcher's trigger, the search catalog,
//!   the notification feed with its live [`consumers::notify::Push`]
//!   port) and the feed of driver presence, offers and couriers' arrivals
//!   into the stream.
//! - [`channels`]: the outside channels' settings and providers
//!   (push, email, SMS; the simulated provider by default).
//! - [`breadcrumbs`]: each driver's recent path, bounded, in memory (fed
//!   from the engine's moves by a task the binary spawns), for tracks and
//!   the routes delivered orders keep.
//! - [`stuck`]: the sweep that rejects and refunds paid orders no
//!   restaurant accepted in time.
//! - [`limiter`]: login and signup rate limits (shared by the nodes of a
//!   cluster); [`throttle`]: the request rate limits of every REST route,
//!   per client address and per account (each node's own).
//! - [`regions`]: regions held on demand for `nearby` on a node of a
//!   cluster that does not hold every region.
//! - [`describe_metrics`]: the HELP text of every metric this crate records.
//! - [`error`]: [`ApiError`], the one error type, rendered as the contract's
//!   JSON error body (and the one mapping of `commerce::Error` to HTTP); [`extract`]: `ApiJson`/`ApiPath`/`ApiQuery`, whose
//!   rejections use that body too.
//!
//! Time: handlers read the app's injected clock ([`AppState::clock`]) once,
//! at the edge, and pass `now_ms` down; new rows get UUIDv7 ids from
//! [`AppState::ids`]. The engine and the matcher's pure parts never read it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub mod answers;
pub mod breadcrumbs;
pub mod channels;
pub mod consumers;
pub mod error;
pub mod extract;
#[doc(hidden)]
pub mod fuzz_support;
pub mod hooks;
pub mod limiter;
pub mod live;
mod metrics;
pub mod openapi;
pub mod regions;
pub mod routes;
pub mod search;
pub mod stuck;
pub mod throttle;

pub use commerce::{lifecycle, payments, store};

pub use self::metrics::describe_metrics;
pub use commerce::usecase::account::AdminBootstrap;
pub use error::{
    ApiError, ApiResult, error_chain, method_not_allowed_fallback, not_found_fallback,
};
pub use live::Restored;
pub use routes::auth::bootstrap_admin;
pub use store::{Store, StoreError, connect};

/// Settings of the REST layer. The access-token lifetime belongs to
/// `auth::Tokens`, shared with the other edges.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// How long a refresh token stays usable. Each use rotates it (the old
    /// one is revoked, a new one issued), so an active client never expires.
    pub refresh_ttl_s: u64,
    /// Largest request body accepted (413 above it). Our bodies are small
    /// JSON documents; the limit bounds memory per request.
    pub body_limit_bytes: usize,
    /// argon2id memory cost per password hash, KiB (OWASP: 19 MiB).
    pub password_memory_kib: u32,
    /// argon2id passes (OWASP: 2 at 19 MiB).
    pub password_passes: u32,
    /// Password hashes computed at once; more wait. Each takes
    /// `password_memory_kib` of memory and a core for tens of milliseconds,
    /// so a burst of signups or logins must queue rather than exhaust memory
    /// and starve the other work of CPU. 0: the number of cores.
    pub max_concurrent_hashes: usize,
    /// Gateway calls per payment before a transient failure is final.
    pub payment_attempts: u32,
    /// How long one payment gateway call may take before it counts as a
    /// transient failure, ms (0: no limit).
    pub payment_timeout_ms: u64,
    /// Transient gateway failures in a row that open the payment circuit
    /// breaker (`payments::breaker`): no calls, new orders refused with
    /// 503 `payment_unavailable`, until a trial call answers (0: never).
    pub payment_breaker_failures: u32,
    /// How long the breaker stays open before a trial call, ms.
    pub payment_breaker_open_ms: u64,
    /// Wait before the first payment retry; doubles each time.
    pub payment_backoff_ms: u64,
    /// Background rounds (of `payment_attempts` calls each) for a refund
    /// the gateway could not be reached for, before it fails for good and
    /// its amount becomes refundable again. Money owed back should not wait
    /// for an admin: ten rounds with the default backoff (30 s doubling,
    /// at most 30 min) span about two and a half hours of gateway outage.
    /// 0: fail after the first round, as charges do.
    pub refund_retry_rounds: u32,
    /// Wait before a refund's first background round; doubles each round.
    pub refund_retry_backoff_ms: u64,
    /// Longest wait between two background rounds of a refund (and before
    /// a refund the store failed for is tried again). Waits are at least
    /// 100 ms whatever this and `refund_retry_backoff_ms` say.
    pub refund_retry_max_backoff_ms: u64,
    /// Delivery fee: a base plus a rate per started kilometre of the
    /// straight line from restaurant to door.
    pub delivery_fee_base_cents: i64,
    pub delivery_fee_per_km_cents: i64,
    /// Failed logins per account per window before 429 (0: no limit).
    pub login_failures_per_account: u32,
    /// Login attempts per client address per window before 429 (0: none).
    pub login_attempts_per_address: u32,
    pub login_window_s: u64,
    /// Signups per client address per `signup_window_s` before 429 (0: no
    /// limit). Each signup costs a password hash and a stored account; a
    /// household or an office behind one address signs up a handful.
    pub signup_attempts_per_address: u32,
    pub signup_window_s: u64,
    /// REST requests one client address may make per second, sustained
    /// ([`throttle`]; 429 with `Retry-After` beyond; 0: no limit). Clients
    /// behind one NAT share it.
    pub requests_per_address_per_s: u32,
    /// REST requests one address may make at once from a full bucket.
    pub request_burst_per_address: u32,
    /// REST requests one account (the access token's subject) may make per
    /// second, sustained; admins are not limited (0: no limit). An app
    /// makes a request or two a second at its busiest.
    pub requests_per_account_per_s: u32,
    /// REST requests one account may make at once from a full bucket.
    pub request_burst_per_account: u32,
    /// Networks the address limit does not apply to (`10.0.0.0/8`; one
    /// address is `10.1.2.3/32` or `::1/128`): loopback by default, where
    /// a reverse proxy on the same host or the load generator connects
    /// from. An IPv4 client on an IPv6 socket is matched as IPv4.
    pub rate_limit_exempt: Vec<ipnet::IpNet>,
    /// How long after writing it a customer may edit a review, seconds.
    pub review_edit_window_s: u64,
    /// A paid order the restaurant has not accepted this long after its
    /// payment is rejected and refunded by the system (`system:orders`),
    /// seconds. 0: never (orders wait for the restaurant however long).
    pub auto_reject_after_s: u64,
    /// How often overdue paid orders are looked for, ms: how late past
    /// its deadline an order may be rejected.
    pub auto_reject_sweep_ms: u64,
    /// Reports: a delivery is on time when it arrives at most this long
    /// after the order was placed, seconds (orders carry no promised
    /// time; 45 minutes is the usual promise of a food delivery).
    pub report_on_time_s: u64,
    /// The console: an order searching for a courier this long is an
    /// alert, seconds, even before the matcher raises it as unassigned
    /// (`matcher.unassigned_after_s`): a dispatcher wants to see it
    /// coming.
    pub console_waiting_alert_s: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            refresh_ttl_s: 30 * 24 * 3600,
            body_limit_bytes: 64 * 1024,
            password_memory_kib: 19 * 1024,
            password_passes: 2,
            max_concurrent_hashes: 0,
            payment_attempts: 4,
            payment_timeout_ms: 10_000,
            payment_breaker_failures: 8,
            payment_breaker_open_ms: 30_000,
            payment_backoff_ms: 50,
            refund_retry_rounds: 10,
            refund_retry_backoff_ms: 30_000,
            refund_retry_max_backoff_ms: 30 * 60_000,
            delivery_fee_base_cents: 290,
            delivery_fee_per_km_cents: 100,
            login_failures_per_account: 10,
            login_attempts_per_address: 60,
            login_window_s: 300,
            signup_attempts_per_address: 20,
            signup_window_s: 3600,
            requests_per_address_per_s: 100,
            request_burst_per_address: 400,
            requests_per_account_per_s: 20,
            request_burst_per_account: 200,
            rate_limit_exempt: vec![
                ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
                    std::net::Ipv4Addr::new(127, 0, 0, 0),
                    8,
                )),
                ipnet::IpNet::V6(ipnet::Ipv6Net::new_assert(
                    std::net::Ipv6Addr::LOCALHOST,
                    128,
                )),
            ],
            review_edit_window_s: 7 * 24 * 3600,
            auto_reject_after_s: 600,
            auto_reject_sweep_ms: 5_000,
            report_on_time_s: 45 * 60,
            console_waiting_alert_s: 120,
        }
    }
}

impl Config {
    /// [`Config::max_concurrent_hashes`], with 0 resolved to the number of
    /// cores (1 if unknown).
    pub fn hash_concurrency(&self) -> usize {
        match self.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The password hasher these settings describe.
    pub fn hasher(&self) -> Result<auth::password::Hasher, auth::password::HashError> {
        auth::password::Hasher::new(self.password_memory_kib, self.password_passes)
    }

    /// The payments saga's settings among these.
    pub fn payments(&self) -> payments::Config {
        payments::Config {
            attempts: self.payment_attempts,
            backoff_ms: self.payment_backoff_ms,
            refund_retry_rounds: self.refund_retry_rounds,
            refund_retry_backoff_ms: self.refund_retry_backoff_ms,
            refund_retry_max_backoff_ms: self.refund_retry_max_backoff_ms,
        }
    }

    /// The payment circuit breaker's settings among these.
    pub fn breaker(&self) -> payments::BreakerConfig {
        payments::BreakerConfig {
            call_timeout_ms: self.payment_timeout_ms,
            failures: self.payment_breaker_failures,
            open_ms: self.payment_breaker_open_ms,
        }
    }

    /// The delivery fee these settings describe.
    pub fn delivery_fee(&self) -> commerce::usecase::place::DeliveryFee {
        commerce::usecase::place::DeliveryFee {
            base_cents: self.delivery_fee_base_cents,
            per_km_cents: self.delivery_fee_per_km_cents,
        }
    }
}

/// Everything a handler needs. Cheap to clone (handles and `Arc`s).
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: engine::Handle,
    pub matcher: matcher::Matcher,
    pub tokens: auth::Tokens,
    pub hasher: auth::password::Hasher,
    pub config: Config,
    /// The payment gateway behind [`AppState::payment_breaker`].
    pub gateway: Arc<dyn payments::PaymentGateway>,
    /// The circuit breaker and timeout in front of the gateway (the same
    /// object as `gateway`), for readiness and tests to read its state.
    pub payment_breaker: Arc<payments::Breaker>,
    pub catalog: search::SharedCatalog,
    /// Cancelled when the app stops: background work (refund retry timers)
    /// ends with it instead of keeping the state and its pool alive and
    /// sending rounds for an app that is gone ([`AppState::with_shutdown`]).
    pub shutdown: CancellationToken,
    /// The app's injected wall clock: handlers read it once per request
    /// and pass `now_ms` down; tests hand in a `clock::ManualClock`.
    pub clock: Arc<dyn clock::Clock>,
    /// Makes the ids of new rows (UUIDv7 from [`AppState::clock`]).
    pub ids: Arc<clock::Ids>,
    /// Webhook endpoints and their consumers on the event stream; `None`
    /// where no stream runs (tests of other routes): the webhook routes
    /// then answer 503.
    pub webhooks: Option<hooks::Webhooks>,
    /// Customer ETAs (the matcher's, on its roads: `Matcher::etas`); the
    /// binary hands the same source to the WebSocket gateway, so both
    /// surfaces agree and share its cache.
    pub etas: Arc<dyn engine::eta::EtaSource>,
    /// Where stored notifications go live (the binary's gateway and
    /// ingest); `None`: stored only ([`AppState::with_push`]).
    pub push: Option<Arc<dyn consumers::notify::Push>>,
    /// The outside channels' providers (the simulated one, failing
    /// nothing, unless [`AppState::with_senders`] says otherwise).
    pub senders: channels::Senders,
    /// Drivers' recent paths (tracks, and the routes delivered orders
    /// keep); fed by [`breadcrumbs::Breadcrumbs::run`], which the binary
    /// spawns ([`AppState::with_breadcrumbs`]; empty otherwise).
    pub breadcrumbs: Arc<breadcrumbs::Breadcrumbs>,
    /// Clears and replays the reports projection; `None` where no stream
    /// runs (the rebuild route then answers 503).
    pub reports: Option<consumers::reports::Rebuild>,
    /// In a cluster: forwards a driver's answer to the node whose matcher
    /// made the offer ([`AppState::with_answers`]); `None` on one node.
    pub answers: Option<Arc<dyn answers::AnswerRouting>>,
    /// In a cluster: holds the regions a `nearby` needs before it is
    /// answered ([`AppState::with_regions_on_demand`]); `None` on one node.
    pub regions: Option<Arc<dyn regions::RegionsOnDemand>>,
    /// The request rate limits of the REST routes ([`throttle`]).
    pub throttle: Arc<throttle::Throttle>,
    /// Bounds concurrent password hashing ([`Config::max_concurrent_hashes`]).
    hashing: Arc<Semaphore>,
    login_limits: Arc<LoginLimits>,
}

/// Failed logins per account, attempts per client address; signups per
/// client address.
struct LoginLimits {
    per_account: limiter::Limit,
    per_address: limiter::Limit,
    signups_per_address: limiter::Limit,
}

impl LoginLimits {
    fn new(config: &Config) -> Self {
        Self {
            per_account: limiter::Limit::new(
                "login:account",
                config.login_failures_per_account,
                config.login_window_s,
            ),
            per_address: limiter::Limit::new(
                "login:address",
                config.login_attempts_per_address,
                config.login_window_s,
            ),
            signups_per_address: limiter::Limit::new(
                "signup:address",
                config.signup_attempts_per_address,
                config.signup_window_s,
            ),
        }
    }

    fn shared(self, shared: &Arc<dyn limiter::SharedWindows>) -> Self {
        Self {
            per_account: self.per_account.shared(shared.clone()),
            per_address: self.per_address.shared(shared.clone()),
            signups_per_address: self.signups_per_address.shared(shared.clone()),
        }
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        engine: engine::Handle,
        matcher: matcher::Matcher,
        tokens: auth::Tokens,
        hasher: auth::password::Hasher,
        config: Config,
        clock: Arc<dyn clock::Clock>,
    ) -> Self {
        // The simulated gateway keeps its ledger in the app's database
        // (tables of its own), so it remembers charges across restarts.
        let simulated: Arc<dyn payments::PaymentGateway> = Arc::new(
            payments::SimulatedGateway::new(store.clone(), clock.clone()),
        );
        let payment_breaker = Arc::new(payments::Breaker::new(
            simulated,
            config.breaker(),
            clock.clone(),
        ));
        let gateway: Arc<dyn payments::PaymentGateway> = payment_breaker.clone();
        let ids = Arc::new(clock::Ids::new(clock.clone()));
        let hashing = Arc::new(Semaphore::new(config.hash_concurrency()));
        let login_limits = Arc::new(LoginLimits::new(&config));
        let throttle = Arc::new(throttle::Throttle::new(
            &config,
            tokens.clone(),
            clock.clone(),
        ));
        let etas: Arc<dyn engine::eta::EtaSource> = matcher.etas();
        Self {
            etas,
            store,
            engine,
            matcher,
            tokens,
            hasher,
            config,
            gateway,
            payment_breaker,
            catalog: search::SharedCatalog::default(),
            // Never cancelled unless the owner passes its own.
            shutdown: CancellationToken::new(),
            clock,
            ids,
            webhooks: None,
            push: None,
            senders: channels::Senders::default(),
            breadcrumbs: Arc::new(breadcrumbs::Breadcrumbs::new(breadcrumbs::Config::default())),
            reports: None,
            answers: None,
            regions: None,
            throttle,
            hashing,
            login_limits,
        }
    }

    /// The same state forwarding drivers' answers to the node that made
    /// the offer (a cluster; see [`answers`]).
    pub fn with_answers(mut self, answers: Arc<dyn answers::AnswerRouting>) -> Self {
        self.answers = Some(answers);
        self
    }

    /// The same state holding the regions each `nearby` needs (a node of a
    /// cluster; see [`regions`]).
    pub fn with_regions_on_demand(mut self, regions: Arc<dyn regions::RegionsOnDemand>) -> Self {
        self.regions = Some(regions);
        self
    }

    /// The same state with login and signup limits counted in windows
    /// every node shares (a cluster; see [`limiter`]).
    pub fn with_shared_limits(mut self, shared: Arc<dyn limiter::SharedWindows>) -> Self {
        self.login_limits = Arc::new(LoginLimits::new(&self.config).shared(&shared));
        self
    }

    /// The same state with another payment gateway (the simulated one is
    /// the default).
    pub fn with_gateway(mut self, gateway: Arc<dyn payments::PaymentGateway>) -> Self {
        self.payment_breaker = Arc::new(payments::Breaker::new(
            gateway,
            self.config.breaker(),
            self.clock.clone(),
        ));
        self.gateway = self.payment_breaker.clone();
        self
    }

    /// The same state stopped by `shutdown` (the app's token): background
    /// payment work ends when it is cancelled.
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The same state whose reports can be rebuilt (over the app's
    /// running consumers).
    pub fn with_reports(mut self, rebuild: consumers::reports::Rebuild) -> Self {
        self.reports = Some(rebuild);
        self
    }

    /// The same state with webhooks (the app's, over its event stream).
    pub fn with_webhooks(mut self, webhooks: hooks::Webhooks) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    /// The same state whose notifications go live through `push`. Set it
    /// before building the consumers ([`consumers::all`]).
    pub fn with_push(mut self, push: Arc<dyn consumers::notify::Push>) -> Self {
        self.push = Some(push);
        self
    }

    /// The same state whose outside channels go through `senders`. Set
    /// it before building the channel consumers.
    pub fn with_senders(mut self, senders: channels::Senders) -> Self {
        self.senders = senders;
        self
    }

    /// The same state keeping drivers' paths in `breadcrumbs` (the app's,
    /// which its task feeds). Set it before building the consumers
    /// ([`consumers::all`]): delivered orders' routes are read from it.
    pub fn with_breadcrumbs(mut self, breadcrumbs: Arc<breadcrumbs::Breadcrumbs>) -> Self {
        self.breadcrumbs = breadcrumbs;
        self
    }

    /// The live side (engine and matcher) as the use-cases see it.
    /// The catalog and the matcher, as restaurant use-cases tell them of
    /// a change.
    pub fn restaurant_side(&self) -> search::RestaurantSide<'_> {
        search::RestaurantSide {
            catalog: &self.catalog,
            matcher: &self.matcher,
        }
    }

    pub fn live(&self) -> live::Live {
        live::Live {
            engine: self.engine.clone(),
            matcher: self.matcher.clone(),
        }
    }

    /// The payments saga over this state's store, gateway and live side.
    pub fn saga(&self) -> payments::Saga {
        payments::Saga {
            store: self.store.clone(),
            gateway: self.gateway.clone(),
            live: Arc::new(self.live()),
            config: self.config.payments(),
            shutdown: self.shutdown.clone(),
            clock: self.clock.clone(),
            ids: self.ids.clone(),
        }
    }
}

impl FromRef<AppState> for auth::Tokens {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}

/// Every REST route under `/v1` and the OpenAPI document with its UI
/// ([`openapi::router`]), with our body limit and a JSON 405. No
/// catch-all fallback, so the binary can merge this with the other edges'
/// routers and install [`not_found_fallback`] once on the result.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit_bytes;
    // The rate limits guard the REST routes, not the document and its UI.
    let rest = routes::router().layer(axum::middleware::from_fn_with_state(
        state.throttle.clone(),
        throttle::limit_requests,
    ));
    Router::new()
        .merge(rest)
        .merge(openapi::router())
        .method_not_allowed_fallback(method_not_allowed_fallback)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// The answers to offers alone (`POST /v1/offers/{id}/accept|decline`),
/// for a matcher node without the `api` role in a cluster: api nodes
/// forward drivers' answers to the node whose matcher made the offer.
pub fn offers_router(state: AppState) -> Router {
    let body_limit = state.config.body_limit_bytes;
    let answers = routes::offers_router().layer(axum::middleware::from_fn_with_state(
        state.throttle.clone(),
        throttle::limit_requests,
    ));
    Router::new()
        .merge(answers)
        .method_not_allowed_fallback(method_not_allowed_fallback)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Opens the store as [`connect`] does, with its [`events::EventLog`]
/// (`Store::event_log`: the same pool, SQLite's write gate, the appenders'
/// wake-up), which the event stream and the webhooks use.
pub async fn connect_with_log(
    database_url: &str,
) -> Result<(Arc<dyn Store>, events::EventLog), StoreError> {
    let store = connect(database_url).await?;
    let log = store.event_log();
    Ok((store, log))
}

/// Rebuilds the live state from the store at start-up: every order that is
/// not closed goes back on the engine's order board (bound to its driver),
/// and those still without a driver go back to the matcher; the search
/// catalog is loaded; bans and recent logouts are loaded into the token checker; payments a
/// crash left pending are resumed. Call before serving.
pub async fn restore_live_state(state: &AppState) -> Result<Restored, StoreError> {
    restore_token_checks(state).await?;
    search::load(state).await?;
    let mut restored = live::restore(state, state.clock.now_ms()).await?;
    restored.payments_resumed = payments::resume_pending(&state.saga()).await?;
    Ok(restored)
}

/// Loads bans and recent logouts (whose cutoffs may still refuse a live
/// token) into the token checker.
async fn restore_token_checks(state: &AppState) -> Result<(), StoreError> {
    for user in state.store.banned_users().await? {
        state.tokens.ban(user);
    }
    let ttl_ms = i64::try_from(state.tokens.access_ttl_s().saturating_mul(1000)).unwrap_or(0);
    // A minute of margin for clock skew between nodes.
    let oldest_live = state.clock.now_ms().saturating_sub(ttl_ms + 60_000);
    for (user, cutoff) in state.store.access_cutoffs(oldest_live).await? {
        state.tokens.refuse_issued_before(user, cutoff);
    }
    Ok(())
}

/// What a node without the API and the matcher restores: bans, the
/// catalog and the order board, but no dispatches and no payments (the
/// nodes that run those resume them).
pub async fn restore_live_view(state: &AppState) -> Result<Restored, StoreError> {
    restore_token_checks(state).await?;
    search::load(state).await?;
    live::restore_with(state, state.clock.now_ms(), false).await
}
