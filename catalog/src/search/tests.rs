use std::collections::BTreeMap;

use engine::haversine_m;
use proptest::prelude::*;

use super::*;
use crate::catalog::{DishEntry, Rating, RestaurantEntry};
use crate::hours::{Day, HoursSpec, WeeklyHours};

const CENTRE: LatLng = LatLng {
    lat: 57.7089,
    lng: 11.9746,
};
const M_PER_DEG: f64 = 111_195.0;

/// The point `north_m`, `east_m` from the centre (flat approximation).
fn at(north_m: f64, east_m: f64) -> LatLng {
    LatLng {
        lat: CENTRE.lat + north_m / M_PER_DEG,
        lng: CENTRE.lng + east_m / (M_PER_DEG * CENTRE.lat.to_radians().cos()),
    }
}

fn rid(n: u128) -> RestaurantId {
    RestaurantId(Uuid::from_u128(n))
}

fn hours(zone: &str, every_day: (&str, &str)) -> WeeklyHours {
    let weekly = Day::ALL
        .iter()
        .map(|&d| (d, vec![(every_day.0.to_owned(), every_day.1.to_owned())]))
        .collect();
    WeeklyHours::parse(HoursSpec {
        time_zone: zone.to_owned(),
        weekly,
    })
    .unwrap()
}

fn restaurant(
    n: u128,
    name: &str,
    cuisines: &[&str],
    location: LatLng,
    radius_m: u32,
) -> RestaurantEntry {
    RestaurantEntry {
        id: rid(n),
        name: name.to_owned(),
        location,
        cuisines: cuisines.iter().map(|c| (*c).to_owned()).collect(),
        hours: None,
        delivery_radius_m: radius_m,
        accepting_orders: true,
    }
}

fn dish(n: u128, restaurant: u128, name: &str, category: &str) -> DishEntry {
    DishEntry {
        id: Uuid::from_u128(n),
        restaurant_id: rid(restaurant),
        name: name.to_owned(),
        category: category.to_owned(),
        price_cents: 10_000,
        available: true,
    }
}

/// Six restaurants around the centre; ids 1–6 by construction.
/// Distances from the centre: 6 (300 m), 1 (500 m), 2 (1 km), 3 (2 km),
/// 5 (15 km, radius 20 km); 4 is 20 km away with a 3 km radius.
fn fixture() -> Catalog {
    let mut c = Catalog::new();
    c.upsert_restaurant(restaurant(
        1,
        "Pizzeria Napoli",
        &["Italian"],
        at(0.0, 500.0),
        5_000,
    ));
    c.upsert_restaurant(RestaurantEntry {
        hours: Some(hours("Europe/Stockholm", ("08:00", "17:00"))),
        ..restaurant(
            2,
            "Café Åkerö",
            &["Swedish", "Café"],
            at(1_000.0, 0.0),
            3_000,
        )
    });
    c.upsert_restaurant(restaurant(
        3,
        "Sushi Ume",
        &["Japanese"],
        at(-2_000.0, 0.0),
        4_000,
    ));
    c.upsert_restaurant(restaurant(
        4,
        "Pizza Hut Far",
        &["Italian"],
        at(20_000.0, 0.0),
        3_000,
    ));
    c.upsert_restaurant(restaurant(
        5,
        "Big Burger",
        &["American"],
        at(-15_000.0, 0.0),
        20_000,
    ));
    c.upsert_restaurant(RestaurantEntry {
        accepting_orders: false,
        ..restaurant(6, "Cantina", &["Tex-Mex"], at(0.0, -300.0), 2_000)
    });
    for d in [
        dish(11, 1, "Pizza Margherita", "Pizza"),
        dish(12, 1, "Pizza Diavola", "Pizza"),
        dish(13, 1, "Tiramisù", "Dessert"),
        DishEntry {
            available: false,
            ..dish(14, 1, "Calzone", "Pizza")
        },
        dish(21, 2, "Köttbullar med potatismos", "Husman"),
        dish(22, 2, "Räksmörgås", "Smörgåsar"),
        dish(23, 2, "Kanelbulle", "Fika"),
        dish(31, 3, "Lax nigiri", "Nigiri"),
        dish(32, 3, "Pizza sushi", "Fusion"),
        dish(51, 5, "Cheeseburger", "Burgers"),
        dish(61, 6, "Burrito", "Mains"),
    ] {
        assert!(c.upsert_dish(d));
    }
    c
}

