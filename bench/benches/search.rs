//! Catalog search. Run: `cargo bench -p bench --bench search`.
//! Ids are stable (`catalog/search/<scenario>`): keep them so results
//! compare across commits.
//!
//! The city: 5,000 restaurants × 50 dishes in the 30 × 30 km Gothenburg
//! box, half of them downtown (`bench::menus`); queries come from points
//! spread the same way, at 18:40 local time on a Friday. The design target
//! is p99 under 10 ms at 10,000 queries/s on 2 cores, i.e. a query should
//! cost tens of microseconds.

use bench::menus::{self, GenRestaurant};
use bench::{City, EPOCH_MS};
use catalog::{Catalog, DishEntry, HoursSpec, Query, Rating, RestaurantEntry, Sort, WeeklyHours};
use criterion::{Criterion, criterion_group, criterion_main};
use engine::{LatLng, RestaurantId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;

const SEED: u64 = 20_261_121;
const RESTAURANTS: usize = 5_000;
const DISHES: usize = 50;
/// Friday 2025-11-21 17:40 UTC, 18:40 in Stockholm: dinner time.
const DINNER_MS: i64 = EPOCH_MS + 13 * 3_600_000;

fn hours_of(r: &GenRestaurant) -> Option<WeeklyHours> {
    let daily = r.hours?;
    let weekly = catalog::Day::ALL
        .iter()
        .map(|&d| (d, vec![(daily.open.to_owned(), daily.close.to_owned())]))
        .collect();
    let spec = HoursSpec {
        time_zone: menus::TIME_ZONE.to_owned(),
        weekly,
    };
    Some(WeeklyHours::parse(spec).expect("generated hours are valid"))
}

fn loaded_catalog(city: City) -> Catalog {
    let mut catalog = Catalog::new();
    for r in menus::restaurants(SEED, RESTAURANTS, DISHES, city) {
        let id = RestaurantId(r.id);
        catalog.upsert_restaurant(RestaurantEntry {
            id,
            name: r.name.clone(),
            location: bench::lat_lng(r.location),
            cuisines: r.cuisines.clone(),
            hours: hours_of(&r),
            delivery_radius_m: r.delivery_radius_m,
            accepting_orders: r.accepting_orders,
        });
        for d in r.dishes {
            catalog.upsert_dish(DishEntry {
                id: d.id,
                restaurant_id: id,
                name: d.name,
                category: d.category,
                price_cents: d.price_cents,
                available: d.available,
            });
        }
    }
    // Seven restaurants in ten rated, by 1 to 200 reviews of 1 to 5 stars.
    let mut rng = StdRng::seed_from_u64(SEED + 2);
    for r in menus::restaurants(SEED, RESTAURANTS, DISHES, city) {
        if rng.random_bool(0.7) {
            let count = rng.random_range(1..=200u64);
            let stars = rng.random_range(count..=5 * count);
            catalog.set_rating(RestaurantId(r.id), Rating { stars, count });
        }
    }
    catalog
}

/// Customers: half downtown, half anywhere in the city.
fn customer_points(city: City, n: usize) -> Vec<LatLng> {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let downtown = City {
        centre: city.centre,
        size_m: 5_000.0,
    };
    (0..n)
        .map(|_| {
            if rng.random_bool(0.5) {
                downtown.random_point(&mut rng)
            } else {
                city.random_point(&mut rng)
            }
        })
        .collect()
}

/// Builds the query for a customer point and its index in the sequence.
type MakeQuery = fn(LatLng, usize) -> Query;

fn search(c: &mut Criterion) {
    let city = City::gothenburg_30km();
    let catalog = loaded_catalog(city);
    let points = customer_points(city, 1024);
    // What one query sees: restaurants delivering to the point, on average.
    let covering: usize = points
        .iter()
        .map(|&p| catalog.search(&Query::near(p), DINNER_MS).total)
        .sum();
    eprintln!(
        "catalog: {} restaurants, {} dishes; {:.0} deliver to an average point",
        catalog.restaurant_count(),
        catalog.dish_count(),
        covering as f64 / points.len() as f64
    );

    let scenarios: [(&str, MakeQuery); 7] = [
        ("nearby_only", |p, _| Query::near(p)),
        ("text", |p, i| Query {
            text: Some(menus::POPULAR_QUERIES[i % menus::POPULAR_QUERIES.len()].to_owned()),
            ..Query::near(p)
        }),
        ("open_now", |p, _| Query {
            open_now: true,
            ..Query::near(p)
        }),
        // Worst case for text: a one-letter prefix matches nearly everything.
        ("text_one_letter", |p, _| Query {
            text: Some("p".to_owned()),
            ..Query::near(p)
        }),
        ("text_cuisine_open_now", |p, i| Query {
            text: Some(menus::POPULAR_QUERIES[i % menus::POPULAR_QUERIES.len()].to_owned()),
            cuisine: Some("italian".to_owned()),
            open_now: true,
            ..Query::near(p)
        }),
        // Ratings read each covering restaurant's listing.
        ("by_rating", |p, _| Query {
            sort: Sort::Rating,
            ..Query::near(p)
        }),
        ("min_rating_4", |p, _| Query {
            min_rating: Some(4.0),
            ..Query::near(p)
        }),
    ];
    let mut group = c.benchmark_group("catalog/search");
    for (name, make) in scenarios {
        let queries: Vec<Query> = points
            .iter()
            .enumerate()
            .map(|(i, &p)| make(p, i))
            .collect();
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(catalog.search(&queries[i], DINNER_MS))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
