//! Interaction data: the "user item item ..." text format and RecBole atomic `.inter` files.
//!
//! Items get internal ids `1..=n_items` (0 is the padding id), numbered in order of first
//! appearance as RecBole does, so memory is bounded by the number of distinct items, never
//! by the largest token. In the text format item tokens are positive integers (up to
//! `u64::MAX`); the paper's files number their items in order of first appearance, so there
//! an item's id *is* its integer and the official checkpoint's rows line up. In `.inter`
//! files tokens are arbitrary strings.
//!
//! Input is checked strictly: a UTF-8 byte-order mark is skipped, a line that is not UTF-8,
//! an empty field, an unknown `.inter` type tag or a file with no users is an error naming
//! the file and line.

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
        let bytes = std::fs::read(path).map_err(|e| DataError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.clone());
        let format = Format::of(path);
        Ok(Self::parse(&bytes, &file, name, format))
    }

    /// Parses a file's bytes in `format`, listing every problem (`file` names it in errors,
    /// `name` is the dataset's name). Never panics, whatever the bytes.
    pub fn parse(
        bytes: &[u8],
        file: &str,
        name: String,
        format: Format,
    ) -> (Dataset, Vec<DataError>) {
        let text = match decode_utf8(bytes, file) {
            Ok(t) => t,
            Err(e) => return (Dataset::empty(name), vec![e]),
        };
        let (ds, mut problems) = match format {
            Format::Text => parse_text(text, file, name),
            Format::Inter => parse_inter(text, file, name),
        };
        if ds.sequences.is_empty() {
            problems.push(DataError {
                file: file.to_string(),
                line: 0,
                message: "no users in the file".into(),
            });
        }
        (ds, problems)
    }

    /// Parses the text format from a string (`file` names it in errors).
    pub fn from_text(text: &str, file: &str) -> Result<Dataset, DataError> {
        let (ds, problems) = Self::parse(text.as_bytes(), file, file.to_string(), Format::Text);
        match problems.into_iter().next() {
            Some(p) => Err(p),
            None => Ok(ds),
        }
    }

    /// Why this dataset cannot teach a model anything, if it cannot: a single item, or every
    /// user with the same sequence (metrics of such data are trivially high).
    pub fn learning_signal_warning(&self) -> Option<String> {
        if self.n_items() < 2 {
            return Some(format!(
                "{} has {} item(s): every ranking is trivial and the metrics say nothing",
                self.name,
                self.n_items()
            ));
        }
        if self.n_users() > 1 && self.sequences.iter().all(|s| *s == self.sequences[0]) {
            return Some(format!(
                "every user of {} has the same sequence: there is nothing to learn beyond it",
                self.name
            ));
        }
        None
    }

    fn empty(name: String) -> Dataset {
        Dataset {
            name,
            users: vec![],
            items: vec!["[PAD]".into()],
            sequences: vec![],
        }
    }
}

/// A token map as `raw<TAB>internal_id` lines under a header (`{header}\tinternal_id`),
/// ids `1..` in the order of `tokens`: the format `eval --item-map` reads.
pub fn token_map_tsv<'a>(header: &str, tokens: impl IntoIterator<Item = &'a String>) -> String {
    let mut out = format!("{header}\tinternal_id\n");
    for (id, t) in tokens.into_iter().enumerate() {
        out += &format!("{t}\t{}\n", id + 1);
    }
    out
}

/// The two file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One user per line: `user item item ...`, items as positive integers, oldest first.
    Text,
    /// RecBole's atomic `.inter` file: a typed header, then one interaction per line.
    Inter,
}

impl Format {
    /// `.inter` files by their extension; everything else is the text format.
    pub fn of(path: &Path) -> Format {
        if path.extension().is_some_and(|e| e == "inter") {
            Format::Inter
        } else {
            Format::Text
        }
    }
}

/// The text of a file without its UTF-8 byte-order mark; bytes that are not UTF-8 are an
/// error naming their line.
fn decode_utf8<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str, DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        DataError {
            file: file.to_string(),
            line,
            message: format!("not valid UTF-8 (byte {} of the file)", at + 1),
        }
    })
}

