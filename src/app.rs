//! Builds every subsystem, wires them together and runs them until shutdown.
//! This is the whole topology in one place; no business logic lives here.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::roles::{Role, Roles};
use crate::{http_server, notify, ops, regions, telemetry};

pub struct App {
    http_listener: TcpListener,
    http_addr: SocketAddr,
    /// The HTTP listener's limits (header-read timeout, connection caps).
    http_config: http_server::Config,
    /// With `[tls]`: the HTTP listener serves HTTPS.
    http_tls: Option<tokio_rustls::TlsAcceptor>,
    mqtt_addr: SocketAddr,
    /// Where drivers' MQTT goes, for the start log: the embedded broker's
    /// address, `external …`, or `off`.
    mqtt_shown: String,
    router: axum::Router,
    engine: engine::Handle,
    matcher: matcher::Matcher,
    /// The arrival fences' task; `None` with `matcher.arrival_radius_m = 0`.
    arrivals: Option<matcher::arrivals::Arrivals>,
    gateway: ws_gateway::Gateway,
    ingest: ingest::Ingest,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    grace: Duration,
    admin: AdminStatus,
    /// The event stream: its log, consumers and settings, run with the app.
    events: EventStream,
    /// Drivers' recent paths, fed from the engine's moves while it runs.
    breadcrumbs: Arc<api::breadcrumbs::Breadcrumbs>,
    /// The REST state, for the auto-reject sweep.
    api_state: api::AppState,
    /// Stamps what the breadcrumbs task hears.
    clock: Arc<dyn clock::Clock>,
    /// The parts this node runs.
    roles: Roles,
    /// With Redis: this node's reader of the event stream, for the
    /// consumers every node runs.
    stream_reader: Option<cluster::StreamReader>,
    /// With Redis: drivers' positions by region and driver-bound messages
    /// between nodes.
    positions: Option<cluster::Positions>,
    /// How often silent drivers are marked offline (the ingest sweep's
    /// interval; run here on nodes without ingest that hold other nodes'
    /// drivers).
    presence_sweep_ms: u64,
    /// With Redis: the node's leases and what acts on them.
    cluster: Option<ClusterParts>,
}

/// What a node of a cluster runs beside the subsystems (see
/// `src/leases.rs` and `src/answers.rs`).
struct ClusterParts {
    leases: cluster::Leases,
    /// Opens the once-per-cluster consumers while the relay lease is held.
    relay_gate: tokio::sync::watch::Sender<bool>,
    /// `cluster.region_resolution`.
    region_resolution: engine::cells::CellResolution,
    /// Records the owner of each offer this node's matcher makes (matcher
    /// nodes), with this node's advertised URL.
    offer_owners: Option<(cluster::OfferOwners, String)>,
    /// `matcher.offer_timeout_s`: how long an offer's owner is kept.
    offer_timeout_s: u64,
}

/// What `run_until_stopped` starts for the event stream.
struct EventStream {
    log: events::EventLog,
    /// The in-process consumers and, added while it runs, one per webhook
    /// endpoint.
    consumers: events::Consumers,
    config: events::Config,
    presence: events::PresenceWriter,
    recorder: events::PresenceRecorder,
    /// Stamps the offers the feed records.
    clock: Arc<dyn clock::Clock>,
}

/// What start-up did about the bootstrap admin, for the start log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminStatus {
    /// `admin_email` and `admin_password` are not both set.
    NotConfigured,
    /// Created now, with this email.
    Created(String),
    /// An admin with this email was already there (an earlier start).
    AlreadyExisted(String),
}

/// A listener and the settings that move it, for a bind error.
struct ListenerName {
    protocol: &'static str,
    flag: &'static str,
    variable: &'static str,
    /// Who usually holds the port, said when it is taken.
    usual_holder: &'static str,
}

const HTTP_LISTENER: ListenerName = ListenerName {
    protocol: "HTTP",
    flag: "--http-addr",
    variable: "HEXDASH_HTTP_ADDR",
    usual_holder: "another hexdash or web server",
};

const MQTT_LISTENER: ListenerName = ListenerName {
    protocol: "MQTT",
    flag: "--mqtt-addr",
    variable: "HEXDASH_MQTT_ADDR",
    usual_holder: "another MQTT broker such as Mosquitto",
};