/// Monday 2025-11-24, 08:30 in Stockholm (CET): the café is open.
const MONDAY_MORNING_MS: i64 = 1_763_969_400_000;

fn ids(page: &Page) -> Vec<u128> {
    page.hits
        .iter()
        .map(|h| h.restaurant_id.as_uuid().as_u128())
        .collect()
}

#[test]
fn text_matching_and_ranking() {
    let c = fixture();
    let check = |text: &str, expected: &[u128]| {
        let q = Query {
            text: Some(text.to_owned()),
            ..Query::near(CENTRE)
        };
        let page = c.search(&q, MONDAY_MORNING_MS);
        assert_eq!(ids(&page), expected, "{text:?}");
        assert_eq!(page.total, expected.len(), "{text:?}");
    };
    check("", &[6, 1, 2, 3, 5]);
    check("  !? ", &[6, 1, 2, 3, 5]);
    check("piz", &[1, 3]); // name prefix (5) beats a dish prefix (1)
    check("PIZZA", &[1, 3]); // both exact dish matches: by distance
    check("pizza margherita", &[1]);
    check("pizzeria", &[1]);
    check("sushi", &[3]);
    check("japanese", &[3]);
    check("jap", &[3]);
    check("cafe", &[2]);
    check("Café", &[2]);
    check("åkerö", &[2]);
    check("akero", &[2]);
    check("köttbul", &[2]);
    check("kottbullar potatis", &[2]);
    check("räksmörgås", &[2]);
    check("smörgåsar", &[2]); // a category
    check("tiramisu", &[1]);
    check("tex mex", &[6]);
    check("Tex-Mex", &[6]);
    check("burger", &[5]); // name token "burger"; 5 is 15 km away but delivers here
    check("calzone", &[]); // unavailable dish
    check("hut", &[]); // out of its delivery radius
    check("pizza xyz", &[]);
    check("x", &[]);
}

#[test]
fn scores_and_matched_dishes() {
    let c = fixture();
    let q = Query {
        text: Some("pizza margherita".into()),
        ..Query::near(CENTRE)
    };
    let page = c.search(&q, MONDAY_MORNING_MS);
    let hit = &page.hits[0];
    // "pizza" and "margherita": exact dish tokens (2 each). ("pizza" is
    // not a prefix of "pizzeria".)
    assert_eq!(hit.score, 4.0);
    assert_eq!(
        hit.matched_dishes,
        vec![Uuid::from_u128(11), Uuid::from_u128(12)]
    );
    assert!((hit.distance_m - 500.0).abs() < 5.0, "{}", hit.distance_m);

    let q = Query {
        text: Some("piz".into()),
        ..Query::near(CENTRE)
    };
    let page = c.search(&q, MONDAY_MORNING_MS);
    let scores: Vec<f64> = page.hits.iter().map(|h| h.score).collect();
    assert_eq!(scores, vec![5.0, 1.0]);
    // Same score (a prefix of "pizza" in both): the shorter name first.
    assert_eq!(
        page.hits[0].matched_dishes,
        vec![Uuid::from_u128(12), Uuid::from_u128(11)]
    );
    assert_eq!(page.hits[1].matched_dishes, vec![Uuid::from_u128(32)]);

    // Without text: no score, no dishes.
    let page = c.search(&Query::near(CENTRE), MONDAY_MORNING_MS);
    assert!(
        page.hits
            .iter()
            .all(|h| h.score == 0.0 && h.matched_dishes.is_empty())
    );
    // Not accepting orders: still listed.
    assert_eq!(ids(&page)[0], 6);
}

#[test]
fn cuisine_filter_is_exact_but_forgiving_about_case_and_punctuation() {
    let c = fixture();
    let check = |cuisine: &str, expected: &[u128]| {
        let q = Query {
            cuisine: Some(cuisine.to_owned()),
            ..Query::near(CENTRE)
        };
        assert_eq!(
            ids(&c.search(&q, MONDAY_MORNING_MS)),
            expected,
            "{cuisine:?}"
        );
    };
    check("italian", &[1]);
    check("ITALIAN", &[1]);
    check("ital", &[]);
    check("tex mex", &[6]);
    check("Tex-Mex", &[6]);
    check("cafe", &[2]);
    check("Swedish", &[2]);
    check(" ", &[6, 1, 2, 3, 5]);
    let q = Query {
        cuisine: Some("italian".into()),
        text: Some("sushi".into()),
        ..Query::near(CENTRE)
    };
    assert_eq!(ids(&c.search(&q, MONDAY_MORNING_MS)), Vec::<u128>::new());
}

