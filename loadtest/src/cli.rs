//! Command-line flags (clap). One flat set of flags; each scenario uses the
//! ones that concern it.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::postgis::Table;

/// Drives a running hexdash (or the do-it-yourself peer stack) over real
/// sockets and reports throughput, loss, latency percentiles and the
/// server's CPU and memory. Exits 1 when an SLO flag is missed, 2 on error.
#[derive(Clone, Debug, Parser)]
#[command(name = "loadtest", version)]
pub struct Cli {
    /// What to run.
    #[arg(value_enum)]
    pub scenario: Scenario,

    /// The system under test.
    #[arg(long, value_enum, default_value_t = Target::Hexdash)]
    pub target: Target,

    /// How drivers send pings (hexdash only; the peer takes MQTT).
    #[arg(long, value_enum, default_value_t = Transport::Mqtt)]
    pub transport: Transport,

    /// hexdash's HTTP base URL (REST, WebSocket, /metrics).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub http_url: String,

    /// MQTT broker `host:port` [default: 127.0.0.1:1884 for hexdash (Mosquitto
    /// holds 1883 on the development machines), 127.0.0.1:1883 for the peers].
    /// For hexdash a comma-separated list spreads the drivers round-robin
    /// over several nodes' brokers (driver `i` on the `i mod n`-th).
    #[arg(long)]
    pub mqtt_addr: Option<String>,

    /// HTTP base URLs (comma-separated) whose `/metrics` ping counters are
    /// summed for what the server received [default: --http-url]: with
    /// drivers spread over several nodes' brokers, list every node.
    #[arg(long, value_delimiter = ',')]
    pub metrics_url: Vec<String>,

    /// HTTP base URLs (comma-separated) the orders scenario places its
    /// orders on, round-robin (order `i` on the `i mod n`-th)
    /// [default: --http-url]: with several nodes, list every node's.
    #[arg(long, value_delimiter = ',')]
    pub order_url: Vec<String>,

    /// HTTP base URL of the node the watchers and customers open their
    /// WebSocket on [default: --http-url]: with several nodes, pings go in
    /// through one node's broker and come out on another node's socket.
    #[arg(long)]
    pub watch_url: Option<String>,

    /// Redis of the peer stack.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    pub redis_url: String,

    /// The peer's GEO key (deleted at start unless --keep-index).
    #[arg(long, default_value = "loadtest:drivers")]
    pub redis_key: String,

    /// Keep the peer's index (the Redis GEO key, or the PostGIS table's
    /// rows) from earlier runs.
    #[arg(long)]
    pub keep_index: bool,

