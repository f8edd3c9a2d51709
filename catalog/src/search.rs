//! The read path: filter, rank and page.
//!
//! 1. The grid yields the restaurants whose own delivery radius covers the
//!    query point, with their haversine distance.
//! 2. Filters: the cuisine (a restaurant cuisine equal to it as a
//!    [`text::phrase`]: case, diacritics, punctuation and spacing ignored),
//!    the text (every query token a prefix of some token of the name,
//!    a cuisine, or an available dish's name or category), and `open_now`.
//! 3. Ranking: relevance (the sum over query tokens of each one's best
//!    match, see [`crate::terms::weight`]) descending, then distance
//!    ascending, then restaurant id; without text, distance then id.
//! 4. Paging: `offset`/`limit` over the ranked list; only the page is fully
//!    sorted, and only its hits get their opening state and matched dishes.

use std::cmp::Ordering;

use engine::{LatLng, RestaurantId};
use uuid::Uuid;

use crate::catalog::{Catalog, Listing};
use crate::hours::WeeklyHours;
use crate::text;

/// Query tokens used; the rest are ignored. Bounds a query's cost (each
/// token is a binary search per candidate restaurant).
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
            offset: 0,
            limit: 20,
        }
    }
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
    /// Available dishes whose name matched a query token, best first (most
    /// relevant, then name, then id), at most [`MAX_MATCHED_DISHES`].
    pub matched_dishes: Vec<Uuid>,
}

/// A match before paging.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    score: f64,
    distance_m: f64,
    id: RestaurantId,
    slot: u32,
}

/// Relevance descending, then distance ascending, then id: a total order,
/// so equal inputs always page the same way.
fn rank(a: &Candidate, b: &Candidate) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.distance_m.total_cmp(&b.distance_m))
        .then(a.id.cmp(&b.id))
}

/// Local minute-of-week per time zone, computed once per zone per search:
/// converting an instant to local time is the expensive part of `is_open`.
struct OpenAt<'a> {
    now_utc_ms: i64,
    zones: Vec<(&'a str, Option<u32>)>,
}

impl<'a> OpenAt<'a> {
    fn new(now_utc_ms: i64) -> Self {
        Self {
            now_utc_ms,
            zones: Vec::new(),
        }
    }

    fn is_open(&mut self, hours: Option<&'a WeeklyHours>) -> bool {
        let Some(h) = hours else {
            return true;
        };
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

/// Relevance of `listing` to the tokens; `None` if one of them matches
/// nothing.
fn relevance(listing: &Listing, tokens: &[String]) -> Option<f64> {
    tokens
        .iter()
        .try_fold(0.0, |sum, t| Some(sum + listing.terms.best_match(t)?))
}

/// How well a dish name matches: per query token, 2 for an exact token, 1
/// for a prefix, 0 for none; summed.
fn dish_score(name_tokens: &[String], query: &[String]) -> u32 {
    query
        .iter()
        .map(|q| {
            name_tokens
                .iter()
                .map(|t| match t.strip_prefix(q.as_str()) {
                    Some("") => 2,
                    Some(_) => 1,
                    None => 0,
                })
                .max()
                .unwrap_or(0)
        })
        .sum()
}

fn matched_dishes(listing: &Listing, query: &[String]) -> Vec<Uuid> {
    if query.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<(u32, &str, Uuid)> = listing
        .dishes
        .iter()
        .filter(|d| d.entry.available)
        .filter_map(|d| {
            let s = dish_score(&d.name_tokens, query);
            (s > 0).then_some((s, d.entry.name.as_str(), d.entry.id))
        })
        .collect();
    scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)).then(a.2.cmp(&b.2)));
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
        let tokens = query_tokens(q.text.as_deref());
        let cuisine = q
            .cuisine
            .as_deref()
            .map(text::phrase)
            .filter(|c| !c.is_empty());
        let mut open_at = OpenAt::new(now_utc_ms);
        let mut matches: Vec<Candidate> = Vec::new();
        self.grid.covering(q.near, |slot, distance_m| {
            let Some(listing) = self.listing(slot) else {
                return;
            };
            if let Some(c) = &cuisine
                && !listing.cuisine_phrases.contains(c)
            {
                return;
            }
            let Some(score) = relevance(listing, &tokens) else {
                return;
            };
            if q.open_now && !open_at.is_open(listing.entry.hours.as_ref()) {
                return;
            }
            matches.push(Candidate {
                score,
                distance_m,
                id: listing.entry.id,
                slot,
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
        // Only the first `end` need sorting.
        if end < total {
            matches.select_nth_unstable_by(end, rank);
            matches.truncate(end);
        }
        matches.sort_unstable_by(rank);

        let hits = matches[q.offset..end]
            .iter()
            .filter_map(|c| {
                let listing = self.listing(c.slot)?;
                Some(Hit {
                    restaurant_id: c.id,
                    distance_m: c.distance_m,
                    score: c.score,
                    open_now: open_at.is_open(listing.entry.hours.as_ref()),
                    matched_dishes: matched_dishes(listing, &tokens),
                })
            })
            .collect();
        Page { hits, total }
    }
}

#[cfg(test)]
mod tests;
