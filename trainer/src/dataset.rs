//! Interaction data: the "user item item ..." text format and RecBole atomic `.inter` files.
//!
//! Items get internal ids `1..=n_items` (0 is the padding id). In the text format item
//! tokens must be positive integers and the id *is* the integer, as in the official data
//! pipeline (so the official Beauty checkpoint's rows line up). In `.inter` files tokens
//! are arbitrary strings, numbered in order of first appearance.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A problem with an input file, located by file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError {
    /// The file, as given.
    pub file: String,
    /// The 1-based line (0 when the problem is not on one line).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl std::error::Error for DataError {}

/// The fewest interactions a user needs: one to train on, one to validate, one to test.
pub const MIN_INTERACTIONS: usize = 3;

/// Users' chronologically ordered item sequences.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// A name for messages (the file name).
    pub name: String,
    /// External user tokens, one per sequence.
    pub users: Vec<String>,
    /// External item tokens by internal id; entry 0 is the padding item `[PAD]`.
    pub items: Vec<String>,
    /// Each user's items as internal ids, oldest first.
    pub sequences: Vec<Vec<usize>>,
}

impl Dataset {
    /// The number of real items (the largest id).
    pub fn n_items(&self) -> usize {
        self.items.len() - 1
    }

    /// The number of users.
    pub fn n_users(&self) -> usize {
        self.sequences.len()
    }

    /// The number of interactions.
    pub fn n_interactions(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }

    /// The internal id of an item token.
    pub fn item_id(&self, token: &str) -> Option<usize> {
        self.items
            .iter()
            .skip(1)
            .position(|t| t == token)
            .map(|i| i + 1)
    }

    /// The index of a user token.
    pub fn user_index(&self, token: &str) -> Option<usize> {
        self.users.iter().position(|t| t == token)
    }

    /// Reads a file: RecBole atomic format when the name ends in `.inter`, else the text format.
    pub fn load(path: &Path) -> Result<Dataset, DataError> {
        let (ds, problems) = Self::check(path)?;
        match problems.into_iter().next() {
            Some(p) => Err(p),
            None => Ok(ds),
        }
    }

    /// Reads a file and lists every problem found (for `data check`). The dataset is
    /// returned with the offending lines left out. Fails outright only when the file cannot
    /// be read at all.
    pub fn check(path: &Path) -> Result<(Dataset, Vec<DataError>), DataError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| DataError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.clone());
        if path.extension().is_some_and(|e| e == "inter") {
            Ok(parse_inter(&text, &file, name))
        } else {
            Ok(parse_text(&text, &file, name))
        }
    }

    /// Parses the text format from a string (`file` names it in errors).
    pub fn from_text(text: &str, file: &str) -> Result<Dataset, DataError> {
        let (ds, problems) = parse_text(text, file, file.to_string());
        match problems.into_iter().next() {
            Some(p) => Err(p),
            None => Ok(ds),
        }
    }
}

fn parse_text(text: &str, file: &str, name: String) -> (Dataset, Vec<DataError>) {
    let err = |line: usize, message: String| DataError {
        file: file.to_string(),
        line,
        message,
    };
    let mut problems = Vec::new();
    let mut users = Vec::new();
    let mut sequences = Vec::new();
    let mut seen_users: HashMap<String, usize> = HashMap::new();
    let mut max_item = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut tokens = raw.split_whitespace();
        let Some(user) = tokens.next() else {
            problems.push(err(
                line,
                "empty line (expected `user item item ...`)".into(),
            ));
            continue;
        };
        let mut seq = Vec::new();
        let mut bad = false;
        for tok in tokens {
            match tok.parse::<usize>() {
                Ok(v) if v > 0 => seq.push(v),
                _ => {
                    problems.push(err(
                        line,
                        format!("item `{tok}` is not a positive integer id"),
                    ));
                    bad = true;
                    break;
                }
            }
        }
        if bad {
            continue;
        }
        if seq.len() < MIN_INTERACTIONS {
            problems.push(err(
                line,
                format!("user `{user}` has {} interactions; at least {MIN_INTERACTIONS} are needed (train, validation, test)", seq.len()),
            ));
            continue;
        }
        if let Some(first) = seen_users.insert(user.to_string(), line) {
            problems.push(err(
                line,
                format!("user `{user}` appears again (first on line {first})"),
            ));
            continue;
        }
        max_item = max_item.max(*seq.iter().max().unwrap());
        users.push(user.to_string());
        sequences.push(seq);
    }
    if sequences.is_empty() && problems.is_empty() {
        problems.push(err(0, "no users in the file".into()));
    }
    let mut items = vec!["[PAD]".to_string()];
    items.extend((1..=max_item).map(|i| i.to_string()));
    (
        Dataset {
            name,
            users,
            items,
            sequences,
        },
        problems,
    )
}