    /// PostgreSQL (with PostGIS) of the peer-postgis stack; the database
    /// must exist (`createdb loadtest_postgis`), the tool creates the
    /// extension, table and index.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/loadtest_postgis"
    )]
    pub postgis_url: String,

    /// The peer-postgis drivers' table (emptied at start unless
    /// --keep-index).
    #[arg(long, default_value = "loadtest_drivers", value_parser = Table::parse)]
    pub postgis_table: Table,

    /// How the peer bridge writes to Redis: a pipeline of one GEOADD per
    /// ping, or one GEOADD with many members per batch.
    #[arg(long, value_enum, default_value_t = GeoAdd::Pipeline)]
    pub bridge_geoadd: GeoAdd,

    /// Connected drivers.
    #[arg(long, default_value_t = 1_000)]
    pub drivers: usize,

    /// Drivers that ping once (connect, ping, disconnect) before the run,
    /// so queries search a large fleet without holding its connections
    /// (the index must keep them: start hexdash with a long
    /// HEXDASH_ENGINE__PRESENCE_TIMEOUT_S). The first --drivers of them
    /// then stay connected and keep pinging.
    #[arg(long, default_value_t = 0)]
    pub preload: usize,

    /// Pings per second per driver (open loop: the schedule never waits
    /// for the server).
    #[arg(long, default_value_t = 1.0)]
    pub ping_hz: f64,

    /// Pings per packet: 1, or e.g. 16 to send like an app flushing its
    /// offline buffer (16 MQTT PUBLISH packets, or 16 WebSocket messages, in
    /// one TCP write). The per-driver rate stays --ping-hz.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,

    /// WebSocket watchers (dispatchers on `/v1/ws` with an `area` box).
    #[arg(long, default_value_t = 0)]
    pub watchers: usize,

    /// Deliveries (track, mixed): the first N drivers each carry an order
    /// whose customer watches it on `order:{id}` over WebSocket, measuring
    /// the customer's ping-to-screen latency. Set up through the public API
    /// (restaurant, order, offer over MQTT, accept); hexdash over MQTT.
    #[arg(long, default_value_t = 0)]
    pub deliveries: usize,

    /// Side of each watcher's area box, metres.
    #[arg(long, default_value_t = 2_000.0)]
    pub watch_box_m: f64,

    /// Length of the measurement window.
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,

    /// Load applied before the window opens (fills the index, warms caches).
    #[arg(long, default_value_t = 3)]
    pub warmup_s: u64,

    /// Seed of every random choice (start positions, turns, query points).
    #[arg(long, default_value_t = cityseed::SEED)]
    pub seed: u64,

    /// Slowest driver speed, m/s.
    #[arg(long, default_value_t = 5.0)]
    pub min_speed_mps: f64,

    /// Fastest driver speed, m/s.
    #[arg(long, default_value_t = 15.0)]
    pub max_speed_mps: f64,

    /// Road network (OpenStreetMap, ODbL) drivers move on. The default is
    /// the extract the repository ships in `data/`, found from wherever
    /// `loadtest` is started.
    #[arg(
        long,
        default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/gothenburg_roads_2016.geojson.gz")
    )]
    pub roads: PathBuf,

    /// Concurrent connections issuing nearest-driver queries (for
    /// peer-postgis the size of the query pool).
    #[arg(long, default_value_t = 32)]
    pub nearby_conns: usize,

    /// Nearest-driver queries per second in total, open loop; 0 runs closed
    /// loop (each connection sends its next query when the last answered).
    #[arg(long, default_value_t = 0.0)]
    pub nearby_rate: f64,

    /// Search radius of nearest-driver queries, metres.
    #[arg(long, default_value_t = 3_000.0)]
    pub radius_m: f64,

    /// Drivers returned per nearest-driver query.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,

    /// `status` filter of hexdash's nearby query (`available`, `any`, …).
    #[arg(long, default_value = "available")]
    pub status: String,

    /// Orders per second (orders scenario, open loop).
    #[arg(long, default_value_t = 50.0)]
    pub order_rate: f64,

    /// Orders in flight at most; beyond it a due order is dropped and counted.
    #[arg(long, default_value_t = 64)]
    pub order_conns: usize,

    /// Restaurants (with menus) the orders scenario creates.
    #[arg(long, default_value_t = 20)]
    pub restaurants: usize,

    /// Dishes per restaurant the search scenario creates.
    #[arg(long, default_value_t = 50)]
    pub dishes_per_restaurant: usize,

    /// Customers the orders scenario signs up and orders with.
    #[arg(long, default_value_t = 50)]
    pub customers: usize,

    /// Orders scenario: every customer keeps its notification feed (`me`
    /// on `/v1/ws`) open and the run reports event-to-screen latency of
    /// the notifications (hexdash only).
    #[arg(long)]
    pub notify_feeds: bool,

    /// Where created accounts and tokens are cached between runs.
    #[arg(long, default_value = "target/loadtest-accounts.json")]
    pub accounts_file: PathBuf,

    /// Signups and logins in flight (the server hashes passwords with
    /// argon2 and queues beyond its own limit).
    #[arg(long, default_value_t = 8)]
    pub signup_concurrency: usize,

    /// The bootstrap admin (dispatcher) hexdash was started with.
    #[arg(long, env = "HEXDASH_ADMIN_EMAIL", default_value = "admin@example.com")]
    pub admin_email: String,

    #[arg(long, env = "HEXDASH_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Connection attempts in flight while connecting drivers and watchers.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,

    /// Sender tasks the MQTT drivers are spread over [default: one per core].
    #[arg(long, default_value_t = 0)]
    pub shards: usize,

    /// Pid of the server process(es) to measure, each alone [default: found
    /// by name: `hexdash`, or `mosquitto` and `redis-server` for
    /// peer-bridge; for peer-postgis `mosquitto` and the PostgreSQL server
    /// (its postmaster with every child process) found through a connection].
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,

    /// Fail (exit 1) when the scenario's p99 latency exceeds this.
    #[arg(long)]
    pub max_p99_ms: Option<f64>,

    /// Fail (exit 1) when the scenario's rate (pings received/s, queries/s,
    /// orders/s) is below this.
    #[arg(long)]
    pub min_rate: Option<f64>,

    /// Print the report as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,

    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Drivers stream pings; throughput and loss at the server.
    Ingest,
    /// Drivers stream pings; dispatchers ask for the nearest drivers.
    Nearby,
    /// Drivers stream pings; watchers measure ping-to-screen latency.
    Track,
    /// Order placement over REST.
    Orders,
    /// Restaurant and dish search over REST (seeds `--restaurants`).
    Search,
    /// Drivers, watchers and nearest-driver queries at once.
    Mixed,
    /// Only create (or refresh) the cached driver accounts.
    Accounts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    Hexdash,
    /// Mosquitto + a bridge (in this process) writing GEOADD into Redis,
    /// GEOSEARCH for nearest drivers.
    PeerBridge,
    /// Mosquitto + the same bridge writing batched UPSERTs into a PostGIS
    /// table, a KNN scan of its GiST index for nearest drivers.
    PeerPostgis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    Mqtt,
    Ws,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeoAdd {
    Pipeline,
    Multi,
}

