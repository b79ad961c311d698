//! From raw interaction logs to a dataset: interned tokens, de-duplication, iterated
//! k-core filtering and chronological sequences with a stated rule for ties.
//!
//! The rows are kept as compact [`Interaction`]s (24 bytes each, tokens interned once), so
//! memory grows with the distinct users and items and the interactions, never with the raw
//! text. Ties in time keep the order of the file (a stable sort on `(time, row)`), and
//! [`Prepared::tied_pairs`] counts them, since a tie's order is a choice the data did not make.
//!
//! ```
//! use mclrec_trainer::prepare::{LogBuilder, Filter};
//! let mut log = LogBuilder::default();
//! for (row, (u, i, t)) in [("a", "x", 3.0), ("a", "y", 1.0), ("a", "z", 2.0), ("b", "x", 1.0)]
//!     .into_iter()
//!     .enumerate()
//! {
//!     log.push(u, i, t, row as u64 + 2);
//! }
//! let p = log.finish(&Filter { min_user: 3, min_item: 1, dedup: false });
//! assert_eq!(p.users, ["a"]);
//! assert_eq!(p.sequences, [vec![1, 2, 3]]); // y(1) z(2) x(3): ids by first appearance
//! assert_eq!(p.items, ["[PAD]", "y", "z", "x"]);
//! ```

use std::collections::{HashMap, HashSet};

/// One row of a log: interned user and item, time, and the row's line in the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interaction {
    /// Index into the user tokens.
    pub user: u32,
    /// Index into the item tokens.
    pub item: u32,
    /// The time (seconds, or any number that orders the rows).
    pub time: f64,
    /// The row's line in the file (ties in time keep this order).
    pub line: u64,
}

/// Tokens numbered in order of first appearance.
#[derive(Clone, Debug, Default)]
struct Interner {
    ids: HashMap<String, u32>,
    tokens: Vec<String>,
}

impl Interner {
    fn id(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        let id = self.tokens.len() as u32;
        self.ids.insert(token.to_string(), id);
        self.tokens.push(token.to_string());
        id
    }
}

/// Collects the rows of a log.
#[derive(Clone, Debug, Default)]
pub struct LogBuilder {
    users: Interner,
    items: Interner,
    rows: Vec<Interaction>,
}

/// What to keep.
#[derive(Clone, Debug)]
pub struct Filter {
    /// Users need at least this many interactions (after de-duplication), in the k-core.
    pub min_user: usize,
    /// Items need at least this many interactions, in the k-core.
    pub min_item: usize,
    /// Keep only the earliest of repeated (user, item) pairs.
    pub dedup: bool,
}

/// A prepared dataset: users in order of first appearance in the log, their items oldest
/// first, item ids `1..` in order of first appearance over those sequences (so the text
/// file written from it loads with the same ids).
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// User tokens, one per sequence.
    pub users: Vec<String>,
    /// Item tokens by id; entry 0 is the padding item `[PAD]`.
    pub items: Vec<String>,
    /// Each user's item ids, oldest first.
    pub sequences: Vec<Vec<usize>>,
    /// Each user's times, in the same order (for the `.inter` output).
    pub times: Vec<Vec<f64>>,
    /// Rows read.
    pub rows: usize,
    /// Repeated (user, item) pairs removed (with `dedup`).
    pub duplicates_removed: usize,
    /// Rounds of the k-core filter until nothing changed.
    pub k_core_rounds: usize,
    /// Distinct users and items in the log before filtering.
    pub raw_users: usize,
    /// Distinct items in the log before filtering.
    pub raw_items: usize,
    /// Adjacent interactions of a user with the same time (ordered by their rows).
    pub tied_pairs: usize,
}

impl LogBuilder {
    /// Adds a row.
    pub fn push(&mut self, user: &str, item: &str, time: f64, line: u64) {
        let user = self.users.id(user);
        let item = self.items.id(item);
        self.rows.push(Interaction {
            user,
            item,
            time,
            line,
        });
    }

