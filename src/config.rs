//! The process configuration: defaults, then a TOML file (`--config`), then
//! `HEXDASH_*` environment variables, then flags, each overriding the last.
//!
//! Top-level keys map to the contract's variables (`HEXDASH_HTTP_ADDR` →
//! `http_addr`); per-subsystem keys nest with a double underscore
//! (`HEXDASH_ENGINE__PRESENCE_TIMEOUT_S` → `engine.presence_timeout_s`).

use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Data, Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::roles::Roles;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// REST and WebSocket listener.
    pub http_addr: SocketAddr,
    /// Embedded MQTT broker listener.
    pub mqtt_addr: SocketAddr,
    /// `sqlite://…` (embedded default) or `postgres://…`.
    pub database_url: String,
    /// Redis for scale-out (`redis://host:port/db`): the domain event
    /// stream between nodes. Unset: one node, nothing shared.
    pub redis_url: Option<String>,
    /// The parts this node runs (`api,ingest,gateway,matcher,relay`; all
    /// by default).
    pub roles: Roles,
    /// Signs access tokens. When unset, a random per-process secret is used
    /// and tokens do not survive a restart.
    pub jwt_secret: Option<String>,
    /// How long an access token lives (refresh tokens renew it).
    pub access_token_ttl_s: u64,
    /// Bootstrap admin, created on first start when both are set.
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `hexdash=debug,info`. rumqttd's
    /// per-connection chatter stays at warn unless named here.
    pub log: String,
    /// How long shutdown waits for subsystems to drain.
    pub shutdown_grace_ms: u64,
    pub engine: engine::Config,
    pub matcher: matcher::Config,
    pub ingest: ingest::Config,
    pub gateway: ws_gateway::Config,
    pub api: api::Config,
    /// Webhook deliveries: timeouts, tries and backoff.
    pub webhooks: api::hooks::Config,
    /// Outside channels (push, email, SMS): which run, their tries and
    /// backoff, the simulated provider's failure rules.
    pub channels: api::channels::Config,
    /// The HTTP listener's limits: header-read timeout, connection caps.
    pub http: crate::http_server::Config,
    /// TLS for the HTTP listener and the embedded MQTT broker: the
    /// certificate chain and key files; unset, both listen in plain TCP.
    pub tls: crate::tls::Config,
    /// The event stream: relay, consumers' retries, presence queue.
    pub events: EventsConfig,
    /// Drivers' recent paths in memory: window, spacing, forgetting, and
    /// how many points a delivered order's route keeps.
    pub breadcrumbs: api::breadcrumbs::Config,
    /// With `redis_url`: the node's id, Redis key prefix, event stream
    /// limits.
    pub cluster: cluster::Config,
    /// `hexdash serve --demo`: the simulated city's size and pace.
    pub demo: demo_city::Config,
}

/// The `[events]` section: the relay's and the consumer runners' limits
/// (`events::Config`) and the presence queue's (`events::PresenceConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsConfig {
    /// Events one relay pass numbers.
    pub relay_batch: u32,
    /// The shortest time between relay passes.
    pub relay_min_interval_ms: u64,
    /// The relay's and idle runners' safety-net poll.
    pub poll_interval_ms: u64,
    /// Events a runner reads per query.
    pub consumer_batch: u32,
    /// A runner records its position after this many handled events.
    pub checkpoint_every: u32,
    /// How long one consumer call may take before it counts as failed.
    pub handle_timeout_ms: u64,
    /// Tries of one event before it goes to the consumer's dead letters.
    pub max_attempts: u32,
    /// The wait after a consumer's first failure; doubles after each.
    pub backoff_initial_ms: u64,
    /// The longest wait between tries.
    pub backoff_max_ms: u64,
    /// Replayed dead letters a runner takes per round.
    pub replay_batch: u32,
    /// Driver presence changes and offers waiting to be written: what a
    /// crash may lose of them at most.
    pub presence_capacity: usize,
    /// Presence changes and offers written per transaction.
    pub presence_batch: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        let stream = events::Config::default();
        let presence = events::PresenceConfig::default();
        Self {
            relay_batch: stream.relay_batch,
            relay_min_interval_ms: stream.relay_min_interval_ms,
            poll_interval_ms: stream.poll_interval_ms,
            consumer_batch: stream.consumer_batch,
            checkpoint_every: stream.checkpoint_every,
            handle_timeout_ms: stream.handle_timeout_ms,
            max_attempts: stream.max_attempts,
            backoff_initial_ms: stream.backoff_initial_ms,
            backoff_max_ms: stream.backoff_max_ms,
            replay_batch: stream.replay_batch,
            presence_capacity: presence.capacity,
            presence_batch: presence.batch,
        }
    }
}

