//! A courier's state machine, pure: what it is doing, and for each thing
//! that happens, what it does next. The task in [`super`] turns the
//! [`Command`]s into drives, MQTT and REST calls and feeds their outcomes
//! back as [`Event`]s.

use routing::LatLng;

/// What a courier is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// No order: driving around the city, open to offers.
    Roaming,
    /// Driving to the restaurant of `order`.
    ToRestaurant(Job),
    /// At the restaurant, waiting for the food.
    AtRestaurant(Job),
    /// Carrying the food to the door.
    ToCustomer(Job),
}

/// The order a courier holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The order.
    pub order_id: String,
    /// The restaurant.
    pub pickup: LatLng,
    /// The door.
    pub dropoff: LatLng,
}

/// What happens to a courier.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// An offer arrived; `accept` is the courier's whim (drawn by the
    /// caller, so this stays deterministic).
    Offer {
        /// The offer to answer.
        offer_id: String,
        /// Take it or leave it.
        accept: bool,
    },
    /// The server confirmed the courier's acceptance of this order.
    Assigned(Job),
    /// The current drive reached its end.
    Arrived,
    /// The order is ready for pickup.
    FoodReady,
    /// The server recorded the pickup.
    PickedUp,
    /// The order ended without this courier (cancelled, reassigned) or a
    /// step was refused: back to roaming.
    OrderGone,
}

/// What the courier does next.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Nothing to do.
    Nothing,
    /// Answer an offer (`POST /v1/offers/{id}/accept` or `/decline`).
    Answer {
        /// The offer.
        offer_id: String,
        /// Accept or decline.
        accept: bool,
    },
    /// Drive to a place.
    DriveTo(LatLng),
    /// Drive somewhere else in the city (no order).
    Roam,
    /// Ask whether the food is ready (`GET /v1/orders/{id}`), at the poll
    /// interval, until it is.
    WaitForFood(String),
    /// Record the pickup (`picked_up`).
    PickUp(String),
    /// Record the delivery (`delivered`), then roam.
    Deliver(String),
}

impl Phase {
    /// The order held, if any.
    pub fn job(&self) -> Option<&Job> {
        match self {
            Phase::Roaming => None,
            Phase::ToRestaurant(j) | Phase::AtRestaurant(j) | Phase::ToCustomer(j) => Some(j),
        }
    }

    /// The next phase and command after `event`. Events that do not fit
    /// the phase (a late offer while busy, a stray arrival) leave it as it
    /// is; an offer while busy is declined.
    pub fn on(self, event: Event) -> (Phase, Command) {
        use Command as C;
        use Phase as P;
        match (self, event) {
            (P::Roaming, Event::Offer { offer_id, accept }) => {
                (P::Roaming, C::Answer { offer_id, accept })
            }
            (busy, Event::Offer { offer_id, .. }) => (
                busy,
                C::Answer {
                    offer_id,
                    accept: false,
                },
            ),
            (P::Roaming, Event::Assigned(job)) => {
                let to = job.pickup;
                (P::ToRestaurant(job), C::DriveTo(to))
            }
            (P::Roaming, Event::Arrived) => (P::Roaming, C::Roam),
            (P::ToRestaurant(job), Event::Arrived) => {
                let order = job.order_id.clone();
                (P::AtRestaurant(job), C::WaitForFood(order))
            }
            (P::AtRestaurant(job), Event::FoodReady) => {
                let order = job.order_id.clone();
                (P::AtRestaurant(job), C::PickUp(order))
            }
            (P::AtRestaurant(job), Event::PickedUp) => {
                let to = job.dropoff;
                (P::ToCustomer(job), C::DriveTo(to))
            }
            (P::ToCustomer(job), Event::Arrived) => (P::Roaming, C::Deliver(job.order_id)),
            (P::Roaming, Event::OrderGone) => (P::Roaming, C::Nothing),
            (_, Event::OrderGone) => (P::Roaming, C::Roam),
            (phase, _) => (phase, C::Nothing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            order_id: "o1".into(),
            pickup: LatLng {
                lat: 57.70,
                lng: 11.97,
            },
            dropoff: LatLng {
                lat: 57.71,
                lng: 11.98,
            },
        }
    }

    /// Runs `events` from `start`; the commands issued and the end phase.
    fn run(start: Phase, events: Vec<Event>) -> (Phase, Vec<Command>) {
        let mut phase = start;
        let mut commands = Vec::new();
        for e in events {
            let (next, c) = phase.on(e);
            phase = next;
            commands.push(c);
        }
        (phase, commands)
    }

    #[test]
    fn a_delivery_from_offer_to_door() {
        let (phase, commands) = run(
            Phase::Roaming,
            vec![
                Event::Offer {
                    offer_id: "f1".into(),
                    accept: true,
                },
                Event::Assigned(job()),
                Event::Arrived,
                Event::FoodReady,
                Event::PickedUp,
                Event::Arrived,
            ],
        );
        assert_eq!(
            commands,
            vec![
                Command::Answer {
                    offer_id: "f1".into(),
                    accept: true
                },
                Command::DriveTo(job().pickup),
                Command::WaitForFood("o1".into()),
                Command::PickUp("o1".into()),
                Command::DriveTo(job().dropoff),
                Command::Deliver("o1".into()),
            ]
        );
        assert_eq!(phase, Phase::Roaming);
    }

    #[test]
    fn busy_couriers_decline_and_keep_their_order() {
        let check = |phase: Phase| {
            let (after, c) = phase.clone().on(Event::Offer {
                offer_id: "f2".into(),
                accept: true,
            });
            assert_eq!(after, phase);
            assert_eq!(
                c,
                Command::Answer {
                    offer_id: "f2".into(),
                    accept: false
                }
            );
        };
        check(Phase::ToRestaurant(job()));
        check(Phase::AtRestaurant(job()));
        check(Phase::ToCustomer(job()));
    }

    #[test]
    fn a_lost_order_sends_the_courier_roaming() {
        for phase in [
            Phase::ToRestaurant(job()),
            Phase::AtRestaurant(job()),
            Phase::ToCustomer(job()),
        ] {
            assert_eq!(phase.on(Event::OrderGone), (Phase::Roaming, Command::Roam));
        }
        assert_eq!(
            Phase::Roaming.on(Event::OrderGone),
            (Phase::Roaming, Command::Nothing)
        );
    }

    #[test]
    fn roaming_ends_in_more_roaming_and_stray_events_change_nothing() {
        assert_eq!(
            Phase::Roaming.on(Event::Arrived),
            (Phase::Roaming, Command::Roam)
        );
        for (phase, event) in [
            (Phase::Roaming, Event::FoodReady),
            (Phase::Roaming, Event::PickedUp),
            (Phase::ToRestaurant(job()), Event::FoodReady),
            (Phase::ToCustomer(job()), Event::PickedUp),
            (Phase::AtRestaurant(job()), Event::Arrived),
            (Phase::ToCustomer(job()), Event::Assigned(job())),
        ] {
            assert_eq!(
                phase.clone().on(event.clone()),
                (phase.clone(), Command::Nothing),
                "{event:?}"
            );
        }
        assert_eq!(Phase::AtRestaurant(job()).job(), Some(&job()));
        assert_eq!(Phase::Roaming.job(), None);
    }
}
