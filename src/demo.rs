//! `hexdash serve --demo`: prepares the configuration for the simulated
//! city (`demo-city`), starts it beside the app, prints where to log in,
//! and stops it before the app so its last requests find the server up.
//!
//! The city talks to the app only over the app's own listeners (REST,
//! WebSocket, MQTT), as outside clients would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{App, local_url};
use crate::config::Config;

/// How long stopping waits for the demo's actors to put down their
/// connections before the app itself stops.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What `prepare` settled for a demo run.
pub struct Plan {
    config: demo_city::Config,
    admin_email: String,
    admin_password: String,
    /// The demo made up the admin (the operator configured none): its
    /// password may be printed.
    demo_admin: bool,
}

/// Adjusts `config` for a demo run and returns the plan, or `None` when
/// the demo is off. An invalid `[demo]` setting is an error here, before
/// anything starts. With the demo on:
/// - the admin is the operator's bootstrap admin, or else a demo admin
///   (`admin@demo.hexdash.example`), created on first start as any
///   bootstrap admin is;
/// - the per-address signup and login limits are raised to cover the
///   demo's accounts, which all sign up and log in from the loopback;
/// - the matcher gets the demo city's roads for its travel times when no
///   other road graph is set.
pub fn prepare(config: &mut Config) -> Result<Option<Plan>, demo_city::ConfigError> {
    if !config.demo.enabled {
        return Ok(None);
    }
    let demo = config.demo.clone();
    demo.validate()?;
    if config.tls != crate::tls::Config::default() {
        return Err(demo_city::ConfigError {
            setting: "enabled",
            reason:
                "the demo city talks plain HTTP and MQTT to its own server: run it without [tls]"
                    .into(),
        });
    }
    if !demo.city.is_file() {
        return Err(demo_city::ConfigError {
            setting: "city",
            reason: format!(
                "no road graph file at {} (run from the repository's root, or name one with --demo-city or HEXDASH_DEMO__CITY)",
                demo.city.display()
            ),
        });
    }
    let (admin_email, admin_password, demo_admin) =
        match (&config.admin_email, &config.admin_password) {
            (Some(email), Some(password)) => (email.clone(), password.clone(), false),
            _ => {
                config.admin_email = Some(demo_city::ADMIN_EMAIL.into());
                config.admin_password = Some(demo_city::ADMIN_PASSWORD.into());
                (
                    demo_city::ADMIN_EMAIL.to_owned(),
                    demo_city::ADMIN_PASSWORD.to_owned(),
                    true,
                )
            }
        };
    // Every demo account logs in once at start and again when its token
    // expires; signups happen once per database. Twice the accounts leaves
    // room for a restart within a window.
    let accounts = demo.couriers + demo.customers + demo.restaurants + 1;
    let room = accounts.saturating_mul(2);
    let api = &mut config.api;
    for limit in [
        &mut api.signup_attempts_per_address,
        &mut api.login_attempts_per_address,
    ] {
        // 0 is "no limit" already.
        if *limit != 0 && *limit < room {
            *limit = room;
        }
    }
    if config.matcher.roads.is_none() {
        config.matcher.roads = Some(demo.city.clone());
    }
    Ok(Some(Plan {
        config: demo,
        admin_email,
        admin_password,
        demo_admin,
    }))
}

/// A running demo.
pub struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
    failed: Arc<AtomicBool>,
}

impl Plan {
    /// Starts the city against `app`'s listeners and prints where to log
    /// in. A city that cannot be set up logs why and stops the app (a
    /// subsystem that fails stops the rest).
    pub fn spawn(self, app: &App) -> Running {
        let console = local_url(app.http_addr(), web_console::PATH);
        if self.demo_admin {
            tracing::info!(
                console = %console,
                email = demo_city::ADMIN_EMAIL,
                password = demo_city::ADMIN_PASSWORD,
                "demo city: open {console} and log in as {} with password {}",
                demo_city::ADMIN_EMAIL,
                demo_city::ADMIN_PASSWORD,
            );
        } else {
            tracing::info!(
                console = %console,
                email = %self.admin_email,
                "demo city: open {console} and log in as the configured admin {}",
                self.admin_email,
            );
        }
        let app_shutdown = app.shutdown_token();
        // A child: the app stopping for any reason stops the demo too.
        let stop = app_shutdown.child_token();
        let target = demo_city::Target {
            http: app.http_addr(),
            mqtt: app.mqtt_addr(),
        };
        let admin = demo_city::Admin {
            email: self.admin_email,
            password: self.admin_password,
        };
        let failed = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = stop.clone();
            let failed = failed.clone();
            async move {
                if let Err(e) = demo_city::run(self.config, target, admin, stop).await {
                    tracing::error!("the demo city failed; stopping: {e}");
                    failed.store(true, Ordering::Relaxed);
                    app_shutdown.cancel();
                }
            }
        });
        Running { stop, task, failed }
    }
}

