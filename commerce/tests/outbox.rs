//! The transactional outbox, through the store: every state change writes
//! its event with the right type, aggregate and actor; a change that does
//! not happen writes none; and 50 orders placed and stepped concurrently
//! get per-order versions 1, 2, 3 … with no gaps and no duplicates. Also
//! what the steps stamp on the order beside their events (acceptance and
//! readiness, the preparations the prep-aware matcher learns from). Each
//! test runs on SQLite and, when `HEXDASH_TEST_DATABASE_URL` names one, on
//! PostgreSQL in a schema of its own.

use std::sync::Arc;

use auth::Role;
use commerce::store::{
    AccountStore, BanOutcome, MenuItem, NewOrder, Order, OrderStore, PaymentStore, PlaceOutcome,
    Restaurant, RestaurantStore, SettleOutcome, Settlement, SqlStore, Transition,
    TransitionOutcome, User,
};
use engine::{DriverId, LatLng, MenuItemId, OrderId, OrderStatus, PaymentId, RestaurantId, UserId};
use sqlx::Row;

/// A store on SQLite (a file: several connections, like production) and,
/// if configured, one on PostgreSQL in a new schema, with what to drop.
async fn stores() -> Vec<(&'static str, SqlStore, Option<Cleanup>)> {
    let dir = tempfile_dir();
    let sqlite = SqlStore::connect(&format!("sqlite://{dir}/outbox.db"))
        .await
        .expect("sqlite");
    let mut all = vec![("sqlite", sqlite, None)];
    if let Some(base) = std::env::var("HEXDASH_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    {
        // Named like the api harness's schemas, so its sweep drops this one
        // if the test does not get to.
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let schema = format!("t_{now_s}_{}", uuid::Uuid::new_v4().simple());
        // (The drivers were installed by the SQLite store's connect.)
        let admin = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .expect("postgres");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let store = SqlStore::connect(&url).await.expect("postgres schema");
        all.push(("postgres", store, Some(Cleanup { admin, schema })));
    } else {
        eprintln!("HEXDASH_TEST_DATABASE_URL is not a postgres:// url: PostgreSQL skipped");
    }
    all
}

/// A PostgreSQL schema to drop after the test.
struct Cleanup {
    admin: sqlx::AnyPool,
    schema: String,
}

impl Cleanup {
    async fn run(self) {
        let drop = format!("DROP SCHEMA \"{}\" CASCADE", self.schema);
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&self.admin)
            .await
            .unwrap();
    }
}

