//! The [`Consumer`] trait: what the stream delivers to.

use async_trait::async_trait;

use crate::kind::EventType;
use crate::model::Event;

/// Why a consumer could not handle an event; its text goes to the log and,
/// after the last try, to the dead letter.
pub type HandleError = Box<dyn std::error::Error + Send + Sync>;

/// An in-process subscriber to the event stream (the live order board, the
/// matcher's trigger, the search catalog, one per webhook endpoint …).
///
/// Each consumer gets a runner task of its own: it receives every event it
/// [`wants`](Consumer::wants) after its stored position, in global id
/// order (so in version order per aggregate), **at least once**: after a
/// crash the events since its last recorded position come again, so
/// `handle` must deduplicate by [`Event::id`] (or be idempotent). A replayed
/// dead letter arrives out of order, after later events. The runner bounds
/// every call by `Config::handle_timeout_ms` and drops the future when it
/// runs over, so `handle` must be cancel-safe (an HTTP call is).
#[async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// The consumer's stable name: the key of its position and dead
    /// letters, and a metric label (so from a small fixed set, never
    /// client input). Renaming it starts it again from the beginning.
    fn name(&self) -> &str;

    /// The `consumer` label of the stream's metrics; the name by default.
    /// Consumers made per client-chosen thing (one per webhook endpoint)
    /// answer one fixed label for all of them, so series stay few and no
    /// id reaches a label.
    fn metric_label(&self) -> &str {
        self.name()
    }

    /// Whether to deliver events of this type; the others are skipped (the
    /// position still moves past them). All types by default.
    fn wants(&self, event_type: EventType) -> bool {
        let _ = event_type;
        true
    }

    /// Handles one event. An error (or running over the timeout) is a
    /// failed try: the runner retries with backoff and, after the last
    /// try, dead-letters the event and moves on.
    async fn handle(&self, event: &Event) -> Result<(), HandleError>;

    /// Whether the runner should hand this consumer the events it wants of
    /// each batch it reads together ([`Consumer::handle_many`]), so one
    /// transaction can serve many events. No by default.
    fn handles_many(&self) -> bool {
        false
    }

    /// Handles `events` (at least two, each wanted, in id order) in one
    /// go. It is tried once per batch, within the same timeout as one
    /// event: on an error, a panic or the timeout the runner delivers the
    /// batch one event at a time through [`Consumer::handle`], with the
    /// usual retries and dead letters, so whatever part of the batch
    /// took effect comes again (which deduplication by id makes
    /// harmless, as for any redelivery). One at a time by default.
    async fn handle_many(&self, events: &[Event]) -> Result<(), HandleError> {
        for event in events {
            self.handle(event).await?;
        }
        Ok(())
    }
}