    /// Rows added so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// De-duplicates, filters to the k-core and orders the sequences.
    pub fn finish(self, filter: &Filter) -> Prepared {
        let LogBuilder {
            users,
            items,
            mut rows,
        } = self;
        let n_rows = rows.len();
        // Chronological per user, ties in file order: the one order every later step uses.
        rows.sort_by(|a, b| {
            a.user
                .cmp(&b.user)
                .then(a.time.total_cmp(&b.time))
                .then(a.line.cmp(&b.line))
        });
        let mut duplicates_removed = 0;
        if filter.dedup {
            // One user at a time (the rows are grouped by user): memory for the longest
            // sequence, not for every pair; the earliest of each pair stays.
            let mut seen: HashSet<u32> = HashSet::new();
            let (mut kept, mut user) = (0, None);
            for r in 0..rows.len() {
                let row = rows[r];
                if user != Some(row.user) {
                    seen.clear();
                    user = Some(row.user);
                }
                if seen.insert(row.item) {
                    rows[kept] = row;
                    kept += 1;
                }
            }
            rows.truncate(kept);
            duplicates_removed = n_rows - kept;
        }
        let k_core_rounds = k_core(
            &mut rows,
            users.tokens.len(),
            items.tokens.len(),
            filter.min_user,
            filter.min_item,
        );
        // The rows are grouped by user: each user's span, in order of the user's first line
        // in the file among the kept rows.
        let mut spans: Vec<(u64, usize, usize)> = Vec::new();
        let mut start = 0;
        while start < rows.len() {
            let u = rows[start].user;
            let end = start + rows[start..].iter().take_while(|r| r.user == u).count();
            let first = rows[start..end]
                .iter()
                .map(|r| r.line)
                .min()
                .expect("a row");
            spans.push((first, start, end));
            start = end;
        }
        spans.sort_unstable();
        let mut item_ids: HashMap<u32, usize> = HashMap::new();
        let mut item_tokens = vec!["[PAD]".to_string()];
        let (mut out_users, mut sequences, mut times) = (Vec::new(), Vec::new(), Vec::new());
        let mut tied_pairs = 0;
        for (_, s, e) in spans {
            let span = &rows[s..e];
            let u = span[0].user;
            tied_pairs += span.windows(2).filter(|w| w[0].time == w[1].time).count();
            let seq = span
                .iter()
                .map(|r| {
                    *item_ids.entry(r.item).or_insert_with(|| {
                        item_tokens.push(items.tokens[r.item as usize].clone());
                        item_tokens.len() - 1
                    })
                })
                .collect();
            out_users.push(users.tokens[u as usize].clone());
            sequences.push(seq);
            times.push(span.iter().map(|r| r.time).collect());
        }
        Prepared {
            users: out_users,
            items: item_tokens,
            sequences,
            times,
            rows: n_rows,
            duplicates_removed,
            k_core_rounds,
            raw_users: users.tokens.len(),
            raw_items: items.tokens.len(),
            tied_pairs,
        }
    }
}

/// Removes the interactions of users with fewer than `min_user` and items with fewer than
/// `min_item` interactions, again and again until none is removed (removing an item can
/// push a user under the bound and back). Returns the rounds it took (at least 1).
pub fn k_core(
    rows: &mut Vec<Interaction>,
    n_users: usize,
    n_items: usize,
    min_user: usize,
    min_item: usize,
) -> usize {
    let mut rounds = 0;
    loop {
        rounds += 1;
        let mut user_deg = vec![0usize; n_users];
        let mut item_deg = vec![0usize; n_items];
        for r in rows.iter() {
            user_deg[r.user as usize] += 1;
            item_deg[r.item as usize] += 1;
        }
        let before = rows.len();
        rows.retain(|r| {
            user_deg[r.user as usize] >= min_user && item_deg[r.item as usize] >= min_item
        });
        if rows.len() == before {
            return rounds;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(rows: &[(&str, &str, f64)], filter: &Filter) -> Prepared {
        let mut b = LogBuilder::default();
        for (i, (u, it, t)) in rows.iter().enumerate() {
            b.push(u, it, *t, i as u64 + 2);
        }
        b.finish(filter)
    }

    #[test]
    fn the_k_core_is_iterated_to_a_fixed_point() {
        // Item z has 2 users; dropping it leaves user b with 2 items, so b goes too, which
        // leaves item y with 2 users...
        let rows = [
            ("a", "x", 1.),
            ("a", "y", 2.),
            ("a", "w", 3.),
            ("b", "x", 1.),
            ("b", "y", 2.),
            ("b", "z", 3.),
            ("c", "x", 1.),
            ("c", "y", 2.),
            ("c", "w", 3.),
            ("d", "x", 1.),
            ("d", "z", 2.),
            ("d", "w", 3.),
        ];
        let p = build(
            &rows,
            &Filter {
                min_user: 3,
                min_item: 3,
                dedup: false,
            },
        );
        assert!(p.users.is_empty(), "nothing survives: {p:?}");
        assert!(p.k_core_rounds >= 3);
        let p = build(
            &rows,
            &Filter {
                min_user: 3,
                min_item: 2,
                dedup: false,
            },
        );
        assert_eq!(p.users, ["a", "b", "c", "d"]);
        assert_eq!(p.k_core_rounds, 1);
    }

    #[test]
    fn ties_keep_the_file_order_and_are_counted_and_duplicates_go() {
        let rows = [
            ("a", "x", 5.),
            ("a", "y", 5.),
            ("a", "x", 6.),
            ("a", "z", 1.),
        ];
        let p = build(
            &rows,
            &Filter {
                min_user: 1,
                min_item: 1,
                dedup: true,
            },
        );
        assert_eq!(p.duplicates_removed, 1);
        // z(1), then x and y tied at 5 in file order.
        assert_eq!(p.items, ["[PAD]", "z", "x", "y"]);
        assert_eq!(p.sequences, [vec![1, 2, 3]]);
        assert_eq!(p.tied_pairs, 1);
        let p = build(
            &rows,
            &Filter {
                min_user: 1,
                min_item: 1,
                dedup: false,
            },
        );
        assert_eq!(p.sequences, [vec![1, 2, 3, 2]]);
    }
}