/// A fresh directory under the system's temporary one (kept: small).
fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(format!("hexdash-outbox-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_string_lossy().into_owned()
}

const HERE: (f64, f64) = (57.7089, 11.9746);

struct World {
    customer: UserId,
    owner: UserId,
    driver: UserId,
    admin: UserId,
    restaurant: Restaurant,
    item: MenuItemId,
}

async fn user(store: &SqlStore, role: Role) -> UserId {
    let id = UserId::new();
    store
        .insert_user(&User {
            id,
            email: format!("{id}@example.com"),
            password_hash: "x".to_owned(),
            name: "N".to_owned(),
            phone: None,
            role,
            banned_at_ms: None,
            created_at_ms: 1,
            language: None,
        })
        .await
        .unwrap();
    id
}

async fn world(store: &SqlStore) -> World {
    let customer = user(store, Role::Customer).await;
    let owner = user(store, Role::Restaurant).await;
    let driver = user(store, Role::Driver).await;
    let admin = user(store, Role::Admin).await;
    let restaurant = Restaurant {
        id: RestaurantId::new(),
        owner_id: owner,
        name: "Pizza".to_owned(),
        location: LatLng::new(HERE.0, HERE.1).unwrap(),
        address: "Street 1".to_owned(),
        cuisines: vec!["pizza".to_owned()],
        hours_json: None,
        delivery_radius_m: 5_000,
        prep_time_s: 600,
        accepting_orders: true,
        created_at_ms: 1,
        updated_at_ms: 1,
    };
    store.insert_restaurant(&restaurant, owner).await.unwrap();
    let item = MenuItemId::new();
    store
        .insert_menu_items(
            &[MenuItem {
                id: item,
                restaurant_id: restaurant.id,
                category: "Pizza".to_owned(),
                name: "Margherita".to_owned(),
                description: String::new(),
                price_cents: 1_000,
                available: true,
                stock: None,
                position: 0,
                created_at_ms: 1,
                updated_at_ms: 1,
            }],
            owner,
        )
        .await
        .unwrap();
    World {
        customer,
        owner,
        driver,
        admin,
        restaurant,
        item,
    }
}

async fn place(store: &SqlStore, w: &World) -> (Order, PaymentId) {
    let location = w.restaurant.location;
    let payment_id = PaymentId::new();
    let new = NewOrder {
        order: Order {
            id: OrderId::new(),
            customer_id: w.customer,
            restaurant_id: w.restaurant.id,
            restaurant_owner_id: w.owner,
            status: OrderStatus::Placed,
            driver_id: None,
            pickup: location,
            dropoff: location,
            delivery_address: "Door 2".to_owned(),
            subtotal_cents: 0,
            delivery_fee_cents: 100,
            total_cents: 0,
            lines: Vec::new(),
            created_at_ms: 10,
            updated_at_ms: 10,
            accepted_at_ms: None,
            ready_at_ms: None,
            version: 0,
        },
        items: vec![(w.item, 1)],
        idempotency: None,
        payment_id,
        payment_method: "card".to_owned(),
        payment_token: "tok_ok".to_owned(),
        clear_cart: false,
    };
    match store.place_order(&new, w.customer).await.unwrap() {
        PlaceOutcome::Placed(order, charge) => {
            assert_eq!(order.version, 1, "placing makes version 1");
            (order, charge.id)
        }
        other => panic!("{other:?}"),
    }
}

async fn step(
    store: &SqlStore,
    order: OrderId,
    from: OrderStatus,
    to: OrderStatus,
    actor: UserId,
) -> Order {
    let t = Transition {
        order_id: order,
        from,
        to,
        actor_id: Some(actor),
        at_ms: 20,
        refund_id: PaymentId::new(),
    };
    match store.transition_order(&t).await.unwrap() {
        TransitionOutcome::Applied(order, _) => order,
        other => panic!("{from:?} → {to:?}: {other:?}"),
    }
}

async fn pay(store: &SqlStore, charge: PaymentId) -> i64 {
    let ok = Settlement::Succeeded {
        gateway_ref: "ch_1".to_owned(),
    };
    match store
        .settle_charge(charge, &ok, 1, PaymentId::new(), 15)
        .await
        .unwrap()
    {
        SettleOutcome::Settled { version, .. } => version,
        other => panic!("{other:?}"),
    }
}

/// (type, aggregate kind, aggregate id, version, actor) of every event of
/// the log, in insert order.
async fn log(store: &SqlStore) -> Vec<(String, String, String, i64, String)> {
    sqlx::query(
        "SELECT event_type, aggregate_kind, aggregate_id, aggregate_version, actor FROM events \
         ORDER BY insert_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("event_type"),
            r.get("aggregate_kind"),
            r.get("aggregate_id"),
            r.get("aggregate_version"),
            r.get("actor"),
        )
    })
    .collect()
}

/// The events `change` appended: (type, kind, id, actor).
async fn appended<F: std::future::Future<Output = ()>>(
    store: &SqlStore,
    change: F,
) -> Vec<(String, String, String, String)> {
    let before = log(store).await.len();
    change.await;
    log(store)
        .await
        .into_iter()
        .skip(before)
        .map(|(t, k, id, _, actor)| (t, k, id, actor))
        .collect()
}

fn ev(t: &str, kind: &str, id: impl ToString, actor: &str) -> (String, String, String, String) {
    (
        t.to_owned(),
        kind.to_owned(),
        id.to_string(),
        actor.to_owned(),
    )
}

fn user_actor(id: UserId) -> String {
    format!("user:{id}")
}