/// One message, no nested causes: what failed, why, and how to move it.
fn bind_error(listener: &ListenerName, addr: SocketAddr, e: &io::Error) -> anyhow::Error {
    let why = match e.kind() {
        io::ErrorKind::AddrInUse => format!(
            "the address is already in use (is {} listening there?)",
            listener.usual_holder
        ),
        _ => e.to_string(),
    };
    anyhow!(
        "cannot listen for {} on {addr}: {why}; choose another address with {} or {}",
        listener.protocol,
        listener.flag,
        listener.variable
    )
}

/// Where a person finds the API documentation of a server listening on
/// `addr` (a wildcard address is shown as the local host).
pub fn docs_url(addr: SocketAddr, tls: bool) -> String {
    let url = local_url(addr, api::openapi::UI_PATH);
    if tls {
        url.replacen("http://", "https://", 1)
    } else {
        url
    }
}

/// The URL of `path` on a server listening on `addr`, as a person on the
/// same machine opens it (a wildcard address is shown as the local host).
pub fn local_url(addr: SocketAddr, path: &str) -> String {
    let port = addr.port();
    match addr.ip() {
        ip if !ip.is_unspecified() => format!("http://{addr}{path}"),
        IpAddr::V4(_) => format!("http://localhost:{port}{path}"),
        IpAddr::V6(_) => format!("http://[::1]:{port}{path}"),
    }
}

impl App {
    /// Binds the listeners and builds every subsystem; nothing runs until
    /// [`App::run_until_stopped`]. Both listeners are bound before anything
    /// touches the database, so a taken port leaves no trace (no `./data/`).
    /// Fails with one clear message when a port is taken (naming the flag
    /// and variable that move it) or the database cannot be opened.
    pub async fn build(config: Config, clock: Arc<dyn clock::Clock>) -> anyhow::Result<App> {
        // Before any subsystem registers its metric handles: handles taken
        // before a recorder exists stay no-ops forever.
        telemetry::prometheus();
        config
            .roles
            .validate(config.redis_url.is_some())
            .map_err(anyhow::Error::msg)
            .context("invalid roles")?;
        config
            .cluster
            .validate()
            .map_err(anyhow::Error::msg)
            .context("invalid [cluster] settings")?;
        let tls_files = config
            .tls
            .files()
            .map_err(anyhow::Error::msg)
            .context("invalid [tls] settings")?;
        let http_tls = tls_files
            .as_ref()
            .map(crate::tls::acceptor)
            .transpose()
            .map_err(anyhow::Error::msg)
            .context("cannot load the TLS certificate ([tls])")?;
        let policy = Arc::new(
            crate::http_policy::Policy::new(&config.http, http_tls.is_some())
                .context("invalid [http] settings")?,
        );
        let external_broker = config.ingest.broker.mode == ingest::BrokerMode::External;
        if external_broker {
            config
                .ingest
                .broker
                .validate()
                .map_err(anyhow::Error::msg)
                .context("invalid [ingest.broker] settings")?;
        }
        let node = crate::node::Node::new(&config)?;
        let shutdown = CancellationToken::new();
        let http_listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|e| bind_error(&HTTP_LISTENER, config.http_addr, &e))?;
        let http_addr = http_listener.local_addr()?;
        // rumqttd binds its listener itself, by address, when the broker
        // starts, and the broker needs the restored state (bans) first. This
        // socket holds the port meanwhile (and fixes a port 0 to a real one);
        // it is closed just before the broker binds the same address.
        // Without the ingest role, or with an external broker, there is no
        // broker here and nothing to hold.
        let mqtt_reservation = if config.roles.has(Role::Ingest) && !external_broker {
            Some(
                std::net::TcpListener::bind(config.mqtt_addr)
                    .map_err(|e| bind_error(&MQTT_LISTENER, config.mqtt_addr, &e))?,
            )
        } else {
            None
        };
        let mqtt_addr = match &mqtt_reservation {
            Some(reservation) => reservation.local_addr()?,
            None => config.mqtt_addr,
        };

        let engine = engine::Handle::new(config.engine.clone());
        let tokens = auth::Tokens::new(jwt_secret(&config).as_bytes(), config.access_token_ttl_s)
            .with_clock(clock.clone());