impl Cli {
    pub fn mqtt_addr(&self) -> String {
        self.mqtt_addr.clone().unwrap_or_else(|| match self.target {
            Target::Hexdash => "127.0.0.1:1884".to_owned(),
            Target::PeerBridge | Target::PeerPostgis => "127.0.0.1:1883".to_owned(),
        })
    }

    /// The drivers' brokers: `--mqtt-addr` split at commas (never empty).
    pub fn mqtt_addrs(&self) -> Vec<String> {
        let all = self.mqtt_addr();
        let addrs: Vec<String> = all
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if addrs.is_empty() { vec![all] } else { addrs }
    }

    /// `ws://…` form of the HTTP base URL (drivers' streams).
    pub fn ws_url(&self) -> String {
        ws_form(&self.http_url)
    }

    /// `ws://…` form of the watchers' node: `--watch-url`, else the HTTP
    /// base URL.
    pub fn watch_ws_url(&self) -> String {
        ws_form(self.watch_url.as_deref().unwrap_or(&self.http_url))
    }

    /// Where ping counters are read: `--metrics-url`, else the HTTP base
    /// URL.
    pub fn metrics_bases(&self) -> Vec<String> {
        if self.metrics_url.is_empty() {
            vec![self.http_base().to_owned()]
        } else {
            self.metrics_url
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect()
        }
    }

    /// Where orders are placed (`--order-url`, else `--http-url`), without
    /// trailing slashes.
    pub fn order_bases(&self) -> Vec<String> {
        if self.order_url.is_empty() {
            vec![self.http_base().to_owned()]
        } else {
            self.order_url
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect()
        }
    }

    pub fn http_base(&self) -> &str {
        self.http_url.trim_end_matches('/')
    }

    /// Flag combinations that cannot work, refused before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::bail;
        if !(self.ping_hz > 0.0 && self.ping_hz.is_finite()) {
            bail!("--ping-hz must be positive");
        }
        if self.batch == 0 || self.batch > 1024 {
            bail!("--batch must be in 1..=1024");
        }
        if self.min_speed_mps > self.max_speed_mps || self.min_speed_mps < 0.0 {
            bail!("need 0 <= --min-speed-mps <= --max-speed-mps");
        }
        if self.duration_s == 0 {
            bail!("--duration-s must be at least 1");
        }
        if self.target != Target::Hexdash && self.mqtt_addrs().len() > 1 {
            bail!("several --mqtt-addr brokers are for hexdash nodes only");
        }
        if self.deliveries > 0 {
            if !matches!(self.scenario, Scenario::Track | Scenario::Mixed) {
                bail!("--deliveries belongs to the track and mixed scenarios");
            }
            if self.target != Target::Hexdash || self.transport != Transport::Mqtt {
                bail!(
                    "--deliveries needs hexdash with MQTT drivers (couriers take offers over MQTT)"
                );
            }
            if self.deliveries > self.drivers {
                bail!("--deliveries cannot exceed --drivers (each courier is one of them)");
            }
        }
        if self.notify_feeds && !matches!(self.scenario, Scenario::Orders | Scenario::Mixed) {
            bail!("--notify-feeds belongs to the orders and mixed scenarios (customers' feeds)");
        }
        if self.target != Target::Hexdash {
            if self.transport == Transport::Ws {
                bail!("the peer stacks take pings over MQTT only (--transport mqtt)");
            }
            match self.scenario {
                Scenario::Ingest | Scenario::Nearby => {}
                Scenario::Track | Scenario::Mixed => bail!(
                    "the peer stacks have no area fan-out to watch (pending: a Mosquitto \
                     subscriber per watcher); run track/mixed against hexdash"
                ),
                Scenario::Orders | Scenario::Search | Scenario::Accounts => {
                    bail!("the peer stacks have no accounts, restaurants or orders")
                }
            }
        }
        Ok(())
    }
}

