//! Ingest settings. Every bound here keeps memory, latency or abuse finite.

use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The certificate chain and private key (PEM files) the embedded broker
/// serves MQTT over TLS with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttTls {
    /// The certificate chain, the server's certificate first.
    pub cert_file: std::path::PathBuf,
    /// Its private key.
    pub key_file: std::path::PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Embedded MQTT broker listener. Port 0 picks a free port (read it back
    /// from `BrokerHandle::local_addr`). Not a setting of its own: the
    /// binary copies the top-level `mqtt_addr` (`HEXDASH_MQTT_ADDR`) here,
    /// so there is one way to set it.
    #[serde(skip)]
    pub mqtt_addr: SocketAddr,
    /// TLS on the embedded broker's listener (MQTT over TLS), `None`: plain
    /// TCP. Not a setting of its own either: the binary copies the
    /// top-level `[tls]` files here, one certificate for HTTP and MQTT.
    #[serde(skip)]
    pub mqtt_tls: Option<MqttTls>,
    /// Broker connection slots (drivers plus the two in-process links). The
    /// router preallocates tables of this size (virtual memory, touched as
    /// used), and refuses connections beyond it.
    pub max_connections: usize,
    /// How often drivers that stopped pinging are marked offline.
    pub presence_sweep_ms: u64,
    /// Largest accepted ping, bytes. A real ping is about 120 bytes; the
    /// margin is for optional fields newer apps may add.
    pub max_ping_bytes: usize,
    /// Largest MQTT packet the broker reads, bytes. Larger packets make
    /// rumqttd drop the connection, so this sits well above `max_ping_bytes`:
    /// a moderately oversized ping gets a `too_large` rejection instead.
    pub max_mqtt_packet_bytes: usize,
    /// Time a new MQTT connection has to send CONNECT, so idle sockets
    /// cannot hold connection slots.
    pub mqtt_connect_timeout_ms: u16,
    /// QoS 1/2 messages in flight per MQTT connection (and the largest batch
    /// of packets read from one connection at a time).
    pub mqtt_max_inflight: usize,
    /// Largest HTTP batch, in pings: about 15 minutes of 1 Hz pings.
    pub max_batch_pings: usize,
    /// Largest HTTP batch body, bytes.
    pub max_batch_body_bytes: usize,
    /// Largest WebSocket message the socket accepts at all. Above
    /// `max_ping_bytes` so a moderately oversized ping gets an error message
    /// instead of a killed connection.
    pub ws_max_message_bytes: usize,
    /// Messages (offers) queued for one driver's WebSocket; when full, further
    /// offers to that socket are dropped and counted (an offer the driver
    /// cannot read in time expires anyway).
    pub ws_send_queue: usize,
    /// Where drivers' MQTT goes: the embedded broker (default) or an
    /// external broker cluster hexdash subscribes to (`[ingest.broker]`).
    pub broker: BrokerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mqtt_addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1883)),
            mqtt_tls: None,
            max_connections: 200_000,
            presence_sweep_ms: 1_000,
            max_ping_bytes: 1024,
            max_mqtt_packet_bytes: 16 * 1024,
            mqtt_connect_timeout_ms: 10_000,
            mqtt_max_inflight: 100,
            max_batch_pings: 1_000,
            max_batch_body_bytes: 1024 * 1024,
            ws_max_message_bytes: 64 * 1024,
            ws_send_queue: 64,
            broker: BrokerConfig::default(),
        }
    }
}

/// Which MQTT broker drivers talk to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerMode {
    /// hexdash runs its own broker on `mqtt_addr` and checks every
    /// driver's token and topics itself.
    #[default]
    Embedded,
    /// Drivers connect to an external broker (Mosquitto, EMQX, VerneMQ),
    /// which authenticates them and enforces the per-driver topic ACL;
    /// hexdash connects to it as a client (docs/EXTERNAL_BROKER.md).
    External,
}

