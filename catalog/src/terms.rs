//! One restaurant's searchable words and how a query token scores on them.
//!
//! Every token of the restaurant's name, its cuisines and its available
//! dishes' names and categories is kept once, sorted, with a count per
//! field. Counts make writes incremental (a dish added or removed adds or
//! subtracts its tokens) and sorting makes a prefix lookup a binary search:
//! the tokens starting with a query token are one contiguous run.

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
pub(crate) fn weight(field: Field, exact: bool) -> f64 {
    let field_base = match field {
        Field::Name => 5.0,
        Field::Cuisine => 3.0,
        Field::Dish => 1.0,
    };
    if exact { field_base + 1.0 } else { field_base }
}

/// The highest possible [`weight`]: a lookup can stop once it finds it.
const BEST_WEIGHT: f64 = 6.0;

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
    pub fn add<'a>(&mut self, tokens: impl IntoIterator<Item = &'a str>, field: Field) {
        for token in tokens {
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
    }

    /// Undoes an [`Self::add`] of the same tokens and field.
    pub fn remove<'a>(&mut self, tokens: impl IntoIterator<Item = &'a str>, field: Field) {
        for token in tokens {
            if let Ok(i) = self.find(token) {
                let count = &mut self.terms[i].counts[field as usize];
                *count = count.saturating_sub(1);
                if self.terms[i].counts == [0; 3] {
                    self.terms.remove(i);
                }
            }
        }
    }

    fn find(&self, token: &str) -> Result<usize, usize> {
        self.terms.binary_search_by(|t| (*t.token).cmp(token))
    }

    /// The best [`weight`] of `query` (a folded token) among the terms it
    /// equals or is a prefix of; `None` when it matches nothing.
    pub fn best_match(&self, query: &str) -> Option<f64> {
        let start = self.terms.partition_point(|t| *t.token < *query);
        let mut best: Option<f64> = None;
        for term in self.terms[start..]
            .iter()
            .take_while(|t| t.token.starts_with(query))
        {
            let Some(field) = term.best_field() else {
                continue;
            };
            let w = weight(field, *term.token == *query);
            if best.is_none_or(|b| w > b) {
                best = Some(w);
                if w >= BEST_WEIGHT {
                    break;
                }
            }
        }
        best
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.terms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_exact_scores() {
        let mut t = Terms::default();
        t.add(["pizzeria", "napoli"], Field::Name);
        t.add(["italian"], Field::Cuisine);
        t.add(["pizza", "margherita", "pizza", "diavola"], Field::Dish);
        let check = |q: &str, expected: Option<f64>| assert_eq!(t.best_match(q), expected, "{q}");
        check("pizzeria", Some(6.0)); // name exact
        check("piz", Some(5.0)); // name prefix beats dish "pizza"
        check("pizz", Some(5.0)); // name prefix (5) beats dish prefix (1)
        check("pizza", Some(2.0)); // not a prefix of "pizzeria": exact dish
        check("ital", Some(3.0));
        check("italian", Some(4.0));
        check("marg", Some(1.0));
        check("margherita", Some(2.0));
        check("sushi", None);
        check("pizzerias", None);
        check("", Some(5.0)); // the empty prefix matches anything, never exactly
    }

    #[test]
    fn counts_make_removal_exact() {
        let mut t = Terms::default();
        t.add(["pizza", "pizza"], Field::Dish);
        t.add(["pizza"], Field::Name);
        t.remove(["pizza"], Field::Name);
        assert_eq!(t.best_match("pizza"), Some(2.0));
        t.remove(["pizza"], Field::Dish);
        assert_eq!(t.best_match("pizza"), Some(2.0));
        t.remove(["pizza"], Field::Dish);
        assert_eq!(t.best_match("pizza"), None);
        assert_eq!(t.len(), 0);
        t.remove(["never-added"], Field::Dish);
        assert_eq!(t.len(), 0);
    }
}
