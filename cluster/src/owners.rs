//! [`OfferOwners`]: which node holds each offer, so a driver's answer
//! that lands on another node is forwarded to it (`{prefix}offer:{id}` →
//! the owner's advertised URL, expiring with the offer).

use crate::redis_conn::{Error, Redis};

/// The offer → owner records in Redis. Cheap to clone.
#[derive(Clone)]
pub struct OfferOwners {
    redis: Redis,
    key_prefix: String,
}

impl OfferOwners {
    /// The records under `{key_prefix}offer:`.
    pub fn new(redis: Redis, key_prefix: &str) -> OfferOwners {
        OfferOwners {
            redis,
            key_prefix: key_prefix.to_owned(),
        }
    }

    fn key(&self, offer_id: &str) -> String {
        format!("{}offer:{offer_id}", self.key_prefix)
    }

    /// Records that `owner_url` holds `offer_id`, for `ttl_ms`.
    pub async fn record(&self, offer_id: &str, owner_url: &str, ttl_ms: u64) -> Result<(), Error> {
        let mut set = redis::cmd("SET");
        set.arg(self.key(offer_id))
            .arg(owner_url)
            .arg("PX")
            .arg(ttl_ms.max(1));
        self.redis.query::<()>(&set).await
    }

    /// The URL of the node holding `offer_id`, while recorded.
    pub async fn owner(&self, offer_id: &str) -> Result<Option<String>, Error> {
        let mut get = redis::cmd("GET");
        get.arg(self.key(offer_id));
        self.redis.query(&get).await
    }
}