/// Every kind of state change writes its event type on its aggregate with
/// its actor (table-driven: change → expected events).
#[tokio::test]
async fn each_change_writes_its_event() {
    for (db, store, cleanup) in stores().await {
        eprintln!("{db}");
        let s = &store;
        let w = world(s).await;
        let (customer, owner, driver) = (
            user_actor(w.customer),
            user_actor(w.owner),
            user_actor(w.driver),
        );
        let payments = "system:payments";
        let r = w.restaurant.id;

        // An order's whole life.
        let mut placed = None;
        let got = appended(s, async { placed = Some(place(s, &w).await) }).await;
        let (order, charge) = placed.unwrap();
        let o = order.id;
        assert_eq!(got, [ev("order.placed", "order", o, &customer)], "{db}");
        let got = appended(s, async { assert_eq!(pay(s, charge).await, 2) }).await;
        assert_eq!(got, [ev("order.paid", "order", o, payments)], "{db}");
        use OrderStatus::*;
        let steps = [
            (Paid, Accepted, w.owner, "order.accepted", &owner),
            (Accepted, Preparing, w.owner, "order.preparing", &owner),
            (
                Preparing,
                ReadyForPickup,
                w.owner,
                "order.ready_for_pickup",
                &owner,
            ),
        ];
        for (i, (from, to, who, t, actor)) in steps.into_iter().enumerate() {
            let got = appended(s, async {
                assert_eq!(step(s, o, from, to, who).await.version, 3 + i as i64);
            })
            .await;
            assert_eq!(got, [ev(t, "order", o, actor)], "{db}: {t}");
        }
        let got = appended(s, async {
            let assigned = s.assign_driver(o, DriverId::from(w.driver.as_uuid()), 30).await.unwrap();
            assert!(matches!(assigned, commerce::store::AssignOutcome::Applied(ref a) if a.version == 6), "{assigned:?}");
        })
        .await;
        assert_eq!(got, [ev("order.assigned", "order", o, &driver)], "{db}");
        for (from, to, t) in [
            (ReadyForPickup, PickedUp, "order.picked_up"),
            (PickedUp, Delivered, "order.delivered"),
        ] {
            let got = appended(s, async {
                step(s, o, from, to, w.driver).await;
            })
            .await;
            assert_eq!(got, [ev(t, "order", o, &driver)], "{db}: {t}");
        }
        // The history is the order's events, steps with their driver.
        let history = s.order_events(o).await.unwrap();
        let statuses: Vec<_> = history
            .iter()
            .map(|e| (e.kind.as_str(), e.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("status", Placed),
                ("status", Paid),
                ("status", Accepted),
                ("status", Preparing),
                ("status", ReadyForPickup),
                ("assigned", ReadyForPickup),
                ("status", PickedUp),
                ("status", Delivered),
            ],
            "{db}"
        );
        assert_eq!(history[0].actor_id, Some(w.customer));
        assert_eq!(history[1].actor_id, None, "payments act as the system");
        assert_eq!(
            history[6].driver_id.map(|d| d.as_uuid()),
            Some(w.driver.as_uuid())
        );

        // A declined charge.
        let (failed, charge) = place(s, &w).await;
        let declined = Settlement::Failed {
            failure: "declined".to_owned(),
        };
        let got = appended(s, async {
            s.settle_charge(charge, &declined, 1, PaymentId::new(), 15)
                .await
                .unwrap();
        })
        .await;
        assert_eq!(
            got,
            [ev("payment.failed", "order", failed.id, payments)],
            "{db}"
        );

        // Cancelled after payment: the refund owed, then its settlement.
        for (to, t, settlement, refund_type) in [
            (
                Cancelled,
                "order.cancelled",
                Settlement::Succeeded {
                    gateway_ref: "re_1".to_owned(),
                },
                "refund.succeeded",
            ),
            (
                Rejected,
                "order.rejected",
                Settlement::Failed {
                    failure: "no".to_owned(),
                },
                "refund.failed",
            ),
        ] {
            let (order, charge) = place(s, &w).await;
            pay(s, charge).await;
            let who = if to == Cancelled { w.customer } else { w.owner };
            let mut refund = None;
            let got = appended(s, async {
                let t = Transition {
                    order_id: order.id,
                    from: Paid,
                    to,
                    actor_id: Some(who),
                    at_ms: 20,
                    refund_id: PaymentId::new(),
                };
                let TransitionOutcome::Applied(_, r) = s.transition_order(&t).await.unwrap() else {
                    panic!("stale")
                };
                refund = r;
            })
            .await;
            assert_eq!(got, [ev(t, "order", order.id, &user_actor(who))], "{db}");
            let refund = refund.expect("a refund is owed");
            let got = appended(s, async {
                s.settle_refund(refund.id, &settlement, 1, 25)
                    .await
                    .unwrap();
            })
            .await;
            assert_eq!(got, [ev(refund_type, "order", order.id, payments)], "{db}");
        }

        // Restaurants, menus, users: the actor is whoever made the change,
        // the owner or an admin.
        let admin = user_actor(w.admin);
        for (who, actor) in [(w.owner, &owner), (w.admin, &admin)] {
            let got = appended(s, async {
                let changed = Restaurant {
                    name: "Pizza 2".to_owned(),
                    updated_at_ms: 40,
                    ..w.restaurant.clone()
                };
                assert!(s.update_restaurant(&changed, who).await.unwrap());
            })
            .await;
            assert_eq!(
                got,
                [ev("restaurant.updated", "restaurant", r, actor)],
                "{db}"
            );
            let got = appended(s, async {
                let mut item = s.menu_item(w.item).await.unwrap().unwrap();
                item.price_cents = 1_200;
                assert!(s.update_menu_item(&item, who).await.unwrap());
            })
            .await;
            assert_eq!(got, [ev("menu.updated", "restaurant", r, actor)], "{db}");
        }
        for (banned, t) in [(true, "user.banned"), (false, "user.unbanned")] {
            let got = appended(s, async {
                let outcome = s.set_banned(w.customer, banned, w.admin, 60).await.unwrap();
                let BanOutcome::Changed(user) = outcome else {
                    panic!("{outcome:?}")
                };
                assert_eq!(user.banned_at_ms, banned.then_some(60));
            })
            .await;
            assert_eq!(got, [ev(t, "user", w.customer, &admin)], "{db}");
        }
        // The world's set-up wrote its own: restaurant and menu created.
        let created: Vec<String> = log(s)
            .await
            .into_iter()
            .filter(|(_, k, id, _, _)| k == "restaurant" && *id == r.to_string())
            .map(|(t, ..)| t)
            .collect();
        assert_eq!(
            created,
            [
                "restaurant.updated",
                "menu.updated",
                "restaurant.updated",
                "menu.updated",
                "restaurant.updated",
                "menu.updated"
            ],
            "{db}"
        );
        if let Some(c) = cleanup {
            c.run().await;
        }
    }
}

