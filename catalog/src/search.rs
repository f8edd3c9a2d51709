//! The read path: filter, rank and page.
//!
//! 1. The grid yields the restaurants whose own delivery radius covers the
//!    query point, with their haversine distance. Text and cuisine are
//!    resolved first, catalog-wide, into per-slot arrays, so each covering
//!    restaurant is filtered by array lookups.
//! 2. Filters: the minimum rating (an average of at least it; a restaurant
//!    not rated is left out), the cuisine (a restaurant cuisine equal to it as a
//!    [`text::phrase`]: case, diacritics, punctuation and spacing ignored),
//!    the text (every query token a prefix of some token of the name,
//!    a cuisine, or an available dish's name or category), and `open_now`.
//! 3. Ranking, by [`Sort`]: relevance (the sum over query tokens of each
//!    one's best match: name exact 6, name prefix 5, cuisine 4/3, dish name
//!    or category 2/1) descending, then distance ascending, then restaurant
//!    id (without text, distance then id); or distance, then id; or rating
//!    ([`Rating::better_first`]: the higher average, more reviews, rated
//!    before not rated), then distance, then id.
//! 4. Paging: `offset`/`limit` over the ranked list; only the page is fully
//!    sorted, and only its hits get their opening state and matched dishes.

use std::cmp::Ordering;

use engine::{LatLng, RestaurantId};
use uuid::Uuid;

use crate::catalog::{Catalog, Listing, Rating};
use crate::index::{ALWAYS_OPEN, Schedules};
use crate::text;

/// Query tokens used; the rest are ignored. Bounds a query's cost (each
/// token walks its prefix range of the token index) and keeps a score
/// (at most 6 per token) within a byte.
pub const MAX_QUERY_TOKENS: usize = 8;
/// Largest page; a larger `limit` is treated as this one.
pub const MAX_PAGE_LIMIT: usize = 100;
/// Dishes reported per hit.
pub const MAX_MATCHED_DISHES: usize = 5;

/// A search. Blank `text` or `cuisine` (nothing left after
/// [`text::tokens`]) means no such filter.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The delivery point.
    pub near: LatLng,
    pub text: Option<String>,
    pub cuisine: Option<String>,
    /// Only restaurants open at the search's `now_utc_ms`.
    pub open_now: bool,
    /// Only restaurants whose average rating is at least this (1 to 5);
    /// restaurants not rated are left out.
    pub min_rating: Option<f64>,
    /// The order of the results.
    pub sort: Sort,
    pub offset: usize,
    /// At most [`MAX_PAGE_LIMIT`].
    pub limit: usize,
}

impl Query {
    /// Restaurants delivering to `near`, nearest first, first page of 20.
    pub fn near(near: LatLng) -> Self {
        Self {
            near,
            text: None,
            cuisine: None,
            open_now: false,
            min_rating: None,
            sort: Sort::Relevance,
            offset: 0,
            limit: 20,
        }
    }
}

/// How results are ordered; every order ends with the restaurant id, so
/// equal inputs always page the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// Relevance to the text, then distance (distance alone without text).
    #[default]
    Relevance,
    /// Distance, nearest first.
    Distance,
    /// Rating, best first ([`Rating::better_first`]), then distance.
    Rating,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub hits: Vec<Hit>,
    /// Matches before paging.
    pub total: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub restaurant_id: RestaurantId,
    pub distance_m: f64,
    /// Relevance to the text; 0 without text.
    pub score: f64,
    pub open_now: bool,
    /// Its visible reviews' totals.
    pub rating: Rating,
    /// Available dishes whose name matched a query token, best first (most
    /// relevant, then shorter name, then id), at most [`MAX_MATCHED_DISHES`].
    pub matched_dishes: Vec<Uuid>,
}

/// A match before paging.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    score: u8,
    distance_m: f64,
    id: RestaurantId,
    slot: u32,
    schedule: u32,
}

/// Relevance descending, then distance ascending, then id.
fn by_relevance(a: &Candidate, b: &Candidate) -> Ordering {
    b.score
        .cmp(&a.score)
        .then(a.distance_m.total_cmp(&b.distance_m))
        .then(a.id.cmp(&b.id))
}

/// Distance ascending, then id.
fn by_distance(a: &Candidate, b: &Candidate) -> Ordering {
    a.distance_m.total_cmp(&b.distance_m).then(a.id.cmp(&b.id))
}

/// Rating ([`Rating::better_first`], as `catalog` has them), then
/// distance, then id.
fn by_rating(catalog: &Catalog) -> impl FnMut(&Candidate, &Candidate) -> Ordering + '_ {
    |a, b| {
        catalog
            .rating_at(a.slot)
            .better_first(catalog.rating_at(b.slot))
            .then(a.distance_m.total_cmp(&b.distance_m))
            .then(a.id.cmp(&b.id))
    }
}

/// Puts the first `end` of `matches` in `order` (a total order, so equal
/// inputs always page the same way), sorted, and drops the rest. Generic
/// so each order is inlined into the sort (a function pointer would cost
/// a call per comparison).
fn rank_first(
    matches: &mut Vec<Candidate>,
    end: usize,
    mut order: impl FnMut(&Candidate, &Candidate) -> Ordering,
) {
    // Only the first `end` need sorting.
    if end < matches.len() {
        matches.select_nth_unstable_by(end, &mut order);
        matches.truncate(end);
    }
    matches.sort_unstable_by(order);
}