/// Dense ids `1..` for tokens in order of first appearance.
struct TokenIds<K> {
    ids: HashMap<K, usize>,
    tokens: Vec<String>,
}

impl<K: std::hash::Hash + Eq> TokenIds<K> {
    fn new() -> Self {
        TokenIds {
            ids: HashMap::new(),
            tokens: vec!["[PAD]".to_string()],
        }
    }

    fn id(&mut self, key: K, token: impl FnOnce() -> String) -> usize {
        let next = self.tokens.len();
        *self.ids.entry(key).or_insert_with(|| {
            self.tokens.push(token());
            next
        })
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
    let mut items = TokenIds::<u64>::new();
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
            match tok.parse::<u64>() {
                Ok(v) if v > 0 => seq.push(v),
                _ => {
                    problems.push(err(
                        line,
                        format!("item `{tok}` is not a positive integer id (1 to 2^64 - 1)"),
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
        users.push(user.to_string());
        sequences.push(
            seq.into_iter()
                .map(|v| items.id(v, || v.to_string()))
                .collect(),
        );
    }
    (
        Dataset {
            name,
            users,
            items: items.tokens,
            sequences,
        },
        problems,
    )
}

/// The column types of RecBole's atomic files.
const INTER_TYPES: [&str; 4] = ["token", "token_seq", "float", "float_seq"];

/// The header's column names, with the type each of the used columns must have checked.
fn inter_columns(header: &str) -> Result<Vec<&str>, String> {
    let mut cols = Vec::new();
    for field in header.split('\t') {
        let Some((name, ty)) = field.trim().split_once(':') else {
            return Err(format!(
                "header column `{field}` has no type (expected `name:type` with type one of {})",
                INTER_TYPES.join(", ")
            ));
        };
        if !INTER_TYPES.contains(&ty) {
            return Err(format!(
                "header column `{field}`: unknown type `{ty}` (expected one of {})",
                INTER_TYPES.join(", ")
            ));
        }
        let want = match name {
            "user_id" | "item_id" => Some("token"),
            "timestamp" => Some("float"),
            _ => None,
        };
        if let Some(want) = want.filter(|w| *w != ty) {
            return Err(format!(
                "header column `{field}`: {name} must be of type {want}"
            ));
        }
        if cols.contains(&name) {
            return Err(format!("header column `{name}` appears twice"));
        }
        cols.push(name);
    }
    Ok(cols)
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
        return (Dataset::empty(name), vec![err(1, "empty file (expected a header such as `user_id:token\titem_id:token\ttimestamp:float`)".into())]);
    };
    let cols = match inter_columns(header) {
        Ok(c) => c,
        Err(m) => return (Dataset::empty(name), vec![err(1, m)]),
    };
    let find = |n: &str| cols.iter().position(|c| *c == n);
    let (Some(uc), Some(ic)) = (find("user_id"), find("item_id")) else {
        return (
            Dataset::empty(name),
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
        let (user, item) = (f[uc].trim(), f[ic].trim());
        if let Some(empty) = [(user, "user_id"), (item, "item_id")]
            .iter()
            .find(|(v, _)| v.is_empty())
        {
            problems.push(err(line, format!("empty {} field", empty.1)));
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
        rows.push((user.to_string(), item.to_string(), ts, line));
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
    let mut items = TokenIds::<String>::new();
    let mut kept_users = Vec::new();
    let mut sequences = Vec::new();
    for (u, mut evs) in users.into_iter().zip(per_user) {
        evs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
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
            .map(|(_, _, it)| items.id(it.clone(), || it))
            .collect();
        kept_users.push(u);
        sequences.push(seq);
    }
    (
        Dataset {
            name,
            users: kept_users,
            items: items.tokens,
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
            "t.txt:2: item `x` is not a positive integer id (1 to 2^64 - 1)"
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

    fn parse(bytes: &[u8], format: Format) -> (Dataset, Vec<DataError>) {
        Dataset::parse(bytes, "f", "f".into(), format)
    }

    #[test]
    fn item_tokens_of_any_size_get_dense_ids_in_order_of_first_appearance() {
        let big = u64::MAX;
        let text = format!("a 30000000 {big} 7\nb 7 4294967296 30000000\n");
        let d = Dataset::from_text(&text, "t.txt").unwrap();
        assert_eq!(d.n_items(), 4);
        let want = ["[PAD]", "30000000", &big.to_string(), "7", "4294967296"];
        assert_eq!(d.items, want);
        assert_eq!(d.sequences, vec![vec![1, 2, 3], vec![3, 4, 1]]);
        // The paper's files number items by first appearance: ids equal tokens there.
        let d = Dataset::from_text("u 1 2 3\nv 2 4 1\n", "t.txt").unwrap();
        assert_eq!(d.items, ["[PAD]", "1", "2", "3", "4"]);
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_bad_utf8_names_its_line() {
        let (d, p) = parse(b"\xEF\xBB\xBFu1 1 2 3\n", Format::Text);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(d.users, ["u1"]);
        let (_, p) = parse(b"u1 1 2 3\nu2 1 \xFF 3\n", Format::Text);
        assert_eq!(p[0].line, 2);
        assert!(p[0].message.contains("not valid UTF-8"), "{}", p[0]);
    }

    #[test]
    fn inter_headers_are_typed_and_fields_are_not_empty() {
        let first = |text: &str| {
            parse(text.as_bytes(), Format::Inter)
                .1
                .remove(0)
                .to_string()
        };
        let h = "user_id:token\titem_id:token\ttimestamp:float\n";
        assert_eq!(first(h), "f: no users in the file");
        assert!(first("user_id:token\titem_id\n").contains("`item_id` has no type"));
        assert!(first("user_id:token\titem_id:tokn\n").contains("unknown type `tokn`"));
        assert!(first("user_id:float\titem_id:token\n").contains("user_id must be of type token"));
        assert_eq!(first(&format!("{h}u1\t\t3\n")), "f:2: empty item_id field");
        assert_eq!(first(&format!("{h}\tx\t3\n")), "f:2: empty user_id field");
    }

    #[test]
    fn datasets_without_a_learning_signal_are_named() {
        let one = Dataset::from_text("u 5 5 5\nv 5 5 5 5\n", "t").unwrap();
        assert!(one.learning_signal_warning().unwrap().contains("1 item"));
        let same = Dataset::from_text("u 1 2 3\nv 1 2 3\n", "t").unwrap();
        assert!(same
            .learning_signal_warning()
            .unwrap()
            .contains("same sequence"));
        let fine = Dataset::from_text("u 1 2 3\nv 3 2 1\n", "t").unwrap();
        assert_eq!(fine.learning_signal_warning(), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Random bytes, and random edits of a valid file, give problems, never a panic.
        #[test]
        fn parsing_never_panics(
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            edits in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..8),
        ) {
            for format in [Format::Text, Format::Inter] {
                let _ = parse(&noise, format);
                let valid: &[u8] = match format {
                    Format::Text => b"u1 1 2 3 4\nu2 2 3 4\nu3 9 8 7 6 5\n",
                    Format::Inter => b"user_id:token\titem_id:token\ttimestamp:float\nu\ta\t1\nu\tb\t2\nu\tc\t3\nv\ta\t1\nv\tc\t2\nv\td\t1e9\n",
                };
                let mut bytes = valid.to_vec();
                for &(at, b) in &edits {
                    let at = at % (bytes.len() + 1);
                    if b % 3 == 0 && at < bytes.len() {
                        bytes.remove(at);
                    } else {
                        bytes.insert(at, b);
                    }
                }
                let (d, problems) = parse(&bytes, format);
                if problems.is_empty() {
                    proptest::prop_assert!(d.sequences.iter().all(|s| s.len() >= MIN_INTERACTIONS));
                    proptest::prop_assert!(d.sequences.iter().flatten().all(|&i| i >= 1 && i <= d.n_items()));
                }
            }
        }
    }
}
