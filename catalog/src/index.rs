//! Catalog-wide lookup tables, so a search touches compact arrays instead of
//! each candidate restaurant's records.
//!
//! - [`TextIndex`]: token → the restaurants that have it, with the best
//!   [`Field`] it occurs in. A query token's prefix matches are one range of
//!   the sorted map; scoring walks their postings into dense per-slot arrays.
//! - [`CuisineIndex`]: cuisine phrase → restaurants.
//! - [`Schedules`]: distinct opening hours, shared by the restaurants that
//!   have the same ones, so `open_now` is computed once per schedule per
//!   search.

use std::collections::BTreeMap;
use std::ops::Bound;

use rustc_hash::FxHashMap;

use crate::hours::{HoursSpec, WeeklyHours};
use crate::terms::{Field, weight};

#[derive(Clone, Copy, Debug)]
struct Posting {
    slot: u32,
    field: Field,
}

#[derive(Default)]
pub(crate) struct TextIndex {
    /// Postings sorted by slot, never empty.
    terms: BTreeMap<Box<str>, Vec<Posting>>,
}

impl TextIndex {
    /// Records that `token`'s best field in restaurant `slot` is now `field`
    /// (`None`: the restaurant no longer has the token).
    pub fn set(&mut self, token: &str, slot: u32, field: Option<Field>) {
        match field {
            Some(field) => {
                let list = match self.terms.get_mut(token) {
                    Some(list) => list,
                    None => self.terms.entry(token.into()).or_default(),
                };
                match list.binary_search_by_key(&slot, |p| p.slot) {
                    Ok(i) => list[i].field = field,
                    Err(i) => list.insert(i, Posting { slot, field }),
                }
            }
            None => {
                if let Some(list) = self.terms.get_mut(token) {
                    if let Ok(i) = list.binary_search_by_key(&slot, |p| p.slot) {
                        list.remove(i);
                    }
                    if list.is_empty() {
                        self.terms.remove(token);
                    }
                }
            }
        }
    }

    /// Scores every restaurant against `tokens` (folded, distinct, at most
    /// `u8::MAX / 6` of them): a restaurant matches when every token is a
    /// prefix of one of its tokens, and its score is the sum of each query
    /// token's best [`weight`]. `slots` bounds the slot numbers.
    pub fn score(&self, tokens: &[String], slots: usize) -> Scores {
        let mut scores = Scores {
            count: vec![0; slots],
            sum: vec![0; slots],
            needed: 0,
        };
        let mut best = vec![0u8; slots];
        let mut touched: Vec<u32> = Vec::new();
        for token in tokens {
            let i = scores.needed;
            touched.clear();
            let from = (Bound::Included(token.as_str()), Bound::Unbounded);
            for (term, postings) in self
                .terms
                .range::<str, _>(from)
                .take_while(|(t, _)| t.starts_with(token.as_str()))
            {
                let exact = **term == **token;
                for p in postings {
                    let s = p.slot as usize;
                    let w = weight(p.field, exact);
                    if scores.count[s] == i {
                        // First match of this token for a restaurant that
                        // matched all the previous ones.
                        scores.count[s] = i + 1;
                        best[s] = w;
                        touched.push(p.slot);
                    } else if scores.count[s] == i + 1 && w > best[s] {
                        best[s] = w;
                    }
                }
            }
            scores.needed = i + 1;
            if touched.is_empty() {
                break; // nothing can match every token
            }
            for &s in &touched {
                scores.sum[s as usize] += best[s as usize];
            }
        }
        scores
    }
}

/// Per-slot results of [`TextIndex::score`].
pub(crate) struct Scores {
    count: Vec<u8>,
    sum: Vec<u8>,
    needed: u8,
}

impl Scores {
    /// The relevance of restaurant `slot`, `None` unless it matched every
    /// query token.
    pub fn get(&self, slot: u32) -> Option<u8> {
        let s = slot as usize;
        (self.count.get(s) == Some(&self.needed)).then(|| self.sum[s])
    }
}

#[derive(Default)]
pub(crate) struct CuisineIndex {
    /// Slots sorted, never empty.
    by_phrase: FxHashMap<String, Vec<u32>>,
}

impl CuisineIndex {
    pub fn add(&mut self, phrase: &str, slot: u32) {
        let list = match self.by_phrase.get_mut(phrase) {
            Some(list) => list,
            None => self.by_phrase.entry(phrase.to_owned()).or_default(),
        };
        if let Err(i) = list.binary_search(&slot) {
            list.insert(i, slot);
        }
    }

    pub fn remove(&mut self, phrase: &str, slot: u32) {
        if let Some(list) = self.by_phrase.get_mut(phrase) {
            if let Ok(i) = list.binary_search(&slot) {
                list.remove(i);
            }
            if list.is_empty() {
                self.by_phrase.remove(phrase);
            }
        }
    }

    /// The restaurants with this cuisine phrase, sorted by slot.
    pub fn get(&self, phrase: &str) -> &[u32] {
        self.by_phrase.get(phrase).map_or(&[], Vec::as_slice)
    }
}

/// A schedule id meaning "no hours: always open".
pub(crate) const ALWAYS_OPEN: u32 = u32::MAX;

/// Distinct schedules, reference-counted by the restaurants using them.
#[derive(Default)]
pub(crate) struct Schedules {
    list: Vec<Option<(WeeklyHours, u32)>>,
    free: Vec<u32>,
    by_spec: FxHashMap<HoursSpec, u32>,
}

impl Schedules {
    /// The id of `hours`, shared with any restaurant with the same spec.
    pub fn acquire(&mut self, hours: Option<&WeeklyHours>) -> u32 {
        let Some(hours) = hours else {
            return ALWAYS_OPEN;
        };
        if let Some(&id) = self.by_spec.get(hours.spec())
            && let Some((_, refs)) = self.list[id as usize].as_mut()
        {
            *refs += 1;
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.list.push(None);
                // Fewer schedules than restaurants, and slots fit u32.
                u32::try_from(self.list.len() - 1).unwrap_or(ALWAYS_OPEN)
            }
        };
        self.list[id as usize] = Some((hours.clone(), 1));
        self.by_spec.insert(hours.spec().clone(), id);
        id
    }

    pub fn release(&mut self, id: u32) {
        let Some(Some((hours, refs))) = self.list.get_mut(id as usize) else {
            return;
        };
        *refs -= 1;
        if *refs == 0 {
            self.by_spec.remove(hours.spec());
            self.list[id as usize] = None;
            self.free.push(id);
        }
    }

    pub fn get(&self, id: u32) -> Option<&WeeklyHours> {
        self.list.get(id as usize)?.as_ref().map(|(h, _)| h)
    }

    pub fn capacity(&self) -> usize {
        self.list.len()
    }

    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.by_spec.len()
    }
}