fn parse_inter(text: &str, file: &str, name: String) -> (Dataset, Vec<DataError>) {
    let err = |line: usize, message: String| DataError {
        file: file.to_string(),
        line,
        message,
    };
    let mut problems = Vec::new();
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return (Dataset { name, users: vec![], items: vec!["[PAD]".into()], sequences: vec![] }, vec![err(1, "empty file (expected a header such as `user_id:token\titem_id:token\ttimestamp:float`)".into())]);
    };
    let cols: Vec<&str> = header
        .split('\t')
        .map(|c| c.split(':').next().unwrap_or("").trim())
        .collect();
    let find = |n: &str| cols.iter().position(|c| *c == n);
    let (Some(uc), Some(ic)) = (find("user_id"), find("item_id")) else {
        return (
            Dataset {
                name,
                users: vec![],
                items: vec!["[PAD]".into()],
                sequences: vec![],
            },
            vec![err(
                1,
                format!("header `{header}` has no user_id and item_id columns"),
            )],
        );
    };
    let tc = find("timestamp");
    // (user, item, timestamp or file order)
    let mut rows: Vec<(String, String, f64, usize)> = Vec::new();
    for (i, raw) in lines {
        let line = i + 1;
        if raw.trim().is_empty() {
            problems.push(err(line, "empty line".into()));
            continue;
        }
        let f: Vec<&str> = raw.split('\t').collect();
        if f.len() != cols.len() {
            problems.push(err(
                line,
                format!("{} fields, the header has {}", f.len(), cols.len()),
            ));
            continue;
        }
        let ts = match tc {
            Some(t) => match f[t].trim().parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                _ => {
                    problems.push(err(line, format!("timestamp `{}` is not a number", f[t])));
                    continue;
                }
            },
            None => 0.0,
        };
        rows.push((f[uc].trim().to_string(), f[ic].trim().to_string(), ts, line));
    }
    // Users in order of first appearance; each user's items by timestamp, ties in file order.
    let mut user_idx: HashMap<String, usize> = HashMap::new();
    let mut users = Vec::new();
    let mut per_user: Vec<Vec<(f64, usize, String)>> = Vec::new();
    for (u, it, ts, line) in rows {
        let k = *user_idx.entry(u.clone()).or_insert_with(|| {
            users.push(u.clone());
            per_user.push(Vec::new());
            users.len() - 1
        });
        per_user[k].push((ts, line, it));
    }
    let mut items = vec!["[PAD]".to_string()];
    let mut item_idx: HashMap<String, usize> = HashMap::new();
    let mut kept_users = Vec::new();
    let mut sequences = Vec::new();
    for (u, mut evs) in users.into_iter().zip(per_user) {
        evs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
        if evs.len() < MIN_INTERACTIONS {
            problems.push(err(
                evs[0].1,
                format!(
                    "user `{u}` has {} interactions; at least {MIN_INTERACTIONS} are needed",
                    evs.len()
                ),
            ));
            continue;
        }
        let seq = evs
            .into_iter()
            .map(|(_, _, it)| {
                *item_idx.entry(it.clone()).or_insert_with(|| {
                    items.push(it);
                    items.len() - 1
                })
            })
            .collect();
        kept_users.push(u);
        sequences.push(seq);
    }
    (
        Dataset {
            name,
            users: kept_users,
            items,
            sequences,
        },
        problems,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_keeps_integer_ids() {
        let d = Dataset::from_text("1 1 2 3\n2 4 2 5 1\n", "t.txt").unwrap();
        assert_eq!(d.n_users(), 2);
        assert_eq!(d.n_items(), 5);
        assert_eq!(d.sequences[1], vec![4, 2, 5, 1]);
        assert_eq!(d.item_id("5"), Some(5));
    }

    #[test]
    fn text_format_errors_name_the_line() {
        let e = Dataset::from_text("1 1 2 3\n2 4 x 5\n", "t.txt").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.txt:2: item `x` is not a positive integer id"
        );
        let e = Dataset::from_text("1 1 2 3\n\n", "t.txt").unwrap_err();
        assert_eq!((e.line, e.message.contains("empty line")), (2, true));
        let e = Dataset::from_text("1 1 2\n", "t.txt").unwrap_err();
        assert!(e.message.contains("has 2 interactions"), "{e}");
        let e = Dataset::from_text("1 1 2 3\n1 3 4 5\n", "t.txt").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.txt:2: user `1` appears again (first on line 1)"
        );
    }

    #[test]
    fn inter_files_sort_by_timestamp() {
        let dir = std::env::temp_dir().join(format!("mclrec-inter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.inter");
        std::fs::write(&p, "user_id:token\titem_id:token\ttimestamp:float\nu1\tb\t3\nu1\ta\t1\nu2\tc\t5\nu1\tc\t2\nu2\ta\t1\nu2\tb\t9\n").unwrap();
        let d = Dataset::load(&p).unwrap();
        assert_eq!(d.users, vec!["u1", "u2"]);
        // u1: a(1) c(2) b(3); ids by first appearance in that order: a=1, c=2, b=3.
        assert_eq!(d.items, vec!["[PAD]", "a", "c", "b"]);
        assert_eq!(d.sequences, vec![vec![1, 2, 3], vec![1, 2, 3]]);
        std::fs::write(
            &p,
            "user_id:token\titem_id:token\ttimestamp:float\nu1\tb\tnoon\n",
        )
        .unwrap();
        assert_eq!(
            Dataset::load(&p).unwrap_err().to_string(),
            format!("{}:2: timestamp `noon` is not a number", p.display())
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