impl EventsConfig {
    /// The relay's and runners' settings.
    pub fn stream(&self) -> events::Config {
        events::Config {
            relay_batch: self.relay_batch,
            relay_min_interval_ms: self.relay_min_interval_ms,
            poll_interval_ms: self.poll_interval_ms,
            consumer_batch: self.consumer_batch,
            checkpoint_every: self.checkpoint_every,
            handle_timeout_ms: self.handle_timeout_ms,
            max_attempts: self.max_attempts,
            backoff_initial_ms: self.backoff_initial_ms,
            backoff_max_ms: self.backoff_max_ms,
            replay_batch: self.replay_batch,
        }
    }

    /// The presence queue's settings.
    pub fn presence(&self) -> events::PresenceConfig {
        events::PresenceConfig {
            capacity: self.presence_capacity,
            batch: self.presence_batch,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            mqtt_addr: SocketAddr::from(([0, 0, 0, 0], 1883)),
            database_url: "sqlite://./data/hexdash.db".into(),
            redis_url: None,
            roles: Roles::all(),
            jwt_secret: None,
            access_token_ttl_s: 3600,
            admin_email: None,
            admin_password: None,
            log_format: LogFormat::Text,
            log: "info".into(),
            shutdown_grace_ms: 10_000,
            engine: engine::Config::default(),
            matcher: matcher::Config::default(),
            webhooks: api::hooks::Config::default(),
            channels: api::channels::Config::default(),
            ingest: ingest::Config::default(),
            gateway: ws_gateway::Config::default(),
            api: api::Config::default(),
            http: crate::http_server::Config::default(),
            tls: crate::tls::Config::default(),
            events: EventsConfig::default(),
            breadcrumbs: api::breadcrumbs::Config::default(),
            cluster: cluster::Config::default(),
            demo: demo_city::Config::default(),
        }
    }
}

/// Flags that override every other layer; `None` leaves the value alone.
#[derive(Clone, Debug, Default, Serialize, clap::Args)]
pub struct Overrides {
    /// REST + WebSocket listen address [env: HEXDASH_HTTP_ADDR] (default 0.0.0.0:8080)
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    /// MQTT listen address [env: HEXDASH_MQTT_ADDR] (default 0.0.0.0:1883)
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_addr: Option<SocketAddr>,
    /// sqlite://… or postgres://… [env: HEXDASH_DATABASE_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// redis://… [env: HEXDASH_REDIS_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Parts this node runs, e.g. api,matcher,relay [env: HEXDASH_ROLES] (default all)
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Roles>,
    /// Log format [env: HEXDASH_LOG_FORMAT]
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// Tracing filter [env: HEXDASH_LOG]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[command(flatten)]
    pub demo: DemoOverrides,
}

/// The demo's flags (`[demo]` settings); unset ones leave the value alone.
#[derive(Clone, Debug, Default, Serialize, clap::Args)]
pub struct DemoOverrides {
    /// Run a simulated city (couriers, restaurants, customers) through the
    /// public APIs [env: HEXDASH_DEMO__ENABLED]
    #[arg(long = "demo")]
    #[serde(rename = "enabled", skip_serializing_if = "std::ops::Not::not")]
    pub enabled: bool,
    /// Demo couriers [env: HEXDASH_DEMO__COURIERS] (default 200)
    #[arg(long = "demo-couriers", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    #[serde(rename = "couriers", skip_serializing_if = "Option::is_none")]
    pub couriers: Option<u32>,
    /// Demo orders per minute [env: HEXDASH_DEMO__ORDERS_PER_MIN] (default 20)
    #[arg(long = "demo-orders-per-min", value_parser = positive_rate)]
    #[serde(rename = "orders_per_min", skip_serializing_if = "Option::is_none")]
    pub orders_per_min: Option<f64>,
    /// The demo city's road graph [env: HEXDASH_DEMO__CITY] (default data/gothenburg_roads_2016.hxroads)
    #[arg(long = "demo-city")]
    #[serde(rename = "city", skip_serializing_if = "Option::is_none")]
    pub city: Option<std::path::PathBuf>,
}