/// `ws://…` (or `wss://…`) form of an HTTP base URL, without a trailing
/// slash.
fn ws_form(http_url: &str) -> String {
    let base = http_url.trim_end_matches('/');
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied()))
            .expect("parses")
    }

    #[test]
    fn defaults_and_targets() {
        let cli = parse(&["ingest"]);
        assert_eq!(cli.mqtt_addr(), "127.0.0.1:1884");
        assert_eq!(cli.ws_url(), "ws://127.0.0.1:8080");
        assert!(cli.validate().is_ok());
        let peer = parse(&["ingest", "--target", "peer-bridge"]);
        assert_eq!(peer.mqtt_addr(), "127.0.0.1:1883");
        assert!(peer.validate().is_ok());
        assert!(parse(&["track", "--deliveries", "100"]).validate().is_ok());
        let pg = parse(&["nearby", "--target", "peer-postgis"]);
        assert_eq!(pg.mqtt_addr(), "127.0.0.1:1883");
        assert_eq!(
            pg.postgis_url,
            "postgres://postgres@127.0.0.1:5432/loadtest_postgis"
        );
        assert_eq!(pg.postgis_table.name(), "loadtest_drivers");
        assert!(pg.validate().is_ok());
        assert!(
            parse(&["ingest", "--target", "peer-postgis"])
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn refuses_a_bad_table_name() {
        let args = ["loadtest", "nearby", "--postgis-table", "drivers; drop"];
        assert!(Cli::try_parse_from(args).is_err());
    }

    #[test]
    fn refuses_impossible_combinations() {
        for args in [
            &["track", "--target", "peer-bridge"][..],
            &["ingest", "--target", "peer-bridge", "--transport", "ws"],
            &["nearby", "--target", "peer-postgis", "--transport", "ws"],
            &["track", "--target", "peer-postgis"],
            &["mixed", "--target", "peer-postgis"],
            &["orders", "--target", "peer-postgis"],
            &["search", "--target", "peer-postgis"],
            &["accounts", "--target", "peer-postgis"],
            &["ingest", "--ping-hz", "0"],
            &["ingest", "--batch", "0"],
            &["ingest", "--min-speed-mps", "9", "--max-speed-mps", "3"],
            &["ingest", "--deliveries", "10"],
            &["track", "--deliveries", "10", "--transport", "ws"],
            &["track", "--deliveries", "2000", "--drivers", "1000"],
            &["track", "--notify-feeds"],
            &[
                "ingest",
                "--target",
                "peer-bridge",
                "--mqtt-addr",
                "a:1,b:2",
            ],
        ] {
            assert!(parse(args).validate().is_err(), "{args:?}");
        }
    }

    #[test]
    fn several_brokers_and_a_watch_node() {
        let cli = parse(&[
            "track",
            "--mqtt-addr",
            "127.0.0.1:1,127.0.0.1:2, ",
            "--watch-url",
            "http://127.0.0.1:9/",
        ]);
        assert_eq!(cli.mqtt_addrs(), ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(cli.watch_ws_url(), "ws://127.0.0.1:9");
        assert_eq!(cli.ws_url(), "ws://127.0.0.1:8080");
        let one = parse(&["track"]);
        assert_eq!(one.mqtt_addrs(), ["127.0.0.1:1884"]);
        assert_eq!(one.watch_ws_url(), one.ws_url());
        assert_eq!(one.metrics_bases(), ["http://127.0.0.1:8080"]);
        let many = parse(&["ingest", "--metrics-url", "http://a:1/,http://b:2"]);
        assert_eq!(many.metrics_bases(), ["http://a:1", "http://b:2"]);
        assert_eq!(one.order_bases(), ["http://127.0.0.1:8080"]);
        let spread = parse(&["orders", "--order-url", "http://a:1/,http://b:2"]);
        assert_eq!(spread.order_bases(), ["http://a:1", "http://b:2"]);
    }
}