#[test]
fn open_now() {
    let c = fixture();
    let evening_ms = MONDAY_MORNING_MS + 9 * 3_600_000; // 17:30 local
    let check = |now_ms: i64, open_now: bool, expected: &[u128], cafe_open: Option<bool>| {
        let q = Query {
            open_now,
            ..Query::near(CENTRE)
        };
        let page = c.search(&q, now_ms);
        assert_eq!(ids(&page), expected, "now={now_ms} open_now={open_now}");
        let cafe = page.hits.iter().find(|h| h.restaurant_id == rid(2));
        assert_eq!(cafe.map(|h| h.open_now), cafe_open);
        assert!(
            page.hits
                .iter()
                .filter(|h| h.restaurant_id != rid(2))
                .all(|h| h.open_now)
        );
    };
    check(MONDAY_MORNING_MS, false, &[6, 1, 2, 3, 5], Some(true));
    check(MONDAY_MORNING_MS, true, &[6, 1, 2, 3, 5], Some(true));
    check(evening_ms, false, &[6, 1, 2, 3, 5], Some(false));
    check(evening_ms, true, &[6, 1, 3, 5], None);
}

#[test]
fn paging() {
    let c = fixture();
    let check = |offset: usize, limit: usize, expected: &[u128]| {
        let q = Query {
            offset,
            limit,
            ..Query::near(CENTRE)
        };
        let page = c.search(&q, MONDAY_MORNING_MS);
        assert_eq!(ids(&page), expected, "offset={offset} limit={limit}");
        assert_eq!(page.total, 5);
    };
    check(0, 20, &[6, 1, 2, 3, 5]);
    check(0, 2, &[6, 1]);
    check(1, 2, &[1, 2]);
    check(4, 2, &[5]);
    check(5, 2, &[]);
    check(usize::MAX, usize::MAX, &[]);
    check(0, 0, &[]);
    check(2, usize::MAX, &[2, 3, 5]);
}

#[test]
fn ties_break_by_distance_then_id() {
    let mut c = Catalog::new();
    for (n, east_m) in [(3, 100.0), (1, 200.0), (2, 100.0), (4, 50.0)] {
        c.upsert_restaurant(restaurant(
            n,
            "Thai Garden",
            &["Thai"],
            at(0.0, east_m),
            1_000,
        ));
    }
    c.upsert_restaurant(restaurant(
        5,
        "Garden Thai",
        &["Thai"],
        at(0.0, 900.0),
        1_000,
    ));
    let q = Query {
        text: Some("thai".into()),
        ..Query::near(CENTRE)
    };
    // All score 6 (exact name token): by distance, 2 and 3 tie on it.
    assert_eq!(ids(&c.search(&q, 0)), vec![4, 2, 3, 1, 5]);
}

#[test]
fn updates_are_reflected() {
    let mut c = fixture();
    let q = |text: &str| Query {
        text: Some(text.into()),
        ..Query::near(CENTRE)
    };
    // A dish becomes unavailable, then is removed; a dish moves.
    c.upsert_dish(DishEntry {
        available: false,
        ..dish(31, 3, "Lax nigiri", "Nigiri")
    });
    assert_eq!(ids(&c.search(&q("nigiri"), 0)), Vec::<u128>::new());
    c.upsert_dish(dish(31, 3, "Lax nigiri", "Nigiri"));
    assert_eq!(ids(&c.search(&q("nigiri"), 0)), vec![3]);
    c.upsert_dish(dish(31, 6, "Lax nigiri", "Nigiri"));
    assert_eq!(ids(&c.search(&q("nigiri"), 0)), vec![6]);
    assert!(c.remove_dish(Uuid::from_u128(31)));
    assert_eq!(ids(&c.search(&q("nigiri"), 0)), Vec::<u128>::new());
    // The far pizza place moves next door and widens its radius.
    c.upsert_restaurant(restaurant(
        4,
        "Pizza Hut",
        &["Italian"],
        at(100.0, 0.0),
        3_000,
    ));
    assert_eq!(ids(&c.search(&q("hut"), 0)), vec![4]);
    // A rename drops the old name's tokens.
    c.upsert_restaurant(restaurant(
        4,
        "Pizza Palace",
        &["Italian"],
        at(100.0, 0.0),
        3_000,
    ));
    assert_eq!(ids(&c.search(&q("hut"), 0)), Vec::<u128>::new());
    assert!(c.remove_restaurant(rid(1)));
    assert_eq!(ids(&c.search(&q("margherita"), 0)), Vec::<u128>::new());
}

