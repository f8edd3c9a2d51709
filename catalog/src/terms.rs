//! One restaurant's searchable words.
//!
//! [`Terms`]: every token of the restaurant's name, its cuisines and its available
//! dishes' names and categories is kept once, sorted, with a count per
//! field. Counts make writes incremental (a dish added or removed adds or
//! subtracts its tokens) and tell the catalog-wide [`crate::index::TextIndex`]
//! when a token's best field for this restaurant changes.
//!
//! [`DishWords`]: the available dishes' name tokens, sorted, packed in one
//! buffer, so finding the dishes that match a query token (for a page's
//! hits) is a binary search in a few contiguous kilobytes rather than a walk
//! over every dish's separately allocated strings.

use uuid::Uuid;

/// Where a token occurs, best first: a name match outranks a cuisine match,
/// which outranks a dish match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Field {
    Name = 0,
    Cuisine = 1,
    Dish = 2,
}

/// The relevance of one query token matching in `field`, exactly (the whole
/// token) or as a prefix. Field first, then exactness: name exact 6, name
/// prefix 5, cuisine 4/3, dish 2/1. A restaurant's score is the sum over the
/// query tokens of each token's best match.
pub(crate) fn weight(field: Field, exact: bool) -> u8 {
    let field_base = match field {
        Field::Name => 5,
        Field::Cuisine => 3,
        Field::Dish => 1,
    };
    field_base + u8::from(exact)
}

#[derive(Clone, Debug)]
struct Term {
    token: Box<str>,
    /// Occurrences per [`Field`]; the term goes when all reach zero.
    counts: [u32; 3],
}