/// A change that does not happen (a lost compare-and-set, a refused
/// placement, a failed assignment, a ban or unban that changes nothing)
/// writes no event; and an event that cannot be written undoes its change.
#[tokio::test]
async fn a_change_that_does_not_happen_writes_no_event() {
    for (db, store, cleanup) in stores().await {
        let s = &store;
        let w = world(s).await;
        let (order, charge) = place(s, &w).await;
        pay(s, charge).await;
        let before = log(s).await;
        // Stale: the order is paid, not placed.
        let stale = Transition {
            order_id: order.id,
            from: OrderStatus::Placed,
            to: OrderStatus::Cancelled,
            actor_id: Some(w.customer),
            at_ms: 20,
            refund_id: PaymentId::new(),
        };
        assert!(matches!(
            s.transition_order(&stale).await.unwrap(),
            TransitionOutcome::Stale(Some(OrderStatus::Paid))
        ));
        // Settled already.
        let ok = Settlement::Succeeded {
            gateway_ref: "x".to_owned(),
        };
        assert!(matches!(
            s.settle_charge(charge, &ok, 1, PaymentId::new(), 30)
                .await
                .unwrap(),
            SettleOutcome::NotPending(_)
        ));
        // Out of stock: stock 0.
        let mut item = s.menu_item(w.item).await.unwrap().unwrap();
        item.stock = Some(0);
        s.update_menu_item(&item, w.owner).await.unwrap();
        let before = {
            let mut b = before;
            b.push(log(s).await.last().unwrap().clone());
            b
        };
        let mut new_order = place_request(&w);
        new_order.items = vec![(w.item, 1)];
        assert!(matches!(
            s.place_order(&new_order, w.customer).await.unwrap(),
            PlaceOutcome::OutOfStock { .. }
        ));
        // An assignment of an order that does not exist.
        let driver = DriverId::from(w.driver.as_uuid());
        assert!(matches!(
            s.assign_driver(OrderId::new(), driver, 30).await.unwrap(),
            commerce::store::AssignOutcome::Refused(None)
        ));
        // A ban or unban that changes nothing: unbanning a user who is not
        // banned, banning twice (the second keeps the first ban's time), an
        // unknown user.
        assert!(matches!(
            s.set_banned(w.customer, false, w.admin, 31).await.unwrap(),
            BanOutcome::Unchanged(ref u) if u.banned_at_ms.is_none()
        ));
        assert!(matches!(
            s.set_banned(UserId::new(), true, w.admin, 31)
                .await
                .unwrap(),
            BanOutcome::UnknownUser
        ));
        assert_eq!(log(s).await, before, "{db}: nothing appended");
        assert!(matches!(
            s.set_banned(w.customer, true, w.admin, 32).await.unwrap(),
            BanOutcome::Changed(_)
        ));
        let before = log(s).await;
        assert!(matches!(
            s.set_banned(w.customer, true, w.admin, 33).await.unwrap(),
            BanOutcome::Unchanged(ref u) if u.banned_at_ms == Some(32)
        ));
        assert_eq!(log(s).await, before, "{db}: a second ban appends nothing");

        // The other way round: when the event cannot be written, the change
        // is rolled back with it (SQLite: a trigger refuses the insert).
        if db == "sqlite" {
            sqlx::query(
                "CREATE TRIGGER refuse_events BEFORE INSERT ON events \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .execute(s.pool())
            .await
            .unwrap();
            let t = Transition {
                order_id: order.id,
                from: OrderStatus::Paid,
                to: OrderStatus::Cancelled,
                actor_id: Some(w.customer),
                at_ms: 20,
                refund_id: PaymentId::new(),
            };
            assert!(s.transition_order(&t).await.is_err());
            let now = s.order(order.id).await.unwrap().unwrap();
            assert_eq!(now.status, OrderStatus::Paid, "the step was rolled back");
            assert!(
                s.payments(order.id).await.unwrap().len() == 1,
                "no refund written"
            );
            assert_eq!(now.version, 2);
        }
        if let Some(c) = cleanup {
            c.run().await;
        }
    }
}

fn place_request(w: &World) -> NewOrder {
    let location = w.restaurant.location;
    NewOrder {
        order: Order {
            id: OrderId::new(),
            customer_id: w.customer,
            restaurant_id: w.restaurant.id,
            restaurant_owner_id: w.owner,
            status: OrderStatus::Placed,
            driver_id: None,
            pickup: location,
            dropoff: location,
            delivery_address: "Door 2".to_owned(),
            subtotal_cents: 0,
            delivery_fee_cents: 100,
            total_cents: 0,
            lines: Vec::new(),
            created_at_ms: 10,
            updated_at_ms: 10,
            accepted_at_ms: None,
            ready_at_ms: None,
            version: 0,
        },
        items: vec![(w.item, 1)],
        idempotency: None,
        payment_id: PaymentId::new(),
        payment_method: "card".to_owned(),
        payment_token: "tok_ok".to_owned(),
        clear_cart: false,
    }
}

/// 50 orders placed and stepped concurrently (and, per order, two steps
/// racing for it): every order's events have versions 1, 2, 3 … without
/// gaps or duplicates, one per change that happened, in the order the
/// changes happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_get_gapless_versions() {
    const ORDERS: usize = 50;
    for (db, store, cleanup) in stores().await {
        let store = Arc::new(store);
        let w = Arc::new(world(&store).await);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..ORDERS {
            let (s, w) = (store.clone(), w.clone());
            tasks.spawn(async move {
                let (order, charge) = place(&s, &w).await;
                let o = order.id;
                let mut versions = vec![1, pay(&s, charge).await];
                // Two racing steps: the owner accepts while the customer
                // cancels; exactly one wins.
                let accept = Transition {
                    order_id: o,
                    from: OrderStatus::Paid,
                    to: OrderStatus::Accepted,
                    actor_id: Some(w.owner),
                    at_ms: 20,
                    refund_id: PaymentId::new(),
                };
                let cancel = Transition {
                    to: OrderStatus::Cancelled,
                    actor_id: Some(w.customer),
                    ..accept
                };
                let (a, c) = tokio::join!(s.transition_order(&accept), s.transition_order(&cancel));
                let mut won = None;
                for outcome in [a.unwrap(), c.unwrap()] {
                    if let TransitionOutcome::Applied(order, _) = outcome {
                        assert!(won.is_none(), "both steps won");
                        versions.push(order.version);
                        won = Some(order.status);
                    }
                }
                if won == Some(OrderStatus::Accepted) && i % 2 == 0 {
                    let d = DriverId::from(w.driver.as_uuid());
                    if let commerce::store::AssignOutcome::Applied(a) =
                        s.assign_driver(o, d, 30).await.unwrap()
                    {
                        versions.push(a.version);
                    }
                    versions.push(
                        step(
                            &s,
                            o,
                            OrderStatus::Accepted,
                            OrderStatus::Preparing,
                            w.owner,
                        )
                        .await
                        .version,
                    );
                }
                (o, versions)
            });
        }
        let mut results = Vec::new();
        while let Some(done) = tasks.join_next().await {
            results.push(done.unwrap());
        }
        assert_eq!(results.len(), ORDERS);
        let log = log(&store).await;
        for (order, versions) in results {
            // What the store answered: 1, 2, 3 … in the order of the calls.
            let expected: Vec<i64> = (1..=versions.len() as i64).collect();
            assert_eq!(versions, expected, "{db}: {order}");
            // What the log holds for the order: the same, once each, in
            // insert order too.
            let stored: Vec<i64> = log
                .iter()
                .filter(|(_, k, id, _, _)| k == "order" && *id == order.to_string())
                .map(|(_, _, _, v, _)| *v)
                .collect();
            assert_eq!(stored, expected, "{db}: {order}");
            // And the aggregate's counter agrees.
            let last: i64 = sqlx::query_scalar(
                "SELECT version FROM event_aggregates WHERE aggregate_kind = 'order' AND aggregate_id = $1",
            )
            .bind(order.to_string())
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(last, expected.len() as i64, "{db}: {order}");
            let read = store.order(order).await.unwrap().unwrap();
            assert_eq!(read.version, last, "{db}: reads carry the version");
        }
        if let Some(c) = cleanup {
            c.run().await;
        }
    }
}