/// `[ingest.broker]`: the external broker hexdash is a client of. Only
/// `mode` matters in embedded mode.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrokerConfig {
    pub mode: BrokerMode,
    /// `mqtt://host:port` (or `tcp://`; port 1883 when left out), one per
    /// node of the broker cluster: a failed connection moves on to the
    /// next. A comma-separated string or a list. TLS (`mqtts://`) is not
    /// supported yet: run hexdash next to the broker on a private network.
    #[serde(deserialize_with = "string_or_list")]
    pub urls: Vec<String>,
    /// hexdash's own account at the broker (it must be allowed to read
    /// `$share/{share_group}/drivers/+/location` and write
    /// `drivers/+/offers`).
    pub username: Option<String>,
    /// Never logged.
    pub password: Option<String>,
    /// The shared-subscription group: ingest nodes in one group split the
    /// pings, each ping handled by one of them.
    pub share_group: String,
    /// The MQTT client id; unique per node (a broker closes the older of
    /// two connections with one id). Default `hexdash-{node id}`.
    pub client_id: Option<String>,
    /// QoS of the ping subscription and of offers: 0 (what drivers publish
    /// pings with) or 1 (the broker redelivers an unacknowledged message
    /// to another member of the group).
    pub qos: u8,
    /// MQTT keep-alive of hexdash's connection; a dead broker is noticed
    /// within about 1.5 × this.
    pub keep_alive_s: u16,
    /// Time for TCP connect plus CONNACK.
    pub connect_timeout_s: u64,
    /// The wait after the first failed connection; doubles up to
    /// `reconnect_max_ms`, back to this after a success.
    pub reconnect_initial_ms: u64,
    pub reconnect_max_ms: u64,
    /// Offers and notifications waiting for the connection (a burst, or an
    /// outage); beyond it the newest is dropped and counted (an offer
    /// expires unanswered, a notification stays in the feed).
    pub publish_queue: usize,
    /// Largest packet read from or written to the broker, bytes.
    pub max_packet_bytes: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            mode: BrokerMode::Embedded,
            urls: vec!["mqtt://127.0.0.1:1883".to_owned()],
            username: None,
            password: None,
            share_group: "hexdash".to_owned(),
            client_id: None,
            qos: 0,
            keep_alive_s: 30,
            connect_timeout_s: 5,
            reconnect_initial_ms: 100,
            reconnect_max_ms: 5_000,
            publish_queue: 4_096,
            max_packet_bytes: 16 * 1024,
        }
    }
}

/// The password stays out of `Debug` (start logs, panics).
impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("mode", &self.mode)
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("share_group", &self.share_group)
            .field("client_id", &self.client_id)
            .field("qos", &self.qos)
            .field("keep_alive_s", &self.keep_alive_s)
            .field("connect_timeout_s", &self.connect_timeout_s)
            .field("reconnect_initial_ms", &self.reconnect_initial_ms)
            .field("reconnect_max_ms", &self.reconnect_max_ms)
            .field("publish_queue", &self.publish_queue)
            .field("max_packet_bytes", &self.max_packet_bytes)
            .finish()
    }
}

/// A broker address from `urls`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for BrokerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mqtt://{}:{}", self.host, self.port)
    }
}

/// MQTT's default port.
const MQTT_PORT: u16 = 1883;
/// Below this rumqttc's keep-alive and the brokers' timers get noisy.
const MIN_KEEP_ALIVE_S: u16 = 5;

impl BrokerConfig {
    /// The endpoints of `urls`, or why the settings cannot work; checked
    /// at start in external mode.
    pub fn validate(&self) -> Result<Vec<BrokerEndpoint>, String> {
        if self.urls.is_empty() {
            return Err("urls is empty: name at least one broker (mqtt://host:port)".into());
        }
        let endpoints = self
            .urls
            .iter()
            .map(|u| parse_url(u))
            .collect::<Result<Vec<_>, _>>()?;
        if self.share_group.is_empty() || self.share_group.contains(['/', '+', '#']) {
            return Err(format!(
                "share_group {:?} must be a non-empty name without '/', '+' or '#'",
                self.share_group
            ));
        }
        if self.qos > 1 {
            return Err(format!("qos {} is not supported (0 or 1)", self.qos));
        }
        if self.keep_alive_s < MIN_KEEP_ALIVE_S {
            return Err(format!("keep_alive_s must be at least {MIN_KEEP_ALIVE_S}"));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("a password needs a username".into());
        }
        if self.client_id.as_deref() == Some("") {
            return Err("client_id is empty (leave it out for hexdash-{node id})".into());
        }
        if self.publish_queue == 0 || self.connect_timeout_s == 0 || self.reconnect_initial_ms == 0
        {
            return Err(
                "publish_queue, connect_timeout_s and reconnect_initial_ms must be above 0".into(),
            );
        }
        Ok(endpoints)
    }
}