/// Whether each schedule is open at one instant, computed at most once per
/// schedule, and the local minute-of-week at most once per time zone (the
/// conversion is the expensive part).
struct OpenNow<'a> {
    schedules: &'a Schedules,
    now_utc_ms: i64,
    /// Per schedule id: 0 not yet known, 1 open, 2 closed.
    known: Vec<u8>,
    zones: Vec<(&'a str, Option<u32>)>,
}

impl<'a> OpenNow<'a> {
    fn new(schedules: &'a Schedules, now_utc_ms: i64) -> Self {
        Self {
            schedules,
            now_utc_ms,
            known: vec![0; schedules.capacity()],
            zones: Vec::new(),
        }
    }

    fn is_open(&mut self, schedule: u32) -> bool {
        if schedule == ALWAYS_OPEN {
            return true;
        }
        let Some(known) = self.known.get_mut(schedule as usize) else {
            return true;
        };
        if *known == 0 {
            let open = self.schedules.get(schedule).is_none_or(|h| {
                let zone = h.time_zone();
                let minute = match self.zones.iter().find(|(z, _)| *z == zone) {
                    Some(&(_, m)) => m,
                    None => {
                        let m = h.minute_of_week(self.now_utc_ms);
                        self.zones.push((zone, m));
                        m
                    }
                };
                minute.is_some_and(|m| h.is_open_at_minute(m))
            });
            *known = if open { 1 } else { 2 };
        }
        *known == 1
    }
}

/// The query's tokens, deduplicated, at most [`MAX_QUERY_TOKENS`].
fn query_tokens(text: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in text::tokens(text.unwrap_or("")) {
        if out.len() == MAX_QUERY_TOKENS {
            break;
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// The available dishes whose name matches a query token, best first.
/// A dish scores, per query token, 2 if one of its name tokens equals it, 1
/// if one starts with it; summed over the tokens. Ties: shorter name first
/// (the query covers more of it), then id.
fn matched_dishes(listing: &Listing, query: &[String]) -> Vec<Uuid> {
    // (dish, query token, weight, name length), then best per dish and
    // token, then summed per dish: sorting keeps it O(n log n).
    let mut found: Vec<(Uuid, usize, u32, u32)> = Vec::new();
    for (i, q) in query.iter().enumerate() {
        for m in listing.dish_words.matching(q) {
            found.push((m.dish, i, if m.exact { 2 } else { 1 }, m.name_len));
        }
    }
    if found.is_empty() {
        return Vec::new();
    }
    // Within one (dish, token), the best weight comes first.
    found.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(b.2.cmp(&a.2)));
    found.dedup_by(|later, first| (later.0, later.1) == (first.0, first.1));
    let mut scored: Vec<(u32, u32, Uuid)> = Vec::new();
    for (dish, _, w, name_len) in found {
        match scored.last_mut() {
            Some(last) if last.2 == dish => last.0 += w,
            _ => scored.push((w, name_len, dish)),
        }
    }
    scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    scored
        .into_iter()
        .take(MAX_MATCHED_DISHES)
        .map(|(_, _, id)| id)
        .collect()
}

impl Catalog {
    /// Restaurants delivering to `q.near` that match `q`, ranked and paged,
    /// judged open or closed at `now_utc_ms` (Unix milliseconds, UTC).
    pub fn search(&self, q: &Query, now_utc_ms: i64) -> Page {
        let slots = self.slot_count();
        let tokens = query_tokens(q.text.as_deref());
        let scores = (!tokens.is_empty()).then(|| self.text.score(&tokens, slots));
        let cuisine = q
            .cuisine
            .as_deref()
            .map(text::phrase)
            .filter(|c| !c.is_empty());
        let allowed = cuisine.map(|c| {
            let mut allowed = vec![false; slots];
            for &slot in self.cuisines.get(&c) {
                allowed[slot as usize] = true;
            }
            allowed
        });
        let mut open_now = OpenNow::new(&self.schedules, now_utc_ms);
        let mut matches: Vec<Candidate> = Vec::new();
        self.grid.covering(q.near, |c| {
            if let Some(allowed) = &allowed
                && !allowed.get(c.slot as usize).copied().unwrap_or(false)
            {
                return;
            }
            let score = match &scores {
                Some(scores) => match scores.get(c.slot) {
                    Some(score) => score,
                    None => return,
                },
                None => 0,
            };
            if q.min_rating
                .is_some_and(|min| !self.rating_at(c.slot).at_least(min))
            {
                return;
            }
            if q.open_now && !open_now.is_open(c.schedule) {
                return;
            }
            matches.push(Candidate {
                score,
                distance_m: c.distance_m,
                id: c.id,
                slot: c.slot,
                schedule: c.schedule,
            });
        });

        let total = matches.len();
        let limit = q.limit.min(MAX_PAGE_LIMIT);
        let end = q.offset.saturating_add(limit).min(total);
        if q.offset >= end {
            return Page {
                hits: Vec::new(),
                total,
            };
        }
        match q.sort {
            Sort::Relevance => rank_first(&mut matches, end, by_relevance),
            Sort::Distance => rank_first(&mut matches, end, by_distance),
            Sort::Rating => rank_first(&mut matches, end, by_rating(self)),
        }

        let hits = matches[q.offset..end]
            .iter()
            .filter_map(|c| {
                let listing = self.listing(c.slot)?;
                Some(Hit {
                    restaurant_id: c.id,
                    distance_m: c.distance_m,
                    score: f64::from(c.score),
                    open_now: open_now.is_open(c.schedule),
                    rating: self.rating_at(c.slot),
                    matched_dishes: matched_dishes(listing, &tokens),
                })
            })
            .collect();
        Page { hits, total }
    }
}

#[cfg(test)]
mod tests;
