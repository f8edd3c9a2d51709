//! This process as one node of a cluster: its id, its roles, its Redis
//! (when `redis_url` is set), and how the event stream's parts are made
//! for it.

use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::roles::Roles;

/// Tries of one stream entry per per-node consumer: their state is a
/// reload of the database, so a failure is rare and the next event of
/// the same order repairs it.
const STREAM_TRIES: u32 = 3;

/// The node's identity and shared services.
pub struct Node {
    /// The name in Redis (`cluster.node_id`, or random per start).
    pub id: String,
    /// Whether `id` was made up for this start (its stream group goes
    /// with it).
    pub ephemeral: bool,
    /// Redis, with `redis_url`.
    pub redis: Option<cluster::Redis>,
}

/// What `/readyz` says about the node.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeInfo {
    /// [`Node::id`].
    pub id: String,
    /// The roles' names.
    pub roles: Vec<&'static str>,
}

impl Node {
    /// The node `config` describes; fails on a `redis_url` that is not one
    /// (an unreachable Redis is an outage, not a start failure).
    pub fn new(config: &Config) -> anyhow::Result<Node> {
        let redis = config
            .redis_url
            .as_deref()
            .map(cluster::Redis::open)
            .transpose()
            .with_context(|| {
                format!(
                    "invalid redis_url {}",
                    config.redacted().redis_url.unwrap_or_default()
                )
            })?;
        let (id, ephemeral) = match &config.cluster.node_id {
            Some(id) => (id.clone(), false),
            // 48 random bits: unique among a cluster's nodes, short in logs.
            None => (
                uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
                true,
            ),
        };
        Ok(Node {
            id,
            ephemeral,
            redis,
        })
    }

    /// The reader of this node's own group of the event stream, for the
    /// consumers every node runs; a new group starts after `loaded_head`,
    /// the event log's head before the node loaded its state.
    pub fn stream_reader(
        &self,
        redis: &cluster::Redis,
        consumers: Vec<Arc<dyn events::Consumer>>,
        loaded_head: i64,
        config: &Config,
    ) -> cluster::StreamReader {
        // A new consumer name per start: what the previous run of a node
        // with a stable id left pending is claimed like a dead reader's.
        let incarnation = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let reader = cluster::StreamReader::new(
            redis.clone(),
            config.cluster.events_key(),
            format!("node:{}", self.id),
            format!("{}:{incarnation}", self.id),
            loaded_head,
            consumers,
            cluster::ReadConfig {
                batch: config.cluster.stream_batch,
                block_ms: config.cluster.stream_block_ms,
                claim_idle_ms: config.cluster.claim_idle_ms,
                handle_timeout_ms: config.events.handle_timeout_ms,
                tries: STREAM_TRIES,
            },
        );
        if self.ephemeral {
            reader.removing_group_at_stop()
        } else {
            reader
        }
    }

    /// The node as `/readyz` shows it.
    pub fn describe(&self, roles: &Roles) -> NodeInfo {
        NodeInfo {
            id: self.id.clone(),
            roles: roles.iter().map(|r| r.as_str()).collect(),
        }
    }
}

/// The Redis publisher's runner settings: the node's, but it never gives
/// an event up (a dead letter would be a hole in every node's stream);
/// through a Redis outage it retries at most every few seconds.
pub fn publisher_config(stream: &events::Config) -> events::Config {
    events::Config {
        max_attempts: u32::MAX,
        backoff_max_ms: stream.backoff_max_ms.min(5_000),
        ..stream.clone()
    }
}