/// A rate flag: a finite number above 0.
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err("must be a number above 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl Config {
    /// Layers defaults, `file`, `HEXDASH_*` variables and `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, Box<figment::Error>> {
        Self::layered(file.map(Toml::file_exact), overrides)
    }

    /// [`Config::load`] with the file's text given instead of its path
    /// (the config fuzzer feeds it; nothing else reads TOML from memory).
    #[doc(hidden)]
    pub fn load_toml(text: &str, overrides: &Overrides) -> Result<Config, Box<figment::Error>> {
        Self::layered(Some(Toml::string(text)), overrides)
    }

    /// Defaults, then `file`, then the environment and `overrides`.
    fn layered(
        file: Option<Data<Toml>>,
        overrides: &Overrides,
    ) -> Result<Config, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(file);
        }
        figment
            .merge(
                Env::prefixed("HEXDASH_")
                    .split("__")
                    .ignore(&["test_database_url", "test_redis_url"]),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)
    }

    /// The configuration as it may be logged: secrets replaced.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        let hide = |s: &mut Option<String>| {
            if s.is_some() {
                *s = Some("<redacted>".into());
            }
        };
        hide(&mut c.jwt_secret);
        hide(&mut c.admin_password);
        hide(&mut c.ingest.broker.password);
        c.database_url = redact_url_password(&c.database_url);
        c.redis_url = c.redis_url.as_deref().map(redact_url_password);
        c
    }
}

