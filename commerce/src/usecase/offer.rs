//! A driver's answer to an offer. Accepting is two writes that must agree:
//! the matcher (through [`Offers`]) binds the driver, then the store
//! records the assignment (a stacked offer's under the stacking guard:
//! at most one other open order, not picked up). If the
//! store refuses (the order closed, or is
//! another driver's) or fails, the compensation undoes the matcher's side
//! and puts the order back as the store has it.

use engine::{DriverId, OfferId, OrderId};

use crate::ports::{LiveSide, Offers};
use crate::store::{AssignOutcome, Store};
use crate::{Error, Result};

/// Answers to offers, by `answer` (accept, decline) and `outcome`
/// (assigned, refused, fenced, declined).
pub const OFFER_ANSWERS_TOTAL: &str = "hexdash_offer_answers_total";

/// Assignments the database refused because the writer's fencing token
/// was stale (another node leads the region), by `write`.
pub const FENCED_WRITES_REFUSED_TOTAL: &str = "hexdash_fenced_writes_refused_total";

/// `driver_id` accepts `offer_id`: the order it was for, now the driver's.
pub async fn accept(
    store: &dyn Store,
    offers: &dyn Offers,
    live: &dyn LiveSide,
    offer_id: OfferId,
    driver_id: DriverId,
    now_ms: i64,
) -> Result<OrderId> {
    let (order_id, fence) = offers.accept(offer_id, driver_id, now_ms)?;
    // A stacked offer (the driver's second order) is recorded under the
    // stacking guard; any other under the one-driver-per-order guard.
    let assigned = if offers.stacked(order_id, driver_id) {
        store
            .assign_stacked_driver(order_id, driver_id, now_ms, fence)
            .await
    } else {
        store
            .assign_driver_fenced(order_id, driver_id, now_ms, fence)
            .await
    };
    match assigned {
        Ok(AssignOutcome::Applied(_)) => {
            metrics::counter!(OFFER_ANSWERS_TOTAL, "answer" => "accept", "outcome" => "assigned")
                .increment(1);
            Ok(order_id)
        }
        Ok(AssignOutcome::Refused(current)) => {
            // The store knows better (closed, or another driver): undo the
            // matcher's assignment and mirror what the store has.
            offers.undo_assignment(order_id, driver_id, now_ms);
            if let Some(order) = current {
                live.restore(&order, now_ms);
            }
            metrics::counter!(OFFER_ANSWERS_TOTAL, "answer" => "accept", "outcome" => "refused")
                .increment(1);
            Err(Error::conflict(
                "order_unavailable",
                "the order is no longer available",
            ))
        }
        Ok(AssignOutcome::Fenced { current }) => {
            // This node's matcher made the offer under a lease another node
            // has taken since (a pause, a partition): the database refuses
            // its token. The new leader offers the order again.
            offers.undo_assignment(order_id, driver_id, now_ms);
            tracing::warn!(
                %order_id,
                token = fence.map(|f| f.epoch),
                current,
                "assignment refused: this node's fencing token is stale (another node leads the region)"
            );
            metrics::counter!(FENCED_WRITES_REFUSED_TOTAL, "write" => "accept").increment(1);
            metrics::counter!(OFFER_ANSWERS_TOTAL, "answer" => "accept", "outcome" => "fenced")
                .increment(1);
            Err(Error::conflict(
                "lease_lost",
                "the node that made this offer no longer dispatches the order's region; \
                 the order is being offered again",
            ))
        }
        Ok(AssignOutcome::DriverBusy) => {
            // Another region's leader gave the driver an order meanwhile.
            offers.undo_assignment(order_id, driver_id, now_ms);
            offers.redispatch(order_id, now_ms);
            metrics::counter!(OFFER_ANSWERS_TOTAL, "answer" => "accept", "outcome" => "refused")
                .increment(1);
            Err(Error::conflict("driver_busy", "you already hold an order"))
        }
        Err(e) => {
            offers.undo_assignment(order_id, driver_id, now_ms);
            offers.redispatch(order_id, now_ms);
            Err(e.into())
        }
    }
}

/// `driver_id` declines `offer_id`; the order goes to another driver.
pub fn decline(
    offers: &dyn Offers,
    offer_id: OfferId,
    driver_id: DriverId,
    now_ms: i64,
) -> Result<()> {
    offers.decline(offer_id, driver_id, now_ms)?;
    metrics::counter!(OFFER_ANSWERS_TOTAL, "answer" => "decline", "outcome" => "declined")
        .increment(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use engine::Fence;
    use parking_lot::Mutex;

    use super::*;
    use crate::store::{Order, SqlStore};

    /// Records what the use-case asked of the matcher and the live side.
    #[derive(Default)]
    struct Recorder {
        order_id: Option<OrderId>,
        calls: Mutex<Vec<&'static str>>,
    }

    impl Offers for Recorder {
        fn accept(&self, _: OfferId, _: DriverId, _: i64) -> Result<(OrderId, Option<Fence>)> {
            self.calls.lock().push("accept");
            self.order_id
                .map(|id| (id, None))
                .ok_or(Error::NotFound("offer"))
        }
        fn decline(&self, _: OfferId, _: DriverId, _: i64) -> Result<()> {
            self.calls.lock().push("decline");
            Ok(())
        }
        fn undo_assignment(&self, _: OrderId, _: DriverId, _: i64) {
            self.calls.lock().push("undo");
        }
        fn redispatch(&self, _: OrderId, _: i64) {
            self.calls.lock().push("redispatch");
        }
    }

    impl LiveSide for Recorder {
        fn order_placed(&self, _: &Order, _: i64, _: i64) {
            self.calls.lock().push("placed");
        }
        fn status_changed(&self, _: &Order, _: i64, _: i64) {
            self.calls.lock().push("status");
        }
        fn restore(&self, _: &Order, _: i64) {
            self.calls.lock().push("restore");
        }
        fn reassigned(&self, _: &Order, _: Option<DriverId>, _: i64) {
            self.calls.lock().push("reassigned");
        }
    }

    /// The store refuses an assignment of an order it does not have: the
    /// matcher's side is undone and the driver hears `order_unavailable`.
    #[tokio::test]
    async fn a_refused_assignment_is_undone() {
        let store = SqlStore::connect("sqlite::memory:").await.unwrap();
        let recorder = Recorder {
            order_id: Some(OrderId::new()),
            ..Recorder::default()
        };
        let answer = accept(
            &store,
            &recorder,
            &recorder,
            OfferId::new(),
            DriverId::new(),
            1,
        )
        .await;
        assert!(
            matches!(
                answer,
                Err(Error::Conflict {
                    code: "order_unavailable",
                    ..
                })
            ),
            "{answer:?}"
        );
        assert_eq!(*recorder.calls.lock(), ["accept", "undo"]);
    }

    /// A refusal by the matcher is the answer; the store is not asked.
    #[tokio::test]
    async fn a_refused_offer_touches_nothing() {
        let store = SqlStore::connect("sqlite::memory:").await.unwrap();
        let recorder = Recorder::default();
        let answer = accept(
            &store,
            &recorder,
            &recorder,
            OfferId::new(),
            DriverId::new(),
            1,
        )
        .await;
        assert!(
            matches!(answer, Err(Error::NotFound("offer"))),
            "{answer:?}"
        );
        assert_eq!(*recorder.calls.lock(), ["accept"]);
    }
}