/// The steps to `accepted` and `ready_for_pickup` stamp the order with
/// their times; `recent_preparations` lists accepted → ready pairs, the
/// latest ready first, and nothing for orders not ready yet.
#[tokio::test]
async fn steps_stamp_acceptance_and_readiness() {
    for (db, store, cleanup) in stores().await {
        let w = world(&store).await;
        let at = |order_id, from, to, at_ms| Transition {
            order_id,
            from,
            to,
            actor_id: Some(w.owner),
            at_ms,
            refund_id: PaymentId::new(),
        };
        let mut orders = Vec::new();
        for (accepted_at, ready_at) in [(1_000, 9_000), (2_000, 5_000), (3_000, 4_000)] {
            let (order, charge) = place(&store, &w).await;
            pay(&store, charge).await;
            let accepted = store
                .transition_order(&at(
                    order.id,
                    OrderStatus::Paid,
                    OrderStatus::Accepted,
                    accepted_at,
                ))
                .await
                .unwrap();
            let TransitionOutcome::Applied(accepted, _) = accepted else {
                panic!("{db}: {accepted:?}");
            };
            assert_eq!(accepted.accepted_at_ms, Some(accepted_at), "{db}");
            assert_eq!(accepted.ready_at_ms, None, "{db}");
            let preparing = OrderStatus::Preparing;
            store
                .transition_order(&at(
                    order.id,
                    OrderStatus::Accepted,
                    preparing,
                    accepted_at + 1,
                ))
                .await
                .unwrap();
            store
                .transition_order(&at(
                    order.id,
                    preparing,
                    OrderStatus::ReadyForPickup,
                    ready_at,
                ))
                .await
                .unwrap();
            let read = store.order(order.id).await.unwrap().unwrap();
            assert_eq!(
                read.accepted_at_ms,
                Some(accepted_at),
                "{db}: kept by later steps"
            );
            assert_eq!(read.ready_at_ms, Some(ready_at), "{db}");
            orders.push(order.id);
        }
        // One accepted, not ready: not a preparation.
        let (open, charge) = place(&store, &w).await;
        pay(&store, charge).await;
        step(
            &store,
            open.id,
            OrderStatus::Paid,
            OrderStatus::Accepted,
            w.owner,
        )
        .await;

        let got = store.recent_preparations(10).await.unwrap();
        let pairs: Vec<(i64, i64)> = got
            .iter()
            .map(|p| (p.accepted_at_ms, p.ready_at_ms))
            .collect();
        assert_eq!(
            pairs,
            [(1_000, 9_000), (2_000, 5_000), (3_000, 4_000)],
            "{db}"
        );
        assert!(
            got.iter().all(|p| p.restaurant_id == w.restaurant.id),
            "{db}"
        );
        assert_eq!(store.recent_preparations(1).await.unwrap().len(), 1, "{db}");
        if let Some(c) = cleanup {
            c.run().await;
        }
    }
}