        prepare_sqlite_dir(&config.database_url)?;
        let (store, event_log) = api::connect_with_log(&config.database_url)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database at {}",
                    config.redacted().database_url
                )
            })?;
        // What the in-memory state loaded below reflects at least: the
        // node's stream reader starts after it.
        let loaded_head = event_log
            .head()
            .await
            .context("cannot read the event log's head")?;
        let router = load_roads(&config.matcher)?;
        let matcher = matcher::Matcher::with_router(engine.clone(), config.matcher.clone(), router)
            .with_clock(clock.clone());
        // In a cluster: one node at a time dispatches a region (a lease
        // with a fencing token from the database), and answers to offers
        // are forwarded to the node that made them.
        let leases = node.redis.as_ref().map(|redis| {
            cluster::Leases::new(
                redis.clone(),
                &config.cluster.key_prefix,
                &node.id,
                cluster::LeaseConfig {
                    lease_ms: config.cluster.lease_ms,
                    renew_ms: config.cluster.lease_renew_ms,
                },
                Arc::new(crate::leases::StoreFencing {
                    store: store.clone(),
                    clock: clock.clone(),
                }),
            )
        });
        let matcher = match &leases {
            Some(leases) => matcher.with_gate(Arc::new(crate::leases::RegionGate {
                leases: leases.clone(),
                resolution: config.cluster.region_resolution(),
                takes_regions: config.roles.has(Role::Matcher),
            })),
            None => matcher,
        };
        let advertised = crate::answers::advertise_url(&config.cluster, http_addr);
        let arrivals =
            matcher::arrivals::Arrivals::new(engine.clone(), config.matcher.arrival_radius_m);
        let hasher = config
            .api
            .hasher()
            .context("invalid password hashing settings")?;
        config
            .breadcrumbs
            .validate()
            .context("invalid [breadcrumbs] settings")?;
        let breadcrumbs = Arc::new(api::breadcrumbs::Breadcrumbs::new(
            config.breadcrumbs.clone(),
        ));
        // The event stream's settings, checked before anything uses them.
        let stream_config = config.events.stream();
        stream_config
            .validate()
            .context("invalid [events] settings")?;
        let api_state = api::AppState::new(
            store.clone(),
            engine.clone(),
            matcher.clone(),
            tokens.clone(),
            hasher,
            config.api.clone(),
            clock.clone(),
        )
        .with_shutdown(shutdown.clone())
        .with_breadcrumbs(breadcrumbs.clone());
        // In a cluster: answers reach the offer's node, and login and
        // signup limits count every node's attempts.
        let api_state = match &node.redis {
            Some(redis) => api_state
                .with_answers(Arc::new(crate::answers::Forwarder::new(
                    cluster::OfferOwners::new(redis.clone(), &config.cluster.key_prefix),
                    advertised.clone(),
                )))
                .with_shared_limits(Arc::new(crate::limits::RedisWindows(
                    cluster::Windows::new(redis.clone(), &config.cluster.key_prefix),
                ))),
            None => api_state,
        };
        // The same ETA source as the api's, so REST and the socket agree;
        // `me` subscriptions replay the stored notifications.
        let gateway = ws_gateway::Gateway::with_etas(
            config.gateway.clone(),
            engine.clone(),
            tokens.clone(),
            api_state.etas.clone(),
        )
        .with_records(Arc::new(notify::StoredRecords {
            store: store.clone(),
        }));
        let mut ingest_config = ingest::Config {
            mqtt_addr,
            mqtt_tls: tls_files.map(|f| ingest::MqttTls {
                cert_file: f.cert,
                key_file: f.key,
            }),
            ..config.ingest.clone()
        };
        // One client id per node at the external broker, stable with
        // `cluster.node_id` (a broker closes the older of two connections
        // with one id).
        ingest_config
            .broker
            .client_id
            .get_or_insert_with(|| format!("hexdash-{}", node.id));
        let ingest =
            ingest::Ingest::new(ingest_config, engine.clone(), tokens.clone(), clock.clone())
                .with_offer_details(Arc::new(notify::StoredOfferDetails {
                    store: store.clone(),
                }));
        // Stored notifications go live on the socket and drivers' channels;
        // the outside channels go through the simulated provider.
        let senders = api::channels::Senders::simulated(config.channels.rules())
            .context("invalid [channels] settings")?;
        // With Redis: this node's pings go out by region, the regions its
        // watchers and matcher need come in (before anything applies a
        // ping: the engine's tap is set here).
        let positions = node.redis.as_ref().map(|redis| {
            cluster::Positions::new(
                redis.clone(),
                &config.cluster,
                &node.id,
                engine.clone(),
                i64::try_from(config.engine.presence_timeout_s.saturating_mul(1000))
                    .unwrap_or(i64::MAX),
                clock.clone(),
                config.roles.has(Role::Matcher),
            )
            .with_deliver(Arc::new(regions::LocalDeliver {
                ingest: ingest.clone(),
                gateway: config.roles.has(Role::Gateway).then(|| gateway.clone()),
            }))
        });
        let api_state = api_state
            .with_push(Arc::new(notify::LivePush {
                gateway: gateway.clone(),
                ingest: ingest.clone(),
                positions: positions.clone(),
            }))
            .with_senders(senders);
        let api_state = match &positions {
            Some(positions) => api_state.with_regions_on_demand(Arc::new(regions::NearbyHolds {
                positions: positions.clone(),
            })),
            None => api_state,
        };
        // The consumers of the event stream (see ARCHITECTURE.md, "Who
        // consumes where"): the per-node ones read the log here on one
        // node, the Redis stream with Redis; the once-per-cluster ones and
        // the Redis publisher run on relay nodes, over the log.
        let relay = config.roles.has(Role::Relay);
        let per_node = api::consumers::per_node(&api_state, config.roles.has(Role::Matcher));
        let mut from_log = Vec::new();
        let stream_reader = match &node.redis {
            Some(redis) => Some(node.stream_reader(redis, per_node, loaded_head, &config)),
            None => {
                from_log.extend(per_node);
                None
            }
        };
        if relay {
            from_log.extend(api::consumers::once_per_cluster(&api_state));
        }
        let consumers =
            events::Consumers::from_list(from_log).context("invalid event consumers")?;
        // In a cluster the once-per-cluster consumers (and the Redis
        // publisher) run on one relay node at a time: the holder of the
        // relay lease.
        let (relay_gate, relay_open) = tokio::sync::watch::channel(false);
        let consumers = match (&leases, relay) {
            (Some(leases), true) => {
                leases.want(crate::leases::RELAY_LEASE);
                consumers.gated(relay_open)
            }
            _ => consumers,
        };
        if let (true, Some(redis)) = (relay, &node.redis) {
            consumers
                .add_with(
                    Arc::new(cluster::StreamPublisher::new(
                        redis.clone(),
                        config.cluster.events_key(),
                        config.cluster.stream_max_len,
                    )),
                    crate::node::publisher_config(&stream_config),
                )
                .await
                .context("cannot start the Redis stream publisher")?;
        }
        // One consumer per outside channel that runs, with the channels'
        // tries; added, so a first start begins at the stream's head (no
        // messages about what happened before).
        let channel_stream = config.channels.stream_config(&stream_config);
        for channel in api::channels::Channel::ALL {
            if relay && config.channels.runs(channel) {
                consumers
                    .add_with(
                        Arc::new(api::consumers::channels::ChannelDelivery::new(
                            &api_state, channel,
                        )),
                        channel_stream.clone(),
                    )
                    .await
                    .context("invalid [channels] settings")?;
            }
        }
        let webhooks = api::hooks::Webhooks::new(
            event_log.clone(),
            consumers.clone(),
            &config.webhooks,
            &stream_config,
            {
                let clock = clock.clone();
                Arc::new(move || clock.now_ms())
            },
        )
        .context("cannot set up webhook deliveries")?;
        // Stored endpoints are delivered to from relay nodes; an endpoint
        // registered while running starts on the node that registered it.
        if relay {
            let hooks = webhooks
                .start_stored()
                .await
                .context("cannot load webhook endpoints")?;
            tracing::info!(webhooks = hooks, "webhook endpoints loaded");
        }
        let api_state =
            api_state
                .with_webhooks(webhooks)
                .with_reports(api::consumers::reports::Rebuild::new(
                    store.clone(),
                    event_log.clone(),
                    consumers.clone(),
                ));
        let admin = match (&config.admin_email, &config.admin_password) {
            (Some(email), Some(password)) => {
                match api::bootstrap_admin(&api_state, email, password)
                    .await
                    .context("cannot create the bootstrap admin")?
                {
                    api::AdminBootstrap::Created(_) => AdminStatus::Created(email.clone()),
                    api::AdminBootstrap::AlreadyExists(_) => {
                        AdminStatus::AlreadyExisted(email.clone())
                    }
                }
            }
            _ => AdminStatus::NotConfigured,
        };
        // Dispatches and payments resume where the API and the matcher run.
        let restored = if config.roles.has(Role::Matcher) {
            api::restore_live_state(&api_state).await
        } else {
            api::restore_live_view(&api_state).await
        };
        let restored = restored.context("cannot restore live orders from the database")?;
        tracing::info!(
            tracked = restored.tracked,
            dispatched = restored.dispatched,
            preparations = restored.preparations,
            "restored live orders"
        );

        // The event stream: relay and consumers over the store's event
        // tables; the engine's presence changes and offers feed it.
        let (recorder, presence) = events::presence(event_log.clone(), config.events.presence());
        let event_stream = EventStream {
            log: event_log,
            consumers,
            config: stream_config,
            presence,
            recorder,
            clock: clock.clone(),
        };

        let broker = match mqtt_reservation {
            Some(reservation) => {
                drop(reservation);
                Some(
                    ingest
                        .start_broker(shutdown.clone())
                        .await
                        .map_err(|e| match e {
                            // Another process took the port in the moment between.
                            ingest::Error::AddrInUse { addr } => bind_error(
                                &MQTT_LISTENER,
                                addr,
                                &io::Error::from(io::ErrorKind::AddrInUse),
                            ),
                            ingest::Error::Bind { addr, source } => {
                                bind_error(&MQTT_LISTENER, addr, &source)
                            }
                            other => anyhow!("cannot start the MQTT broker: {other}"),
                        })?,
                )
            }
            // Every node is a client of an external broker: offers and
            // notifications go out from whichever node makes them; only
            // ingest nodes take a share of the pings.
            None if external_broker => Some(
                ingest
                    .connect_broker(config.roles.has(Role::Ingest), shutdown.clone())
                    .await
                    .map_err(|e| anyhow!("cannot connect to the external MQTT broker: {e}"))?,
            ),
            None => None,
        };
        let mqtt_addr = broker
            .as_ref()
            .and_then(|b| b.local_addr())
            .unwrap_or(mqtt_addr);
        let mqtt_shown = broker
            .as_ref()
            .map_or_else(|| "off".to_owned(), |b| b.describe());

        let roles = config.roles.clone();
        let mut router = axum::Router::new();
        if roles.has(Role::Api) {
            // The console is a client of the REST API: served where it is.
            router = router
                .merge(api::router(api_state.clone()))
                .merge(web_console::router());
        } else if roles.has(Role::Matcher) {
            // A matcher node of a cluster without the REST API still takes
            // the answers to its offers, forwarded by the api nodes.
            router = router.merge(api::offers_router(api_state.clone()));
        }
        if roles.has(Role::Ingest) {
            router = router.merge(ingest.router());
        }
        if roles.has(Role::Gateway) {
            router = router.merge(gateway.router());
        }
        let router = router
            .merge(ops::router(ops::OpsState {
                engine: engine.clone(),
                store,
                broker,
                gateway: gateway.clone(),
                redis: node.redis.clone(),
                node: node.describe(&roles),
                leases: leases.clone(),
                payment_breaker: roles
                    .has(Role::Api)
                    .then(|| api_state.payment_breaker.clone()),
            }))
            .fallback(api::not_found_fallback)
            // Security headers and CORS on every answer (preflights are
            // answered before routing, which has no OPTIONS routes).
            .layer(axum::middleware::from_fn_with_state(
                policy,
                crate::http_policy::apply,
            ))
            // Outermost, so it sees every answer (the fallback's 404s and
            // the body limit's 413s too) with its matched route.
            .layer(axum::middleware::from_fn(telemetry::http::track));

        let cluster = leases.map(|leases| ClusterParts {
            leases,
            relay_gate,
            region_resolution: config.cluster.region_resolution(),
            offer_owners: match (&node.redis, roles.has(Role::Matcher)) {
                (Some(redis), true) => Some((
                    cluster::OfferOwners::new(redis.clone(), &config.cluster.key_prefix),
                    advertised,
                )),
                _ => None,
            },
            offer_timeout_s: config.matcher.offer_timeout_s,
        });

        Ok(App {
            http_listener,
            http_addr,
            http_config: config.http.clone(),
            http_tls,
            mqtt_addr,
            mqtt_shown,
            router,
            engine,
            matcher,
            arrivals,
            gateway,
            ingest,
            shutdown,
            tracker: TaskTracker::new(),
            grace: Duration::from_millis(config.shutdown_grace_ms),
            admin,
            events: event_stream,
            breadcrumbs,
            api_state,
            clock,
            roles,
            stream_reader,
            positions,
            presence_sweep_ms: config.ingest.presence_sweep_ms,
            cluster,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The MQTT broker's address; the configured one, unbound, on a node
    /// without the ingest role or with an external broker.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// What start-up did about the bootstrap admin.
    pub fn admin(&self) -> &AdminStatus {
        &self.admin
    }

    pub fn engine(&self) -> &engine::Handle {
        &self.engine
    }

    /// Cancelling this token stops the app gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs every subsystem until the shutdown token is cancelled or one of
    /// them fails; then stops accepting, lets the gateway send Close frames,
    /// and waits for everything under the grace deadline. Logs one line when
    /// it starts (addresses, docs, bootstrap admin) and one when it stopped.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let (admin, admin_email) = match &self.admin {
            AdminStatus::NotConfigured => ("not configured", None),
            AdminStatus::Created(email) => ("created", Some(email.as_str())),
            AdminStatus::AlreadyExisted(email) => ("already existed", Some(email.as_str())),
        };
        let tls = self.http_tls.is_some();
        tracing::info!(
            http = %self.http_addr,
            mqtt = %self.mqtt_shown,
            tls,
            roles = %self.roles,
            docs = %docs_url(self.http_addr, tls),
            admin,
            admin_email,
            "hexdash started"
        );
        let App {
            http_listener,
            http_config,
            http_tls,
            router,
            matcher,
            arrivals,
            gateway,
            ingest,
            shutdown,
            tracker,
            grace,
            events: event_stream,
            engine,
            breadcrumbs,
            api_state,
            clock,
            roles,
            stream_reader,
            positions,
            presence_sweep_ms,
            cluster,
            ..
        } = self;
        // Before the matcher and ingest start, so no offer or presence
        // change is made before the feed listens.
        tracker.spawn(api::consumers::feed::run(
            engine.clone(),
            event_stream.recorder,
            event_stream.clock,
            shutdown.clone(),
        ));
        tracker.spawn(event_stream.presence.run(shutdown.clone()));
        {
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                if let Err(e) = events::run_with(
                    event_stream.log,
                    event_stream.consumers,
                    event_stream.config,
                    shutdown.clone(),
                )
                .await
                {
                    tracing::error!(error = %e, "the event stream failed; stopping");
                    shutdown.cancel();
                }
            });
        }
        if let Some(reader) = stream_reader {
            tracker.spawn(reader.run(shutdown.clone()));
        }
        // Before the matcher: its offers to drivers on other nodes are
        // routed from the first.
        if let Some(positions) = positions {
            let interest = Arc::new(regions::WatchedRegions {
                gateway: roles.has(Role::Gateway).then(|| gateway.clone()),
                engine: engine.clone(),
            });
            tracker.spawn(positions.run(interest, roles.has(Role::Matcher), shutdown.clone()));
            // Other nodes' drivers go offline here as they do there.
            if !roles.has(Role::Ingest) {
                tracker.spawn(ingest::presence::run(
                    engine.clone(),
                    clock.clone(),
                    presence_sweep_ms,
                    shutdown.clone(),
                ));
            }
        }
        if let Some(parts) = cluster {
            // Subscribed before the matcher runs: no offer goes unrecorded.
            if let Some((owners, me)) = parts.offer_owners {
                tracker.spawn(crate::answers::record_offer_owners(
                    engine.subscribe_changes(),
                    owners,
                    me,
                    parts.offer_timeout_s,
                    shutdown.clone(),
                ));
            }
            let listener = Arc::new(crate::leases::NodeListener {
                api_state: api_state.clone(),
                resolution: parts.region_resolution,
                relay_gate: parts.relay_gate,
                tracker: tracker.clone(),
            });
            tracker.spawn(parts.leases.run(listener, shutdown.clone()));
        }
        if roles.has(Role::Matcher) {
            tracker.spawn(matcher.run(shutdown.clone()));
        }
        // Subscribes to the moves when called: before ingest applies any
        // ping.
        tracker.spawn(breadcrumbs.run(engine.clone(), clock, shutdown.clone()));
        // Its first sweep rejects what went overdue while we were down.
        if roles.has(Role::Api) {
            tracker.spawn(api::stuck::run(api_state, shutdown.clone()));
        }
        // Subscribes and fences the orders restored with a driver when
        // called: before ingest applies any ping.
        if let (true, Some(arrivals)) = (roles.has(Role::Matcher), arrivals) {
            tracker.spawn(arrivals.run(shutdown.clone()));
        }
        if roles.has(Role::Gateway) {
            tracker.spawn(gateway.run(shutdown.clone()));
        }
        if roles.has(Role::Ingest) {
            tracker.spawn(ingest.run(shutdown.clone()));
        }
        tracker.spawn(telemetry::run_upkeep(shutdown.clone()));
        tracker.spawn(http_server::serve(
            http_listener,
            router,
            http_config,
            http_tls,
            shutdown.clone(),
        ));
        tracker.close();
        shutdown.cancelled().await;
        tracing::info!("shutting down");
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "subsystems did not stop within the grace period"
            );
        }
        tracing::info!(uptime_s = started.elapsed().as_secs(), "hexdash stopped");
        Ok(())
    }
}

