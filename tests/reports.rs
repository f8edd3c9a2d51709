//! Reports against a seeded scenario run through the real server: 513
//! orders over three days in Europe/Stockholm (the middle one the 23-hour
//! day of the spring change), at three restaurants with a courier each,
//! placed, paid or declined, cancelled by customers and admins, rejected,
//! prepared, carried over MQTT offers and delivered, reviewed and some
//! reviews hidden, couriers going online and offline, all on a
//! `ManualClock`. The test keeps its own record of what it did and
//! computes every figure from it independently; the reports must equal
//! that, again after a rebuild from scratch, and again after a restart
//! that redelivers the whole stream to the projection (nothing counts
//! twice). On SQLite, and on PostgreSQL when `HEXDASH_TEST_DATABASE_URL`
//! is set.

mod common;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use clock::Clock;
use common::*;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

const ZONE: &str = "Europe/Stockholm";
/// The scenario's days (local dates); the 29th has 23 hours.
const DAYS: [(i16, i8, i8); 3] = [(2026, 3, 28), (2026, 3, 29), (2026, 3, 30)];
/// Restaurants about 10 km apart, each beyond the others' couriers'
/// offer radius (`max_radius_m` below), so each courier carries its own
/// restaurant's orders.
const RESTAURANTS: [(f64, f64); 3] = [(57.7089, 11.9746), (57.8000, 11.9746), (57.7089, 12.1500)];
const ORDERS_PER_RESTAURANT_DAY: usize = 57;
const MIN: i64 = 60_000;
/// The server's default on-time target (`api.report_on_time_s`).
const ON_TIME_MS: i64 = 45 * MIN;
/// The statuses as the report's figures name them.
const STATUSES: [&str; 10] = [
    "placed",
    "paid",
    "payment_failed",
    "accepted",
    "rejected",
    "preparing",
    "ready_for_pickup",
    "picked_up",
    "delivered",
    "cancelled",
];

/// A small deterministic generator (SplitMix64): the scenario is the same
/// every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn percent(&mut self) -> u64 {
        self.next() % 100
    }
}

/// How an order ends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    Declined,
    CustomerCancels,
    Rejected,
    AdminCancels,
    Delivered,
}

/// One step the scenario takes, at its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Place(usize),
    CustomerCancel(usize),
    Reject(usize),
    Accept(usize),
    Preparing(usize),
    AdminCancel(usize),
    Ready(usize),
    PickUp(usize),
    Deliver(usize),
    Review(usize),
    Hide(usize),
    Online(usize),
    Offline(usize),
}

/// The test's own record of an order.
#[derive(Clone, Debug, Default)]
struct Rec {
    restaurant: usize,
    /// Set when placed.
    id: String,
    total_cents: i64,
    charged_cents: i64,
    /// When it entered each status.
    entered: BTreeMap<&'static str, i64>,
    refunds: Vec<(i64, i64)>,
    restaurant_stars: Option<i64>,
    driver_stars: Option<i64>,
    hidden: bool,
    review_id: Option<String>,
}

/// What the scenario plans per order (its fate, review) besides times.
#[derive(Clone, Copy, Debug)]
struct Plan {
    restaurant: usize,
    fate: Fate,
    review: Option<(i64, Option<i64>, bool)>,
    /// When the food is ready (delivered orders).
    ready_at: i64,
    /// From ready (or the courier's offer, if later) to pickup.
    pickup_after: i64,
    /// From pickup to the door.
    drive: i64,
}

struct Scenario {
    plans: Vec<Plan>,
    steps: Vec<(i64, Step)>,
}

