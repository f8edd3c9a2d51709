//! [`StreamPublisher`]: the outbox's events onto the Redis stream.
//!
//! It is an ordinary [`events::Consumer`] of the event log, so it gets
//! every published event in global id order, at least once, with its
//! position in the database like any consumer: a crash between the `XADD`
//! and the recorded position adds nothing twice, because an entry's id is
//! the event's global id and Redis refuses an id not above the stream's
//! last. The same holds when two relay nodes both publish: each batch
//! starts after the stream's last entry, and a batch that raced another
//! fails whole, is retried, and then skips what the other added.

use async_trait::async_trait;
use events::{Consumer, Event, HandleError};
use redis::streams::StreamRangeReply;

use crate::codec;
use crate::metrics;
use crate::redis_conn::Redis;

/// The publisher's consumer name: its position in `event_consumers`.
pub const NAME: &str = "redis_stream";

/// Appends events to the stream at `key` (`XADD … MAXLEN ~`).
pub struct StreamPublisher {
    redis: Redis,
    key: String,
    max_len: u64,
}

impl StreamPublisher {
    /// A publisher onto the stream `key`, trimmed to about `max_len`
    /// entries.
    pub fn new(redis: Redis, key: String, max_len: u64) -> Self {
        Self {
            redis,
            key,
            max_len,
        }
    }

    /// The global id of the stream's last entry (0 for an empty or
    /// missing stream).
    async fn last_published(&self) -> Result<i64, crate::Error> {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(&self.key).arg("+").arg("-").arg("COUNT").arg(1);
        let reply: StreamRangeReply = self.redis.query(&cmd).await?;
        Ok(reply
            .ids
            .first()
            .and_then(|entry| codec::event_id(&entry.id))
            .unwrap_or(0))
    }

    async fn publish(&self, events: &[Event]) -> Result<(), HandleError> {
        let outcome = async {
            let last = self.last_published().await?;
            let mut pipe = redis::pipe();
            let mut count = 0u64;
            for event in events.iter().filter(|e| e.id > last) {
                let xadd = pipe
                    .cmd("XADD")
                    .arg(&self.key)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(self.max_len)
                    .arg(codec::entry_id(event.id));
                for (name, value) in codec::encode(event) {
                    xadd.arg(name).arg(value);
                }
                xadd.ignore();
                count += 1;
            }
            if count > 0 {
                self.redis.query::<()>(&pipe).await?;
                ::metrics::counter!(metrics::STREAM_PUBLISHED).increment(count);
            }
            Ok::<_, crate::Error>(())
        };
        outcome.await.map_err(|e| {
            ::metrics::counter!(metrics::REDIS_ERRORS, "op" => "publish").increment(1);
            Box::new(e) as HandleError
        })
    }
}

#[async_trait]
impl Consumer for StreamPublisher {
    fn name(&self) -> &str {
        NAME
    }

    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        self.publish(std::slice::from_ref(event)).await
    }

    fn handles_many(&self) -> bool {
        true
    }

    async fn handle_many(&self, events: &[Event]) -> Result<(), HandleError> {
        self.publish(events).await
    }
}