impl Running {
    /// Set when the city could not be set up (the process then exits with
    /// a failure, though the app itself stopped cleanly).
    pub fn failed(&self) -> Arc<AtomicBool> {
        self.failed.clone()
    }

    /// Stops the city and waits (up to a few seconds) for its actors to
    /// close their connections.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(STOP_GRACE, self.task).await;
    }
}

/// Stops `demo` (if any) before `app_shutdown`: the order the process
/// stops in on SIGINT or SIGTERM.
pub async fn stop_then(demo: Option<Running>, app_shutdown: &CancellationToken) {
    if let Some(demo) = demo {
        demo.stop().await;
    }
    app_shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_on() -> Config {
        let mut config = Config::default();
        config.demo.enabled = true;
        // Absolute: the configuration tests in this binary move the
        // process's working directory about (`figment::Jail`).
        config.demo.city = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/gothenburg_roads_2016.hxroads"
        )
        .into();
        config
    }

    #[test]
    fn off_leaves_the_configuration_alone() {
        let mut config = Config::default();
        assert!(prepare(&mut config).unwrap().is_none());
        assert_eq!(config.admin_email, None);
        assert_eq!(config.matcher.roads, None);
    }

    #[test]
    fn on_brings_a_demo_admin_roads_and_room_for_its_logins() {
        let mut config = demo_on();
        let plan = prepare(&mut config).unwrap().unwrap();
        assert!(plan.demo_admin);
        assert_eq!(config.admin_email.as_deref(), Some(demo_city::ADMIN_EMAIL));
        assert_eq!(
            config.admin_password.as_deref(),
            Some(demo_city::ADMIN_PASSWORD)
        );
        assert_eq!(config.matcher.roads, Some(config.demo.city.clone()));
        // 200 couriers + 50 customers + 20 owners + the admin, twice.
        assert_eq!(config.api.signup_attempts_per_address, 542);
        assert_eq!(config.api.login_attempts_per_address, 542);
    }

    #[test]
    fn on_keeps_the_operators_admin_roads_and_unlimited_limits() {
        let mut config = demo_on();
        config.admin_email = Some("ops@example.com".into());
        config.admin_password = Some("secret-password".into());
        config.matcher.roads = Some("other.hxroads".into());
        config.api.signup_attempts_per_address = 0;
        config.api.login_attempts_per_address = 10_000;
        let plan = prepare(&mut config).unwrap().unwrap();
        assert!(!plan.demo_admin);
        assert_eq!(plan.admin_email, "ops@example.com");
        assert_eq!(config.admin_email.as_deref(), Some("ops@example.com"));
        assert_eq!(config.matcher.roads, Some("other.hxroads".into()));
        assert_eq!(config.api.signup_attempts_per_address, 0, "no limit stays");
        assert_eq!(
            config.api.login_attempts_per_address, 10_000,
            "higher stays"
        );
    }

    #[test]
    fn an_invalid_demo_setting_is_refused_before_the_start() {
        let mut config = demo_on();
        config.demo.couriers = 0;
        let e = prepare(&mut config).err().unwrap();
        assert_eq!(e.setting, "couriers");
        let mut config = demo_on();
        config.demo.city = "no/such/city.hxroads".into();
        let e = prepare(&mut config).err().unwrap();
        assert_eq!(e.setting, "city");
        assert!(e.to_string().contains("--demo-city"), "{e}");
    }
}