fn day_start(day: (i16, i8, i8), tz: &TimeZone) -> i64 {
    jiff::civil::date(day.0, day.1, day.2)
        .to_zoned(tz.clone())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn local(day: (i16, i8, i8), hour: i8, minute: i8, tz: &TimeZone) -> i64 {
    jiff::civil::date(day.0, day.1, day.2)
        .at(hour, minute, 0, 0)
        .to_zoned(tz.clone())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// Plans every order and the steps known in advance (a courier's pickup,
/// delivery and the review follow from its offers, see `run`).
fn plan(tz: &TimeZone) -> Scenario {
    let mut rng = Rng(0x5EED_2026);
    let mut plans = Vec::new();
    let mut steps = Vec::new();
    for day in DAYS {
        for r in 0..RESTAURANTS.len() {
            steps.push((local(day, 9, 0, tz) + r as i64 * 1000, Step::Online(r)));
            let mut t = local(day, 10, 0, tz) + r as i64 * MIN;
            for _ in 0..ORDERS_PER_RESTAURANT_DAY {
                t += rng.between(10 * MIN, 14 * MIN) + rng.between(0, 59) * 1000;
                let i = plans.len();
                let fate = match rng.percent() {
                    0..=3 => Fate::Declined,
                    4..=9 => Fate::CustomerCancels,
                    10..=14 => Fate::Rejected,
                    15..=18 => Fate::AdminCancels,
                    _ => Fate::Delivered,
                };
                let mut review = None;
                let (mut ready_at, mut pickup_after, mut drive) = (0, 0, 0);
                steps.push((t, Step::Place(i)));
                match fate {
                    Fate::Declined => {}
                    Fate::CustomerCancels => {
                        steps.push((t + rng.between(MIN, 3 * MIN), Step::CustomerCancel(i)));
                    }
                    Fate::Rejected => {
                        steps.push((t + rng.between(MIN, 3 * MIN), Step::Reject(i)));
                    }
                    Fate::AdminCancels | Fate::Delivered => {
                        let accepted = t + rng.between(MIN, 4 * MIN);
                        steps.push((accepted, Step::Accept(i)));
                        if rng.percent() < 50 {
                            steps.push((accepted + rng.between(1_000, MIN), Step::Preparing(i)));
                        }
                        if fate == Fate::AdminCancels {
                            steps.push((
                                accepted + rng.between(2 * MIN, 5 * MIN),
                                Step::AdminCancel(i),
                            ));
                        } else {
                            ready_at = accepted + rng.between(8 * MIN, 30 * MIN);
                            steps.push((ready_at, Step::Ready(i)));
                            pickup_after = rng.between(MIN, 3 * MIN);
                            drive = rng.between(4 * MIN, 18 * MIN);
                            if rng.percent() < 60 {
                                let stars = rng.between(1, 5);
                                let driver = (rng.percent() < 70).then(|| rng.between(1, 5));
                                let hidden = rng.percent() < 15;
                                review = Some((stars, driver, hidden));
                            }
                        }
                    }
                }
                plans.push(Plan {
                    restaurant: r,
                    fate,
                    review,
                    ready_at,
                    pickup_after,
                    drive,
                });
            }
            // Later if the courier is still busy then (see `run`).
            steps.push((local(day, 22, 0, tz) + r as i64 * 1000, Step::Offline(r)));
        }
    }
    // Stable: steps at one instant keep their planned order.
    steps.sort_by_key(|(t, _)| *t);
    Scenario { plans, steps }
}

/// The running world: the app, its clock and the parties.
struct World {
    app: TestApp,
    clock: clock::ManualClock,
    admin: String,
    customer: User,
    owners: Vec<User>,
    restaurants: Vec<String>,
    items: Vec<String>,
    drivers: Vec<User>,
    couriers: Vec<MqttDriver>,
    courier_state: Vec<Courier>,
}

/// What the test knows of a courier's offers.
#[derive(Clone, Debug, Default)]
struct Courier {
    /// Carrying an order.
    busy: bool,
    /// The offer it holds: (order, offer id).
    pending: Option<(usize, String)>,
    /// Its restaurant's accepted orders without a courier, oldest first.
    waiting: std::collections::VecDeque<usize>,
}

impl World {
    async fn post_ok(&self, path: &str, token: &str, body: Value) -> Value {
        let (status, r) = self.app.post(path, Some(token), body).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {r}");
        r
    }

    async fn step(&self, order: &str, who: &str, status: &str) {
        self.post_ok(
            &format!("/v1/orders/{order}/status"),
            who,
            json!({ "status": status }),
        )
        .await;
    }

    /// Waits for the order's refund to go through (the saga settles it in
    /// the background: the clock must not move meanwhile, so its event's
    /// time is the cancellation's); its amount.
    async fn refund_settled(&self, order: &str) -> i64 {
        eventually(async || {
            let (status, r) = self
                .app
                .get(&format!("/v1/orders/{order}/payments"), Some(&self.admin))
                .await;
            assert_eq!(status, 200, "{r}");
            r["payments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["kind"] == "refund" && p["status"] == "succeeded")
                .map(|p| p["amount_cents"].as_i64().unwrap())
        })
        .await
    }

    /// Lets courier `d`'s matcher catch up: when the courier is free, has
    /// no offer and orders of its restaurant wait, waits for the offer
    /// (of whichever the matcher chooses) and keeps it; the order then
    /// offered, if any. Steps
    /// are taken faster than the matcher reacts; waiting here keeps its
    /// choices those of a world that moves at the clock's pace.
    async fn settle(&mut self, d: usize, recs: &[Rec]) -> Option<usize> {
        let c = &mut self.courier_state[d];
        if c.busy || c.pending.is_some() || c.waiting.is_empty() {
            return None;
        }
        let (order, offer_id) = loop {
            let msg = tokio::time::timeout(WAIT, self.couriers[d].offers.recv()).await;
            let Ok(Some(msg)) = msg else {
                panic!("courier {d} got no offer; waiting: {:?}", c.waiting);
            };
            if msg["type"] == "offer" {
                let id = msg["order_id"].as_str().unwrap();
                let i = recs.iter().position(|r| r.id == id).unwrap();
                break (i, msg["offer_id"].as_str().unwrap().to_owned());
            }
        };
        assert!(c.waiting.contains(&order), "an offer of a waiting order");
        c.waiting.retain(|o| *o != order);
        c.pending = Some((order, offer_id));
        Some(order)
    }

    /// Courier `d` accepts its offer, which must be of order `i`.
    async fn take_offer(&mut self, d: usize, i: usize) {
        let (order, offer_id) = self.courier_state[d].pending.take().expect("an offer");
        assert_eq!(order, i, "courier {d}'s offer");
        self.courier_state[d].busy = true;
        let token = self.drivers[d].token.clone();
        self.post_ok(&format!("/v1/offers/{offer_id}/accept"), &token, json!({}))
            .await;
    }

    async fn availability(&self, d: usize, status: &str) {
        let driver = &self.drivers[d];
        let (code, r) = self
            .app
            .put(
                &format!("/v1/drivers/{}/availability", driver.id),
                &driver.token,
                json!({ "status": status }),
            )
            .await;
        assert_eq!(code, 200, "{r}");
        assert_eq!(r["status"], status, "{r}");
    }
}

async fn setup(
    clock: clock::ManualClock,
    database_url: Option<String>,
    dir: &std::path::Path,
) -> World {
    let app = start(clock.clone(), database_url, dir).await;
    let admin = app.admin_token().await;
    let customer = app.signup("customer", "customer").await;
    let mut owners = Vec::new();
    let mut restaurants = Vec::new();
    let mut items = Vec::new();
    for (r, (lat, lng)) in RESTAURANTS.iter().enumerate() {
        let owner = app.signup("owner", "restaurant").await;
        let (status, body) = app
            .post(
                "/v1/restaurants",
                Some(&owner.token),
                json!({"name": format!("Kök {r}, \"nr\" {r}"), "location": {"lat": lat, "lng": lng}, "address": "Gatan 1"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["restaurant_id"].as_str().unwrap().to_owned();
        let (status, menu) = app
            .post(
                &format!("/v1/restaurants/{id}/menu"),
                Some(&owner.token),
                json!({"items": [{"name": "Soppa", "price_cents": 9_000 + 500 * r as i64, "category": "Soppa"}]}),
            )
            .await;
        assert_eq!(status, 201, "{menu}");
        items.push(
            menu["items"][0]["menu_item_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        restaurants.push(id);
        owners.push(owner);
    }
    let mut drivers = Vec::new();
    let mut couriers = Vec::new();
    for _ in 0..RESTAURANTS.len() {
        // MQTT client ids start with the user id's first 8 hex digits,
        // a UUIDv7's time: step past them so the three differ.
        clock.advance(2 * MIN);
        let driver = app.signup("courier", "driver").await;
        couriers.push(MqttDriver::connect(&app, &driver).await);
        drivers.push(driver);
    }
    World {
        app,
        clock,
        admin,
        customer,
        owners,
        restaurants,
        items,
        drivers,
        couriers,
        courier_state: vec![Courier::default(); RESTAURANTS.len()],
    }
}

async fn start(
    clock: clock::ManualClock,
    database_url: Option<String>,
    dir: &std::path::Path,
) -> TestApp {
    spawn_app_in_with_clock(
        dir,
        |c| {
            if let Some(url) = database_url {
                c.database_url = url;
            }
            // Tokens and presence outlive the scenario's days.
            c.access_token_ttl_s = 30 * 24 * 3600;
            c.engine.presence_timeout_s = 30 * 24 * 3600;
            c.matcher.max_radius_m = 3_000.0;
            c.matcher.offer_timeout_s = 600;
            // A freed courier's next offer at once, not at the next
            // 2-second retry: the scenario waits for each offer.
            c.matcher.retry_interval_ms = 10;
            c.matcher.prep_aware = false;
            c.matcher.arrival_radius_m = 0.0;
        },
        Arc::new(clock),
    )
    .await
}

/// Runs the scenario; the test's record of it.
async fn run(w: &mut World, scenario: &Scenario) -> (Vec<Rec>, Vec<(usize, i64, i64)>) {
    let mut recs: Vec<Rec> = scenario
        .plans
        .iter()
        .map(|p| Rec {
            restaurant: p.restaurant,
            ..Rec::default()
        })
        .collect();
    let mut sessions: Vec<(usize, i64, i64)> = Vec::new();
    let mut online_since: Vec<Option<i64>> = vec![None; RESTAURANTS.len()];
    let mut pinged = vec![false; RESTAURANTS.len()];
    let admin = w.admin.clone();
    // The plan's steps and those the couriers' offers add, by time (then
    // in the order they were added).
    let mut queue = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |queue: &mut BinaryHeap<Reverse<(i64, u64, Step)>>, t: i64, step: Step| {
        seq += 1;
        queue.push(Reverse((t, seq, step)));
    };
    for &(t, step) in &scenario.steps {
        push(&mut queue, t, step);
    }
    while let Some(Reverse((t, _, step))) = queue.pop() {
        assert!(t >= w.clock.now_ms(), "the plan goes forward");
        w.clock.set(t);
        match step {
            Step::Place(i) => {
                let plan = scenario.plans[i];
                let r = plan.restaurant;
                let token = if plan.fate == Fate::Declined {
                    "tok_declined"
                } else {
                    "tok_ok"
                };
                let (lat, lng) = RESTAURANTS[r];
                let quantity = 1 + (i % 3) as i64;
                let o = w
                    .post_ok(
                        "/v1/orders",
                        &w.customer.token.clone(),
                        json!({"restaurant_id": w.restaurants[r],
                               "items": [{"menu_item_id": w.items[r], "quantity": quantity}],
                               "delivery": {"lat": lat - 0.01, "lng": lng, "address": "Avenyn 10"},
                               "payment": {"method": "card", "token": token}}),
                    )
                    .await;
                let rec = &mut recs[i];
                rec.id = o["order_id"].as_str().unwrap().to_owned();
                rec.total_cents = o["total_cents"].as_i64().unwrap();
                rec.entered.insert("placed", t);
                if plan.fate == Fate::Declined {
                    assert_eq!(o["status"], "payment_failed", "{o}");
                    rec.entered.insert("payment_failed", t);
                } else {
                    assert_eq!(o["status"], "paid", "{o}");
                    rec.entered.insert("paid", t);
                    rec.charged_cents = rec.total_cents;
                }
            }
            Step::CustomerCancel(i) => {
                let id = recs[i].id.clone();
                w.post_ok(
                    &format!("/v1/orders/{id}/cancel"),
                    &w.customer.token.clone(),
                    json!({}),
                )
                .await;
                recs[i].entered.insert("cancelled", t);
                let amount = w.refund_settled(&id).await;
                recs[i].refunds.push((t, amount));
            }
            Step::Reject(i) => {
                let id = recs[i].id.clone();
                let owner = w.owners[recs[i].restaurant].token.clone();
                w.step(&id, &owner, "rejected").await;
                recs[i].entered.insert("rejected", t);
                let amount = w.refund_settled(&id).await;
                recs[i].refunds.push((t, amount));
            }
            Step::Accept(i) | Step::Preparing(i) | Step::Ready(i) => {
                let (status, name) = match step {
                    Step::Accept(_) => ("accepted", "accepted"),
                    Step::Preparing(_) => ("preparing", "preparing"),
                    _ => ("ready_for_pickup", "ready_for_pickup"),
                };
                let id = recs[i].id.clone();
                let r = recs[i].restaurant;
                let owner = w.owners[r].token.clone();
                w.step(&id, &owner, status).await;
                recs[i].entered.insert(name, t);
                if name == "accepted" {
                    w.courier_state[r].waiting.push_back(i);
                }
            }
            Step::AdminCancel(i) => {
                let id = recs[i].id.clone();
                w.post_ok(
                    &format!("/v1/admin/orders/{id}/cancel"),
                    &admin,
                    json!({"reason": "kitchen fire"}),
                )
                .await;
                recs[i].entered.insert("cancelled", t);
                let amount = w.refund_settled(&id).await;
                recs[i].refunds.push((t, amount));
                // Its offer ends; the courier's next comes.
                let c = &mut w.courier_state[recs[i].restaurant];
                c.waiting.retain(|o| *o != i);
                if c.pending.as_ref().is_some_and(|(o, _)| *o == i) {
                    c.pending = None;
                }
            }
            Step::PickUp(i) => {
                let id = recs[i].id.clone();
                let d = recs[i].restaurant;
                w.take_offer(d, i).await;
                let token = w.drivers[d].token.clone();
                w.step(&id, &token, "picked_up").await;
                recs[i].entered.insert("picked_up", t);
                push(&mut queue, t + scenario.plans[i].drive, Step::Deliver(i));
            }
            Step::Deliver(i) => {
                let id = recs[i].id.clone();
                let d = recs[i].restaurant;
                let token = w.drivers[d].token.clone();
                w.step(&id, &token, "delivered").await;
                recs[i].entered.insert("delivered", t);
                w.courier_state[d].busy = false;
                if let Some((_, _, hidden)) = scenario.plans[i].review {
                    push(&mut queue, t + 2 * MIN, Step::Review(i));
                    if hidden {
                        push(&mut queue, t + 3 * MIN, Step::Hide(i));
                    }
                }
            }
            Step::Review(i) => {
                let (stars, driver, _) = scenario.plans[i].review.unwrap();
                let id = recs[i].id.clone();
                let mut body = json!({"restaurant": {"stars": stars}});
                if let Some(d) = driver {
                    body["driver"] = json!({ "stars": d });
                }
                let r = w
                    .post_ok(
                        &format!("/v1/orders/{id}/review"),
                        &w.customer.token.clone(),
                        body,
                    )
                    .await;
                recs[i].review_id = Some(r["review_id"].as_str().unwrap().to_owned());
                recs[i].restaurant_stars = Some(stars);
                recs[i].driver_stars = driver;
            }
            Step::Hide(i) => {
                let review = recs[i].review_id.clone().unwrap();
                w.post_ok(
                    &format!("/v1/admin/reviews/{review}/hide"),
                    &admin,
                    json!({"reason": "rude"}),
                )
                .await;
                recs[i].hidden = true;
            }
            Step::Online(d) => {
                let (lat, lng) = RESTAURANTS[d];
                w.couriers[d].ping(lat, lng, t).await;
                if !pinged[d] {
                    // The first fix makes the courier available: wait
                    // until the engine has it (the clock stands still).
                    pinged[d] = true;
                    let id = w.drivers[d].id.clone();
                    eventually(async || {
                        let (_, r) = w.app.get(&format!("/v1/drivers/{id}"), Some(&admin)).await;
                        (r["status"] == "available").then_some(())
                    })
                    .await;
                } else {
                    w.availability(d, "available").await;
                }
                online_since[d] = Some(t);
            }
            Step::Offline(d) => {
                let c = &w.courier_state[d];
                if c.busy || c.pending.is_some() || !c.waiting.is_empty() {
                    push(&mut queue, t + 5 * MIN, Step::Offline(d));
                    continue;
                }
                w.availability(d, "offline").await;
                let since = online_since[d].take().unwrap();
                sessions.push((d, since, t));
            }
        }
        for d in 0..RESTAURANTS.len() {
            // An order an admin will cancel keeps its offer until then.
            if let Some(i) = w.settle(d, &recs).await
                && scenario.plans[i].fate == Fate::Delivered
            {
                let plan = scenario.plans[i];
                push(
                    &mut queue,
                    plan.ready_at.max(t) + plan.pickup_after,
                    Step::PickUp(i),
                );
            }
        }
    }
    (recs, sessions)
}

// ---------------------------------------------------- expected, from the record

fn bucket_of(starts: &[i64], t: i64) -> Option<usize> {
    let i = starts.partition_point(|s| *s <= t);
    i.checked_sub(1)
}

fn figures_zero() -> BTreeMap<&'static str, i64> {
    let mut f: BTreeMap<&'static str, i64> = STATUSES.iter().map(|s| (*s, 0)).collect();
    for k in [
        "charges",
        "revenue_cents",
        "refunds",
        "refunded_cents",
        "net_cents",
    ] {
        f.insert(k, 0);
    }
    f
}

/// The series the record implies over buckets starting at `starts`
/// (the last ending at `end`): `[{start_ms, figures}]` and the totals.
fn expected_series(recs: &[Rec], starts: &[i64], end: i64) -> (Value, Value) {
    let mut buckets: Vec<BTreeMap<&'static str, i64>> =
        starts.iter().map(|_| figures_zero()).collect();
    let mut add = |t: i64, key: &'static str, n: i64| {
        if t < end
            && let Some(b) = bucket_of(starts, t)
        {
            *buckets[b].get_mut(key).unwrap() += n;
        }
    };
    for r in recs {
        for (status, t) in &r.entered {
            add(*t, status, 1);
        }
        if r.charged_cents > 0 {
            let t = r.entered["paid"];
            add(t, "charges", 1);
            add(t, "revenue_cents", r.charged_cents);
            add(t, "net_cents", r.charged_cents);
        }
        for (t, cents) in &r.refunds {
            add(*t, "refunds", 1);
            add(*t, "refunded_cents", *cents);
            add(*t, "net_cents", -cents);
        }
    }
    let mut totals = figures_zero();
    for b in &buckets {
        for (k, v) in b {
            *totals.get_mut(k).unwrap() += v;
        }
    }
    let series = starts
        .iter()
        .zip(&buckets)
        .map(|(s, f)| json!({"start_ms": s, "figures": f}))
        .collect();
    (Value::Array(series), json!(totals))
}

/// The p-th percentile (nearest rank) of `values`.
fn nearest_rank(values: &mut [i64], p_tenths: usize) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (values.len() * p_tenths).div_ceil(10);
    Some(values[rank - 1])
}

fn durations(recs: &[&Rec], from: &str, to: &str) -> Vec<i64> {
    recs.iter()
        .filter_map(|r| Some(r.entered.get(to)? - r.entered.get(from)?))
        .collect()
}

fn rate(n: i64, d: i64) -> Value {
    if d == 0 {
        Value::Null
    } else {
        json!(n as f64 / d as f64)
    }
}

fn mean(values: &[i64]) -> Value {
    rate(values.iter().sum(), values.len() as i64)
}

fn count(recs: &[&Rec], status: &str) -> i64 {
    recs.iter()
        .filter(|r| r.entered.contains_key(status))
        .count() as i64
}

fn expected_cohort(cohort: &[&Rec]) -> (Value, Value) {
    let orders = cohort.len() as i64;
    let paid = count(cohort, "paid");
    let cancelled = count(cohort, "cancelled");
    let rejected = count(cohort, "rejected");
    let figures = json!({
        "orders": orders,
        "paid": paid,
        "delivered": count(cohort, "delivered"),
        "cancelled": cancelled,
        "rejected": rejected,
        "payment_failed": count(cohort, "payment_failed"),
        "cancellation_rate": rate(cancelled, orders),
        "rejection_rate": rate(rejected, paid),
        "charged_cents": cohort.iter().map(|r| r.charged_cents).sum::<i64>(),
        "refunded_cents": cohort.iter().flat_map(|r| &r.refunds).map(|(_, c)| c).sum::<i64>(),
    });
    let funnel: Vec<Value> = [
        ("placed_to_accepted", "placed", "accepted"),
        ("accepted_to_ready", "accepted", "ready_for_pickup"),
        ("ready_to_picked_up", "ready_for_pickup", "picked_up"),
        ("picked_up_to_delivered", "picked_up", "delivered"),
        ("placed_to_delivered", "placed", "delivered"),
    ]
    .iter()
    .map(|(stage, from, to)| {
        let mut d = durations(cohort, from, to);
        json!({
            "stage": stage,
            "orders": d.len(),
            "p50_ms": nearest_rank(&mut d, 5),
            "p90_ms": nearest_rank(&mut d, 9),
        })
    })
    .collect();
    (figures, Value::Array(funnel))
}

fn expected_restaurants(w: &World, cohort: &[&Rec], only: Option<usize>) -> Value {
    let lines: Vec<(String, Value)> = (0..RESTAURANTS.len())
        .filter(|r| only.is_none_or(|o| o == *r))
        .filter_map(|r| {
            let mine: Vec<&Rec> = cohort.iter().copied().filter(|o| o.restaurant == r).collect();
            if mine.is_empty() {
                return None;
            }
            let mut prep = durations(&mine, "accepted", "ready_for_pickup");
            let stars: Vec<i64> = mine
                .iter()
                .filter(|o| !o.hidden)
                .filter_map(|o| o.restaurant_stars)
                .collect();
            let id = w.restaurants[r].clone();
            Some((
                id.clone(),
                json!({
                    "restaurant_id": id,
                    "name": format!("Kök {r}, \"nr\" {r}"),
                    "orders": mine.len(),
                    "delivered": count(&mine, "delivered"),
                    "cancelled": count(&mine, "cancelled"),
                    "rejected": count(&mine, "rejected"),
                    "revenue_cents": mine.iter().map(|o| o.charged_cents).sum::<i64>(),
                    "refunded_cents": mine.iter().flat_map(|o| &o.refunds).map(|(_, c)| c).sum::<i64>(),
                    "prepared": prep.len(),
                    "prep_p50_ms": nearest_rank(&mut prep, 5),
                    "prep_p90_ms": nearest_rank(&mut prep, 9),
                    "rating": mean(&stars),
                    "ratings": stars.len(),
                }),
            ))
        })
        .collect();
    let mut lines = lines;
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Array(lines.into_iter().map(|(_, v)| v).collect())
}

fn expected_drivers(
    w: &World,
    cohort: &[&Rec],
    sessions: &[(usize, i64, i64)],
    from: i64,
    to: i64,
) -> Value {
    let mut lines: Vec<(String, Value)> = (0..RESTAURANTS.len())
        .map(|d| {
            // Courier d carries restaurant d's orders.
            let carried: Vec<&Rec> = cohort
                .iter()
                .copied()
                .filter(|o| o.restaurant == d && o.entered.contains_key("delivered"))
                .collect();
            let on_time = carried
                .iter()
                .filter(|o| o.entered["delivered"] - o.entered["placed"] <= ON_TIME_MS)
                .count() as i64;
            let stars: Vec<i64> = carried
                .iter()
                .filter(|o| !o.hidden)
                .filter_map(|o| o.driver_stars)
                .collect();
            let active_ms: i64 = sessions
                .iter()
                .filter(|(s, _, _)| *s == d)
                .map(|(_, on, off)| ((*off).min(to) - (*on).max(from)).max(0))
                .sum();
            let id = w.drivers[d].id.clone();
            (
                id.clone(),
                json!({
                    "driver_id": id,
                    "deliveries": carried.len(),
                    "on_time": on_time,
                    "on_time_rate": rate(on_time, carried.len() as i64),
                    "active_ms": active_ms,
                    "active_hours": active_ms as f64 / 3_600_000.0,
                    "rating": mean(&stars),
                    "ratings": stars.len(),
                }),
            )
        })
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Array(lines.into_iter().map(|(_, v)| v).collect())
}

// ------------------------------------------------------------- reading reports

/// `v` with every fraction rounded to 12 significant decimals: the JSON
/// client reads a float's shortest text back to within a unit in the
/// last place, not always to the same bits.
fn rounded(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap();
            json!((f * 1e12).round() / 1e12)
        }
        Value::Array(a) => Value::Array(a.iter().map(rounded).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), rounded(v))).collect()),
        other => other.clone(),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    rounded(a) == rounded(b)
}

async fn report(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = app.get(path, Some(token)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The buckets as `[{start_ms, figures}]`, the shape the expectation has.
fn series_of(report: &Value) -> Value {
    Value::Array(
        report["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| json!({"start_ms": b["start_ms"], "figures": b["figures"]}))
            .collect(),
    )
}

/// Every report the test reads, by name.
async fn all_reports(w: &World, paths: &[(&str, String)]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (name, path) in paths {
        out.insert((*name).to_owned(), report(&w.app, &w.admin, path).await);
    }
    out.insert(
        "owner".to_owned(),
        report(&w.app, &w.owners[0].token, &paths[2].1).await,
    );
    out
}

async fn scenario_on(database_url: Option<String>) {
    let tz = TimeZone::get(ZONE).unwrap();
    let clock = clock::ManualClock::new(local(DAYS[0], 7, 0, &tz));
    let dir = TempDir::create();
    let scenario = plan(&tz);
    assert!(scenario.plans.len() >= 500);
    let started = std::time::Instant::now();
    let mut w = setup(clock.clone(), database_url.clone(), &dir.0).await;
    let (recs, sessions) = run(&mut w, &scenario).await;
    // Every fate happened.
    for fate in [
        Fate::Declined,
        Fate::CustomerCancels,
        Fate::Rejected,
        Fate::AdminCancels,
        Fate::Delivered,
    ] {
        assert!(
            scenario.plans.iter().filter(|p| p.fate == fate).count() >= 10,
            "{fate:?}"
        );
    }
    w.clock.advance(MIN);

    let from = day_start(DAYS[0], &tz);
    let to = day_start((2026, 3, 31), &tz);
    let q = format!("from=2026-03-28&to=2026-03-31&tz={ZONE}");
    let dst = (day_start(DAYS[1], &tz), day_start(DAYS[2], &tz));
    let paths = [
        ("daily", format!("/v1/admin/reports/orders?{q}")),
        (
            "hourly",
            format!("/v1/admin/reports/orders?from=2026-03-29&to=2026-03-30&tz={ZONE}&bucket=hour"),
        ),
        ("restaurants", format!("/v1/admin/reports/restaurants?{q}")),
        ("drivers", format!("/v1/admin/reports/drivers?{q}")),
    ];

    // Expected, from the record alone.
    let day_starts: Vec<i64> = DAYS.iter().map(|d| day_start(*d, &tz)).collect();
    let (daily_series, daily_totals) = expected_series(&recs, &day_starts, to);
    let hour_starts: Vec<i64> = (0..23).map(|h| dst.0 + h * 3_600_000).collect();
    assert_eq!(hour_starts[22] + 3_600_000, dst.1, "the 29th has 23 hours");
    let (hourly_series, hourly_totals) = expected_series(&recs, &hour_starts, dst.1);
    let cohort: Vec<&Rec> = recs
        .iter()
        .filter(|r| (from..to).contains(&r.entered["placed"]))
        .collect();
    assert_eq!(cohort.len(), recs.len());
    let day2: Vec<&Rec> = recs
        .iter()
        .filter(|r| (dst.0..dst.1).contains(&r.entered["placed"]))
        .collect();
    let (cohort_figures, funnel) = expected_cohort(&cohort);
    let (day2_figures, day2_funnel) = expected_cohort(&day2);
    let restaurants = expected_restaurants(&w, &cohort, None);
    let own = expected_restaurants(&w, &cohort, Some(0));
    let drivers = expected_drivers(&w, &cohort, &sessions, from, to);

    // The live projection catches up with the stream; then it is exact.
    let check = |got: &BTreeMap<String, Value>| {
        let d = &got["daily"];
        let h = &got["hourly"];
        [
            ("daily series", series_of(d), daily_series.clone()),
            ("daily totals", d["totals"].clone(), daily_totals.clone()),
            ("cohort", d["cohort"].clone(), cohort_figures.clone()),
            ("funnel", d["funnel"].clone(), funnel.clone()),
            ("hourly series", series_of(h), hourly_series.clone()),
            ("hourly totals", h["totals"].clone(), hourly_totals.clone()),
            ("day 2 cohort", h["cohort"].clone(), day2_figures.clone()),
            ("day 2 funnel", h["funnel"].clone(), day2_funnel.clone()),
            (
                "restaurants",
                got["restaurants"]["restaurants"].clone(),
                restaurants.clone(),
            ),
            ("owner's", got["owner"]["restaurants"].clone(), own.clone()),
            (
                "drivers",
                got["drivers"]["drivers"].clone(),
                drivers.clone(),
            ),
        ]
    };
    eprintln!("scenario ran in {:?}", started.elapsed());
    let deadline = tokio::time::Instant::now() + WAIT;
    let live = loop {
        let got = all_reports(&w, &paths).await;
        if check(&got).iter().all(|(_, a, b)| same(a, b)) || tokio::time::Instant::now() > deadline
        {
            break got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    for (name, got, want) in check(&live) {
        assert_eq!(rounded(&got), rounded(&want), "{name}");
    }
    assert_eq!(
        live["daily"]["buckets"][1]["start"],
        "2026-03-29T00:00:00+01:00"
    );
    assert_eq!(
        live["daily"]["buckets"][2]["start"],
        "2026-03-30T00:00:00+02:00"
    );
    assert_eq!(live["drivers"]["on_time_target_s"], 2700);

    // CSV: one row per bucket, the same figures.
    let resp = w
        .app
        .client
        .get(w.app.url(&paths[0].1))
        .bearer_auth(&w.admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = resp.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 1 + DAYS.len(), "{csv}");
    assert!(
        rows[0].starts_with("bucket_start,start_ms,end_ms,placed,paid,"),
        "{csv}"
    );
    assert_eq!(
        rows[1].split(',').nth(3).unwrap(),
        daily_series[0]["figures"]["placed"].to_string()
    );
    let resp = w
        .app
        .client
        .get(w.app.url(&paths[2].1))
        .bearer_auth(&w.admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    let csv = resp.text().await.unwrap();
    assert!(
        csv.contains(&format!("{},\"Kök 0, \"\"nr\"\" 0\",", w.restaurants[0])),
        "{csv}"
    );

    // Rebuilt from scratch: the same reports.
    let (status, r) = w
        .app
        .post("/v1/admin/reports/rebuild", Some(&w.admin), json!({}))
        .await;
    assert_eq!(status, 202, "{r}");
    assert!(r["replay_up_to"].as_i64().unwrap() > 0);
    let rebuilt = eventually(async || {
        let got = all_reports(&w, &paths).await;
        (got == live).then_some(got)
    })
    .await;
    assert_eq!(rebuilt, live);

    // A restart that redelivers every event to the projection (its
    // position set back to 0, its in-memory dedupe gone): nothing counts
    // twice.
    let database_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}/hexdash.db", dir.0.display()));
    w.app.stop().await;
    {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&database_url).await.unwrap();
        let moved = sqlx::query("UPDATE event_consumers SET position = 0 WHERE name = 'reports'")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(moved.rows_affected(), 1);
        pool.close().await;
    }
    let app = start(clock.clone(), Some(database_url), &dir.0).await;
    let w = World {
        app,
        couriers: Vec::new(),
        courier_state: Vec::new(),
        ..w
    };
    let replayed = eventually(async || {
        let got = all_reports(&w, &paths).await;
        (got == live).then_some(got)
    })
    .await;
    assert_eq!(replayed, live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_equal_the_scenario_on_sqlite() {
    scenario_on(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_equal_the_scenario_on_postgres() {
    match postgres_schema_url().await {
        Some(url) => scenario_on(Some(url)).await,
        None => eprintln!("HEXDASH_TEST_DATABASE_URL not set: the PostgreSQL run is skipped"),
    }
}