/// `scheme://user:secret@host` → `scheme://user:<redacted>@host`.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The userinfo ends at the last `@`: URL parsers (sqlx's and redis's
    // included) read an unescaped `@` in a password as part of it, so the
    // first `@` would log the rest of the password (found by `fuzz/`'s
    // `config` target). An `@` in the path or query only redacts too much.
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
// figment's `Jail` closures must return its (large) `figment::Error`.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn layers_in_rising_precedence() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("hexdash.toml", "http_addr = \"127.0.0.1:9000\"\nmqtt_addr = \"127.0.0.1:9001\"\n[engine]\npresence_timeout_s = 5\n")?;
            jail.set_env("HEXDASH_MQTT_ADDR", "127.0.0.1:9002");
            jail.set_env("HEXDASH_ENGINE__PRESENCE_TIMEOUT_S", "7");
            jail.set_env("HEXDASH_TEST_DATABASE_URL", "postgres://ignored");
            let flags = Overrides {
                database_url: Some("sqlite://flag.db".into()),
                ..Overrides::default()
            };
            let c =
                Config::load(Some(Path::new("hexdash.toml")), &flags).map_err(|e| e.to_string())?;
            assert_eq!(c.http_addr.port(), 9000, "file");
            assert_eq!(c.mqtt_addr.port(), 9002, "env beats file");
            assert_eq!(c.engine.presence_timeout_s, 7, "nested env");
            assert_eq!(c.database_url, "sqlite://flag.db", "flag beats all");
            assert_eq!(c.matcher.offer_timeout_s, 60, "default");
            Ok(())
        });
    }

    #[test]
    fn http_limits_nest_beside_http_addr() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HEXDASH_HTTP_ADDR", "127.0.0.1:9000");
            jail.set_env("HEXDASH_HTTP__HEADER_READ_TIMEOUT_MS", "250");
            jail.set_env("HEXDASH_HTTP__MAX_CONNECTIONS_PER_ADDRESS", "0");
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.http_addr.port(), 9000);
            assert_eq!(c.http.header_read_timeout_ms, 250);
            assert_eq!(c.http.max_connections_per_address, 0);
            assert_eq!(c.http.max_connections, 100_000, "default");
            Ok(())
        });
    }

    #[test]
    fn roles_come_from_a_variable_a_list_or_a_flag() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HEXDASH_ROLES", "gateway,ingest");
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.roles.to_string(), "ingest,gateway");
            jail.create_file("hexdash.toml", "roles = [\"relay\"]\n")?;
            jail.clear_env();
            let c = Config::load(Some(Path::new("hexdash.toml")), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(c.roles.to_string(), "relay");
            let flags = Overrides {
                roles: Some("api,matcher".parse().map_err(|e: String| e)?),
                ..Overrides::default()
            };
            let c =
                Config::load(Some(Path::new("hexdash.toml")), &flags).map_err(|e| e.to_string())?;
            assert_eq!(c.roles.to_string(), "api,matcher", "flag beats file");
            jail.set_env("HEXDASH_ROLES", "api,brain");
            assert!(Config::load(None, &Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn demo_flags_override_the_demo_section_and_keep_the_rest() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HEXDASH_DEMO__COURIERS", "7");
            jail.set_env("HEXDASH_DEMO__RESTAURANTS", "3");
            let env_only = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert!(!env_only.demo.enabled, "off unless asked for");
            assert_eq!(env_only.demo.couriers, 7);
            let flags = Overrides {
                demo: DemoOverrides {
                    enabled: true,
                    couriers: Some(9),
                    orders_per_min: Some(2.5),
                    city: None,
                },
                ..Overrides::default()
            };
            let c = Config::load(None, &flags).map_err(|e| e.to_string())?;
            assert!(c.demo.enabled);
            assert_eq!(c.demo.couriers, 9, "flag beats env");
            assert_eq!(c.demo.orders_per_min, 2.5);
            assert_eq!(c.demo.restaurants, 3, "env kept under the flags");
            assert_eq!(c.demo.city, demo_city::Config::default().city, "default");
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HEXDASH_HTTP_ADDR", "not-an-address");
            assert!(Config::load(None, &Overrides::default()).is_err());
            Ok(())
        });
    }

    /// Every setting as its dotted path (`api.payment_attempts`), from the
    /// serialised defaults: the `Config` structs are the one list of
    /// settings, and the documentation is checked against them.
    fn setting_paths() -> Vec<String> {
        fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(fields) => {
                    for (key, value) in fields {
                        let path = if prefix.is_empty() {
                            key.clone()
                        } else {
                            format!("{prefix}.{key}")
                        };
                        walk(&path, value, out);
                    }
                }
                _ => out.push(prefix.to_owned()),
            }
        }
        let defaults = serde_json::to_value(Config::default()).expect("Config serialises");
        let mut paths = Vec::new();
        walk("", &defaults, &mut paths);
        paths
    }

    /// `api.payment_attempts` → `HEXDASH_API__PAYMENT_ATTEMPTS`.
    fn env_name(path: &str) -> String {
        format!("HEXDASH_{}", path.replace('.', "__").to_uppercase())
    }

    const README: &str = include_str!("../README.md");
    const EXAMPLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hexdash.example.toml");

    #[test]
    fn readme_table_names_every_setting() {
        let missing: Vec<String> = setting_paths()
            .iter()
            .map(|p| env_name(p))
            .filter(|name| !README.contains(&format!("`{name}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "README's configuration table lacks {missing:?}"
        );
    }

    #[test]
    fn example_file_lists_every_setting_at_its_default() {
        let text = std::fs::read_to_string(EXAMPLE_PATH).expect("hexdash.example.toml exists");
        // Settings without a default (secrets, optional URLs) appear
        // commented out, `# key = …`, so the file runs as it is.
        let mut listed = Vec::new();
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = format!("{name}.");
            } else if let Some((key, _)) = line.trim_start_matches("# ").split_once(" = ")
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                listed.push(format!("{section}{key}"));
            }
        }
        let mut expected = setting_paths();
        expected.sort();
        listed.sort();
        assert_eq!(listed, expected, "hexdash.example.toml's settings");

        figment::Jail::expect_with(|jail| {
            // Only the file: a HEXDASH_* variable of the caller's shell
            // must not count as the file's value.
            jail.clear_env();
            let loaded = Config::load(Some(Path::new(EXAMPLE_PATH)), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(
                serde_json::to_value(loaded).map_err(|e| e.to_string())?,
                serde_json::to_value(Config::default()).map_err(|e| e.to_string())?,
                "hexdash.example.toml sets every setting to its default"
            );
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Config {
            jwt_secret: Some("s3cret".into()),
            admin_password: Some("pw".into()),
            database_url: "postgres://app:hunter2@db:5432/x".into(),
            ..Config::default()
        };
        let shown = format!("{:?}", c.redacted());
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2") && !shown.contains("\"pw\""),
            "{shown}"
        );
        assert!(shown.contains("postgres://app:<redacted>@db:5432/x"));
    }

    #[test]
    fn url_passwords_with_an_at_sign_are_redacted_whole() {
        assert_eq!(
            redact_url_password("postgres://app:p@ss@word@db:5432/x"),
            "postgres://app:<redacted>@db:5432/x"
        );
        assert_eq!(
            redact_url_password("redis://:a@b@127.0.0.1:6379/0"),
            "redis://:<redacted>@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url_password("postgres://db/x?user=a@b"),
            "postgres://db/x?user=a@b"
        );
    }
}