/// The road graph named by `matcher.roads`, indexed and contracted (about
/// a second for a city, once at start), or `None` when unset. A path that
/// does not load stops the start: an operator who asked for road times
/// should not silently get crow-fly.
fn load_roads(config: &matcher::Config) -> anyhow::Result<Option<Arc<routing::Router>>> {
    let Some(path) = &config.roads else {
        return Ok(None);
    };
    let graph = routing::load::read_graph(path)
        .with_context(|| format!("cannot load matcher.roads from {}", path.display()))?;
    tracing::info!(
        path = %path.display(),
        nodes = graph.node_count(),
        "road graph loaded for the matcher's travel times"
    );
    Ok(Some(Arc::new(routing::Router::new(
        graph,
        routing::Config::default(),
    ))))
}

fn jwt_secret(config: &Config) -> String {
    match &config.jwt_secret {
        Some(s) if !s.is_empty() => s.clone(),
        _ => {
            tracing::warn!(
                "HEXDASH_JWT_SECRET is not set: using a random secret; tokens will not survive a restart"
            );
            // Two random v4 uuids are 244 random bits: no clock reading is
            // needed to make the secret unguessable.
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
        }
    }
}

/// SQLite creates the file but not its folder (`./data/` by default).
fn prepare_sqlite_dir(database_url: &str) -> anyhow::Result<()> {
    let Some(path) = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
    else {
        return Ok(());
    };
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(());
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the database folder {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_url_shows_a_wildcard_address_as_the_local_host() {
        let check = |addr: &str, expected: &str| {
            assert_eq!(docs_url(addr.parse().unwrap(), false), expected, "{addr}");
        };
        check("0.0.0.0:8080", "http://localhost:8080/docs");
        check("[::]:8080", "http://[::1]:8080/docs");
        check("127.0.0.1:9000", "http://127.0.0.1:9000/docs");
        check("[::1]:9000", "http://[::1]:9000/docs");
        assert_eq!(
            docs_url("0.0.0.0:8443".parse().unwrap(), true),
            "https://localhost:8443/docs"
        );
    }

    #[test]
    fn a_bind_error_names_the_flag_and_the_variable_once() {
        let addr = "0.0.0.0:1883".parse().unwrap();
        let taken = bind_error(
            &MQTT_LISTENER,
            addr,
            &io::Error::from(io::ErrorKind::AddrInUse),
        );
        assert_eq!(
            format!("{taken:#}"),
            "cannot listen for MQTT on 0.0.0.0:1883: the address is already in use \
             (is another MQTT broker such as Mosquitto listening there?); \
             choose another address with --mqtt-addr or HEXDASH_MQTT_ADDR"
        );
        let denied = bind_error(
            &HTTP_LISTENER,
            "0.0.0.0:80".parse().unwrap(),
            &io::Error::from(io::ErrorKind::PermissionDenied),
        );
        let message = format!("{denied:#}");
        assert!(
            message.starts_with("cannot listen for HTTP on 0.0.0.0:80: permission denied"),
            "{message}"
        );
        assert!(
            message.ends_with("--http-addr or HEXDASH_HTTP_ADDR"),
            "{message}"
        );
    }
}