/// `mqtt://host[:port]` or `tcp://host[:port]`; nothing after the port.
fn parse_url(url: &str) -> Result<BrokerEndpoint, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("broker url {url:?} has no scheme (mqtt://host:port)"))?;
    match scheme {
        "mqtt" | "tcp" => {}
        "mqtts" | "ssl" | "wss" => {
            return Err(format!(
                "broker url {url:?}: TLS to the broker is not supported yet (use mqtt:// on a private network)"
            ));
        }
        other => return Err(format!("broker url {url:?}: unknown scheme {other:?}")),
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', '?']) {
        return Err(format!(
            "broker url {url:?} must be scheme://host[:port] (credentials go in username/password)"
        ));
    }
    // `[v6]:port`, `host:port` or `host`.
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port))
            if !host.ends_with(':') && (!host.starts_with('[') || host.ends_with(']')) =>
        {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("broker url {url:?}: bad port {port:?}"))?;
            (host, port)
        }
        _ => (rest, MQTT_PORT),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("broker url {url:?} has no host"));
    }
    Ok(BrokerEndpoint {
        host: host.to_owned(),
        port,
    })
}

/// A list from TOML, or a comma-separated string (one environment
/// variable: `HEXDASH_INGEST__BROKER__URLS=mqtt://a,mqtt://b`).
fn string_or_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Written::deserialize(d)? {
        Written::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Written::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let check = |url: &str, expected: Result<(&str, u16), &str>| {
            let got = parse_url(url);
            match expected {
                Ok((host, port)) => assert_eq!(
                    got,
                    Ok(BrokerEndpoint {
                        host: host.into(),
                        port
                    }),
                    "{url}"
                ),
                Err(part) => {
                    let e = got.expect_err(url);
                    assert!(e.contains(part), "{url}: {e}");
                }
            }
        };
        check("mqtt://127.0.0.1:1883", Ok(("127.0.0.1", 1883)));
        check("tcp://broker.internal", Ok(("broker.internal", 1883)));
        check("mqtt://emqx-1:11883/", Ok(("emqx-1", 11883)));
        check("mqtt://[::1]:1884", Ok(("::1", 1884)));
        check("mqtt://[::1]", Ok(("::1", 1883)));
        check("mqtts://broker:8883", Err("TLS"));
        check("broker:1883", Err("no scheme"));
        check("mqtt://u:p@broker", Err("credentials"));
        check("mqtt://broker:x", Err("bad port"));
        check("mqtt://:1883", Err("no host"));
        check("http://broker", Err("unknown scheme"));
    }

    #[test]
    fn validation() {
        let external = |adjust: fn(&mut BrokerConfig)| {
            let mut c = BrokerConfig {
                mode: BrokerMode::External,
                ..BrokerConfig::default()
            };
            adjust(&mut c);
            c.validate().map(|_| ())
        };
        assert_eq!(external(|_| {}), Ok(()));
        assert!(external(|c| c.urls.clear()).is_err());
        assert!(external(|c| c.share_group = "a/b".into()).is_err());
        assert!(external(|c| c.qos = 2).is_err());
        assert!(external(|c| c.keep_alive_s = 1).is_err());
        assert!(external(|c| c.password = Some("x".into())).is_err());
        assert!(external(|c| c.client_id = Some(String::new())).is_err());
    }

    #[test]
    fn the_password_is_not_in_debug() {
        let c = BrokerConfig {
            password: Some("hunter2".into()),
            ..BrokerConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