// ---- Property test: the index against a brute-force scan of a model. ----

/// Words with shared prefixes, diacritics and punctuation.
const WORDS: &[&str] = &[
    "Pizza",
    "Pizzeria",
    "piz",
    "Café",
    "cafe",
    "Köttbullar",
    "kott",
    "Sushi",
    "Sushi-Bar",
    "ramen",
    "Thai",
    "curry",
    "Burger",
    "burgers",
    "Åsa",
    "ÄLG",
    "ost",
    "öst",
    "Tex-Mex",
    "grill",
    "Grillhuset",
    "McDonald's",
    "smörgås",
    "Räksmörgås",
];
const CUISINES: &[&str] = &[
    "Italian", "Swedish", "Thai", "Japanese", "Tex-Mex", "Café", "café",
];
const ZONES: &[&str] = &["Europe/Stockholm", "UTC", "America/New_York"];

#[derive(Clone, Debug)]
enum Op {
    Restaurant(RestaurantEntry),
    Dish(DishEntry),
    RemoveDish(Uuid),
    RemoveRestaurant(RestaurantId),
    Rate(RestaurantId, Rating),
}

fn words(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 1..=max).prop_map(|w| w.join(" "))
}

fn hours_strategy() -> impl Strategy<Value = Option<WeeklyHours>> {
    let preset = (
        prop::sample::select(ZONES),
        prop::sample::select(vec![
            ("11:00", "22:00"),
            ("18:00", "02:00"),
            ("00:00", "24:00"),
        ]),
        prop::collection::vec(any::<bool>(), 7),
    )
        .prop_map(|(zone, (open, close), days)| {
            let weekly: BTreeMap<Day, _> = Day::ALL
                .iter()
                .zip(days)
                .filter(|(_, on)| *on)
                .map(|(&d, _)| (d, vec![(open.to_owned(), close.to_owned())]))
                .collect();
            WeeklyHours::parse(HoursSpec {
                time_zone: zone.to_owned(),
                weekly,
            })
            .ok()
        });
    prop_oneof![Just(None), preset]
}

/// A point within roughly ±10 km of the centre.
fn point() -> impl Strategy<Value = LatLng> {
    (-10_000.0..10_000.0f64, -10_000.0..10_000.0f64).prop_map(|(n, e)| at(n, e))
}

fn restaurant_strategy() -> impl Strategy<Value = RestaurantEntry> {
    (
        0..12u128,
        words(3),
        prop::collection::vec(prop::sample::select(CUISINES), 0..3),
        point(),
        hours_strategy(),
        prop_oneof![0..3_000u32, 0..15_000u32, Just(50_000u32)],
        any::<bool>(),
    )
        .prop_map(
            |(n, name, cuisines, location, hours, radius_m, accepting)| RestaurantEntry {
                id: rid(n),
                name,
                location,
                cuisines: cuisines.into_iter().map(str::to_owned).collect(),
                hours,
                delivery_radius_m: radius_m,
                accepting_orders: accepting,
            },
        )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let dish = (0..60u128, 0..12u128, words(3), words(1), any::<bool>()).prop_map(
        |(n, r, name, category, available)| {
            Op::Dish(DishEntry {
                available: available || n % 3 != 0,
                ..dish(n, r, &name, &category)
            })
        },
    );
    prop_oneof![
        4 => restaurant_strategy().prop_map(Op::Restaurant),
        8 => dish,
        1 => (0..60u128).prop_map(|n| Op::RemoveDish(Uuid::from_u128(n))),
        1 => (0..12u128).prop_map(|n| Op::RemoveRestaurant(rid(n))),
        // Each review gives 1 to 5 stars: count..=5 count in all.
        3 => (0..12u128, 0..6u64, 0..=20u64).prop_map(|(n, count, extra)| {
            Op::Rate(rid(n), Rating { stars: count + extra.min(4 * count), count })
        }),
    ]
}