impl Term {
    fn best_field(&self) -> Option<Field> {
        [Field::Name, Field::Cuisine, Field::Dish]
            .into_iter()
            .find(|&f| self.counts[f as usize] > 0)
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Terms {
    /// Sorted by token, no duplicates, every term with a non-zero count.
    terms: Vec<Term>,
}

impl Terms {
    /// Counts one more occurrence of `token` in `field`.
    pub fn add(&mut self, token: &str, field: Field) {
        match self.find(token) {
            Ok(i) => self.terms[i].counts[field as usize] += 1,
            Err(i) => {
                let mut counts = [0; 3];
                counts[field as usize] = 1;
                self.terms.insert(
                    i,
                    Term {
                        token: token.into(),
                        counts,
                    },
                );
            }
        }
    }

    /// Undoes one [`Self::add`] of the same token and field.
    pub fn remove(&mut self, token: &str, field: Field) {
        if let Ok(i) = self.find(token) {
            let count = &mut self.terms[i].counts[field as usize];
            *count = count.saturating_sub(1);
            if self.terms[i].counts == [0; 3] {
                self.terms.remove(i);
            }
        }
    }

    /// The best field `token` occurs in, if any.
    pub fn best(&self, token: &str) -> Option<Field> {
        let i = self.find(token).ok()?;
        self.terms[i].best_field()
    }

    fn find(&self, token: &str) -> Result<usize, usize> {
        self.terms.binary_search_by(|t| (*t.token).cmp(token))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.terms.len()
    }
}

#[derive(Clone, Copy, Debug)]
struct Word {
    start: u32,
    len: u32,
    dish: Uuid,
    /// The dish name's length in bytes: the tie-break between dishes that
    /// match equally well (shorter first: the query covers more of it).
    name_len: u32,
}

/// A dish name token matching a query token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DishMatch {
    pub dish: Uuid,
    pub name_len: u32,
    /// The token equals the query token (not only starts with it).
    pub exact: bool,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct DishWords {
    /// Tokens back to back, including `garbage` bytes no word refers to.
    text: String,
    /// Sorted by token.
    words: Vec<Word>,
    garbage: usize,
}

impl DishWords {
    fn token(&self, w: &Word) -> &str {
        let start = w.start as usize;
        self.text
            .get(start..start + w.len as usize)
            .unwrap_or_default()
    }

    pub fn add<'a>(
        &mut self,
        dish: Uuid,
        name_len: usize,
        tokens: impl IntoIterator<Item = &'a str>,
    ) {
        let name_len = u32::try_from(name_len).unwrap_or(u32::MAX);
        for token in tokens {
            // A restaurant's dish names stay far below 4 GiB of text.
            let (Ok(start), Ok(len)) = (u32::try_from(self.text.len()), u32::try_from(token.len()))
            else {
                return;
            };
            let at = self.words.partition_point(|w| self.token(w) < token);
            self.text.push_str(token);
            self.words.insert(
                at,
                Word {
                    start,
                    len,
                    dish,
                    name_len,
                },
            );
        }
    }

    pub fn remove(&mut self, dish: Uuid) {
        let mut freed = 0;
        self.words.retain(|w| {
            let keep = w.dish != dish;
            if !keep {
                freed += w.len as usize;
            }
            keep
        });
        self.garbage += freed;
        if self.garbage > self.text.len() / 2 {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let mut text = String::with_capacity(self.text.len() - self.garbage);
        let mut words = Vec::with_capacity(self.words.len());
        for w in &self.words {
            let token = self.token(w);
            words.push(Word {
                // Smaller than before compaction, so it fits.
                start: u32::try_from(text.len()).unwrap_or(u32::MAX),
                ..*w
            });
            text.push_str(token);
        }
        self.text = text;
        self.words = words;
        self.garbage = 0;
    }

    /// The dishes with a name token that `query` is a prefix of; a dish
    /// appears once per such token.
    pub fn matching<'a>(&'a self, query: &'a str) -> impl Iterator<Item = DishMatch> + 'a {
        let start = self.words.partition_point(|w| self.token(w) < query);
        self.words[start..]
            .iter()
            .map(|w| (w, self.token(w)))
            .take_while(move |(_, t)| t.starts_with(query))
            .map(move |(w, t)| DishMatch {
                dish: w.dish,
                name_len: w.name_len,
                exact: t == query,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dish_words_find_prefixes_and_survive_compaction() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut w = DishWords::default();
        w.add(a, 16, ["pizza", "margherita"]);
        w.add(b, 13, ["pizza", "diavola"]);
        let found = |w: &DishWords, q: &str| {
            let mut v: Vec<_> = w.matching(q).map(|m| (m.dish, m.exact)).collect();
            v.sort();
            v
        };
        assert_eq!(found(&w, "piz"), vec![(a, false), (b, false)]);
        assert_eq!(found(&w, "pizza"), vec![(a, true), (b, true)]);
        assert_eq!(found(&w, "dia"), vec![(b, false)]);
        assert_eq!(found(&w, "x"), vec![]);
        for _ in 0..20 {
            w.remove(a);
            w.add(a, 16, ["pizza", "margherita"]);
        }
        assert!(w.text.len() < 100, "compacted: {}", w.text.len());
        assert_eq!(found(&w, "marg"), vec![(a, false)]);
        assert_eq!(found(&w, "pizza"), vec![(a, true), (b, true)]);
    }

    #[test]
    fn weights_rank_field_before_exactness() {
        let all = [
            weight(Field::Name, true),
            weight(Field::Name, false),
            weight(Field::Cuisine, true),
            weight(Field::Cuisine, false),
            weight(Field::Dish, true),
            weight(Field::Dish, false),
        ];
        assert_eq!(all, [6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn counts_make_removal_exact() {
        let mut t = Terms::default();
        t.add("pizza", Field::Dish);
        t.add("pizza", Field::Dish);
        t.add("pizza", Field::Name);
        assert_eq!(t.best("pizza"), Some(Field::Name));
        t.remove("pizza", Field::Name);
        assert_eq!(t.best("pizza"), Some(Field::Dish));
        t.remove("pizza", Field::Dish);
        assert_eq!(t.best("pizza"), Some(Field::Dish));
        t.remove("pizza", Field::Dish);
        assert_eq!(t.best("pizza"), None);
        assert_eq!(t.len(), 0);
        t.remove("never-added", Field::Dish);
        assert_eq!(t.len(), 0);
    }
}
