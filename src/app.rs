//! Builds every subsystem, wires them together and runs them until shutdown.
//! This is the whole topology in one place; no business logic lives here.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::{ops, telemetry};

pub struct App {
    http_listener: TcpListener,
    http_addr: SocketAddr,
    mqtt_addr: SocketAddr,
    router: axum::Router,
    engine: engine::Handle,
    matcher: matcher::Matcher,
    gateway: ws_gateway::Gateway,
    ingest: ingest::Ingest,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    grace: Duration,
}

impl App {
    /// Binds the listeners and builds every subsystem; nothing runs until
    /// [`App::run_until_stopped`]. Fails with a clear message when a port is
    /// taken or the database cannot be opened.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        // Before any subsystem registers its metric handles: handles taken
        // before a recorder exists stay no-ops forever.
        telemetry::prometheus();
        let shutdown = CancellationToken::new();
        let http_listener = TcpListener::bind(config.http_addr).await.with_context(|| {
            format!(
                "cannot listen for HTTP on {}: is another process using it?",
                config.http_addr
            )
        })?;
        let http_addr = http_listener.local_addr()?;

        let engine = engine::Handle::new(config.engine.clone());
        let tokens = auth::Tokens::new(jwt_secret(&config).as_bytes(), config.access_token_ttl_s);

        prepare_sqlite_dir(&config.database_url)?;
        let store = api::connect(&config.database_url).await.with_context(|| {
            format!(
                "cannot open the database at {}",
                config.redacted().database_url
            )
        })?;
        let matcher = matcher::Matcher::new(engine.clone(), config.matcher.clone());
        let hasher = config
            .api
            .hasher()
            .context("invalid password hashing settings")?;
        let api_state = api::AppState::new(
            store.clone(),
            engine.clone(),
            matcher.clone(),
            tokens.clone(),
            hasher,
            config.api.clone(),
        )
        .with_shutdown(shutdown.clone());
        if let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) {
            api::bootstrap_admin(&api_state, email, password)
                .await
                .context("cannot create the bootstrap admin")?;
        }
        let restored = api::restore_live_state(&api_state)
            .await
            .context("cannot restore live orders from the database")?;
        tracing::info!(
            tracked = restored.tracked,
            dispatched = restored.dispatched,
            "restored live orders"
        );

        let gateway =
            ws_gateway::Gateway::new(config.gateway.clone(), engine.clone(), tokens.clone());
        let ingest_config = ingest::Config {
            mqtt_addr: config.mqtt_addr,
            ..config.ingest.clone()
        };
        let ingest = ingest::Ingest::new(ingest_config, engine.clone(), tokens.clone());
        let broker = ingest
            .start_broker(shutdown.clone())
            .await
            .context("cannot start the MQTT broker")?;
        let mqtt_addr = broker.local_addr();

        let router = api::router(api_state)
            .merge(ingest.router())
            .merge(gateway.router())
            .merge(ops::router(ops::OpsState {
                engine: engine.clone(),
                store,
                broker,
                gateway: gateway.clone(),
            }))
            .fallback(api::not_found_fallback);

        Ok(App {
            http_listener,
            http_addr,
            mqtt_addr,
            router,
            engine,
            matcher,
            gateway,
            ingest,
            shutdown,
            tracker: TaskTracker::new(),
            grace: Duration::from_millis(config.shutdown_grace_ms),
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
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
    /// and waits for everything under the grace deadline.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let App {
            http_listener,
            router,
            matcher,
            gateway,
            ingest,
            shutdown,
            tracker,
            grace,
            ..
        } = self;
        tracker.spawn(matcher.run(shutdown.clone()));
        tracker.spawn(gateway.run(shutdown.clone()));
        tracker.spawn(ingest.run(shutdown.clone()));
        let http = {
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                let stop = shutdown.clone();
                // Small JSON answers must leave at once: without
                // TCP_NODELAY, Nagle holds a response on a kept-alive
                // connection until the client's next request or delayed
                // ACK (measured: 50–100 ms per request).
                let listener = http_listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                    }
                });
                let result = axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "HTTP server failed; shutting down");
                    shutdown.cancel();
                }
                result
            })
        };
        tracker.close();
        shutdown.cancelled().await;
        tracing::info!("shutting down");
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "subsystems did not stop within the grace period"
            );
        }
        match http.await {
            Ok(Err(e)) => bail!("HTTP server failed: {e}"),
            _ => Ok(()),
        }
    }
}

fn jwt_secret(config: &Config) -> String {
    match &config.jwt_secret {
        Some(s) if !s.is_empty() => s.clone(),
        _ => {
            tracing::warn!(
                "HEXDASH_JWT_SECRET is not set: using a random secret; tokens will not survive a restart"
            );
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!(
                "{}{}{nanos}",
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