/// A word or a prefix of one, sometimes two.
fn query_text() -> impl Strategy<Value = Option<String>> {
    let prefix = (prop::sample::select(WORDS), 1..12usize)
        .prop_map(|(w, n)| w.chars().take(n).collect::<String>());
    prop_oneof![
        Just(None),
        prefix.clone().prop_map(Some),
        (prefix.clone(), prefix).prop_map(|(a, b)| Some(format!("{a} {b}"))),
    ]
}

fn query_strategy() -> impl Strategy<Value = Query> {
    (
        point(),
        query_text(),
        prop::option::of(prop::sample::select(vec![
            "italian", "THAI", "tex mex", "cafe", "sushi",
        ])),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![1.0, 3.5, 4.0, 4.5, 5.0])),
        prop::sample::select(vec![Sort::Relevance, Sort::Distance, Sort::Rating]),
        0..6usize,
        prop_oneof![0..8usize, Just(1_000)],
    )
        .prop_map(
            |(near, text, cuisine, open_now, min_rating, sort, offset, limit)| Query {
                near,
                text,
                cuisine: cuisine.map(str::to_owned),
                open_now,
                min_rating,
                sort,
                offset,
                limit,
            },
        )
}

/// The catalog's contents as plain maps, updated by the same operations.
#[derive(Default)]
struct Model {
    restaurants: BTreeMap<RestaurantId, RestaurantEntry>,
    dishes: BTreeMap<Uuid, DishEntry>,
    /// (stars, count) of the restaurants rated since they were added.
    ratings: BTreeMap<RestaurantId, (u64, u64)>,
}