/// Fencing tokens (migration 0016): an assignment written with a region's
/// old epoch is refused and writes nothing; the current one passes; a
/// region nobody took refuses every token; and a fenced assignment keeps
/// one open order per driver.
#[tokio::test]
async fn fenced_assignments_need_the_current_epoch() {
    use commerce::store::AssignOutcome;
    use engine::{Fence, Region};
    for (db, s, cleanup) in stores().await {
        let w = world(&s).await;
        let driver = DriverId::from(w.driver.as_uuid());
        let (first, _) = place(&s, &w).await;
        let (second, _) = place(&s, &w).await;
        let region = Region::of_point(w.restaurant.location, engine::cells::CellResolution::Five);
        let name = region.lease_name();
        assert_eq!(s.lease_epoch(&name).await.unwrap(), None, "{db}");
        let nobody = Fence { region, epoch: 1 };
        assert_eq!(
            s.assign_driver_fenced(first.id, driver, 20, Some(nobody))
                .await
                .unwrap(),
            AssignOutcome::Fenced { current: None },
            "{db}: no node ever took the region"
        );
        // Node a takes the region (epoch 1), then node b (epoch 2).
        assert_eq!(s.bump_lease_epoch(&name, "node-a", 21).await.unwrap(), 1);
        assert_eq!(s.bump_lease_epoch(&name, "node-b", 22).await.unwrap(), 2);
        assert_eq!(s.lease_epoch(&name).await.unwrap(), Some(2));
        let events_before = log(&s).await.len();
        let old = Fence { region, epoch: 1 };
        assert_eq!(
            s.assign_driver_fenced(first.id, driver, 23, Some(old))
                .await
                .unwrap(),
            AssignOutcome::Fenced { current: Some(2) },
            "{db}: a's token is stale"
        );
        let unchanged = s.order(first.id).await.unwrap().unwrap();
        assert_eq!(unchanged.driver_id, None, "{db}");
        assert_eq!(log(&s).await.len(), events_before, "{db}: no event");
        let current = Fence { region, epoch: 2 };
        let assigned = s
            .assign_driver_fenced(first.id, driver, 24, Some(current))
            .await
            .unwrap();
        assert!(
            matches!(assigned, AssignOutcome::Applied(ref o) if o.driver_id == Some(driver)),
            "{db}: {assigned:?}"
        );
        // The same driver on a second open order under a token: refused by
        // the database (another region's leader would get this).
        assert_eq!(
            s.assign_driver_fenced(second.id, driver, 25, Some(current))
                .await
                .unwrap(),
            AssignOutcome::DriverBusy,
            "{db}"
        );
        assert_eq!(s.order(second.id).await.unwrap().unwrap().driver_id, None);
        if let Some(cleanup) = cleanup {
            cleanup.run().await;
        }
    }
}