impl Model {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Restaurant(r) => {
                self.restaurants.insert(r.id, r.clone());
            }
            Op::Dish(d) => {
                if self.restaurants.contains_key(&d.restaurant_id) {
                    self.dishes.insert(d.id, d.clone());
                }
            }
            Op::RemoveDish(id) => {
                self.dishes.remove(id);
            }
            Op::RemoveRestaurant(id) => {
                self.restaurants.remove(id);
                self.dishes.retain(|_, d| d.restaurant_id != *id);
                self.ratings.remove(id);
            }
            Op::Rate(id, r) => {
                if self.restaurants.contains_key(id) {
                    self.ratings.insert(*id, (r.stars, r.count));
                }
            }
        }
    }

    /// The search spelled out the slow way, with its own scoring table.
    fn search(&self, q: &Query, now_ms: i64) -> Page {
        let mut tokens: Vec<String> = Vec::new();
        for t in text::tokens(q.text.as_deref().unwrap_or("")) {
            if tokens.len() < MAX_QUERY_TOKENS && !tokens.contains(&t) {
                tokens.push(t);
            }
        }
        let cuisine = q
            .cuisine
            .as_deref()
            .map(text::phrase)
            .filter(|c| !c.is_empty());
        let mut ranked = Vec::new();
        for r in self.restaurants.values() {
            let distance_m = haversine_m(q.near, r.location);
            if distance_m > f64::from(r.delivery_radius_m) {
                continue;
            }
            if let Some(c) = &cuisine
                && !r.cuisines.iter().any(|rc| text::phrase(rc) == *c)
            {
                continue;
            }
            let dishes: Vec<&DishEntry> = self
                .dishes
                .values()
                .filter(|d| d.restaurant_id == r.id && d.available)
                .collect();
            // (token, exact weight, prefix weight)
            let mut fields: Vec<(String, f64, f64)> = Vec::new();
            fields.extend(text::tokens(&r.name).into_iter().map(|t| (t, 6.0, 5.0)));
            for c in &r.cuisines {
                fields.extend(text::tokens(c).into_iter().map(|t| (t, 4.0, 3.0)));
            }
            for d in &dishes {
                for s in [&d.name, &d.category] {
                    fields.extend(text::tokens(s).into_iter().map(|t| (t, 2.0, 1.0)));
                }
            }
            let mut score = 0.0;
            let mut all = true;
            for qt in &tokens {
                let best = fields
                    .iter()
                    .filter_map(|(t, exact, prefix)| {
                        if t == qt {
                            Some(*exact)
                        } else if t.starts_with(qt.as_str()) {
                            Some(*prefix)
                        } else {
                            None
                        }
                    })
                    .fold(None, |acc: Option<f64>, w| {
                        Some(acc.map_or(w, |a| a.max(w)))
                    });
                match best {
                    Some(w) => score += w,
                    None => all = false,
                }
            }
            if !all {
                continue;
            }
            let (stars, count) = self.ratings.get(&r.id).copied().unwrap_or((0, 0));
            if let Some(min) = q.min_rating
                && (count == 0 || (stars as f64) < min * count as f64)
            {
                continue;
            }
            let open = r.hours.as_ref().is_none_or(|h| h.is_open(now_ms));
            if q.open_now && !open {
                continue;
            }
            let mut matched: Vec<(u32, usize, Uuid)> = Vec::new();
            if !tokens.is_empty() {
                for d in &dishes {
                    let name = text::tokens(&d.name);
                    let s: u32 = tokens
                        .iter()
                        .map(|qt| {
                            if name.contains(qt) {
                                2
                            } else if name.iter().any(|t| t.starts_with(qt.as_str())) {
                                1
                            } else {
                                0
                            }
                        })
                        .sum();
                    if s > 0 {
                        matched.push((s, d.name.len(), d.id));
                    }
                }
            }
            matched.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            ranked.push(Hit {
                restaurant_id: r.id,
                distance_m,
                score,
                open_now: open,
                rating: Rating { stars, count },
                matched_dishes: matched
                    .iter()
                    .take(MAX_MATCHED_DISHES)
                    .map(|m| m.2)
                    .collect(),
            });
        }
        // Rated first, by average (floats: exact enough for these small
        // totals), then by count.
        let rating_key = |h: &Hit| match h.rating.count {
            0 => (1, 0.0, 0),
            n => (0, -(h.rating.stars as f64 / n as f64), u64::MAX - n),
        };
        ranked.sort_by(|a, b| {
            let by_distance = a
                .distance_m
                .total_cmp(&b.distance_m)
                .then(a.restaurant_id.cmp(&b.restaurant_id));
            match q.sort {
                Sort::Relevance => b.score.total_cmp(&a.score).then(by_distance),
                Sort::Distance => by_distance,
                Sort::Rating => {
                    let (ka, kb) = (rating_key(a), rating_key(b));
                    ka.0.cmp(&kb.0)
                        .then(ka.1.total_cmp(&kb.1))
                        .then(ka.2.cmp(&kb.2))
                        .then(by_distance)
                }
            }
        });
        let total = ranked.len();
        let hits = ranked
            .into_iter()
            .skip(q.offset)
            .take(q.limit.min(MAX_PAGE_LIMIT))
            .collect();
        Page { hits, total }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random sequences of writes (with updates, moves and removals), then
    /// random queries: the index answers exactly as the brute-force model.
    #[test]
    fn search_equals_brute_force(
        ops in prop::collection::vec(op_strategy(), 0..150),
        queries in prop::collection::vec(query_strategy(), 1..12),
        // Any instant within a few weeks of 2025-11-21.
        now_ms in 1_763_000_000_000i64..1_766_000_000_000i64,
    ) {
        let mut catalog = Catalog::new();
        let mut model = Model::default();
        for op in &ops {
            match op {
                Op::Restaurant(r) => catalog.upsert_restaurant(r.clone()),
                Op::Dish(d) => {
                    let stored = catalog.upsert_dish(d.clone());
                    prop_assert_eq!(stored, model.restaurants.contains_key(&d.restaurant_id));
                }
                Op::RemoveDish(id) => {
                    catalog.remove_dish(*id);
                }
                Op::RemoveRestaurant(id) => {
                    catalog.remove_restaurant(*id);
                }
                Op::Rate(id, r) => {
                    let listed = catalog.set_rating(*id, *r);
                    prop_assert_eq!(listed, model.restaurants.contains_key(id));
                }
            }
            model.apply(op);
        }
        prop_assert_eq!(catalog.restaurant_count(), model.restaurants.len());
        prop_assert_eq!(catalog.dish_count(), model.dishes.len());
        for q in &queries {
            prop_assert_eq!(catalog.search(q, now_ms), model.search(q, now_ms), "query {:?}", q);
        }
    }
}
