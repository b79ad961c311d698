//! Reading raw interaction logs: CSV / TSV with a header or JSON lines, gzip-compressed or
//! not, one row at a time; times as numbers or ISO 8601 dates.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The layouts a raw log may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Comma-separated with a header line (quotes as RFC 4180).
    Csv,
    /// Tab-separated with a header line.
    Tsv,
    /// One JSON object per line (the Amazon review dumps, Yelp's).
    Jsonl,
}

/// Common names of the user, item and time columns, tried in order (case-insensitive).
pub const USER_NAMES: [&str; 8] = [
    "user_id",
    "userid",
    "user",
    "reviewerid",
    "uid",
    "customer_id",
    "visitorid",
    "session_id",
];
/// See [`USER_NAMES`].
pub const ITEM_NAMES: [&str; 9] = [
    "item_id",
    "itemid",
    "item",
    "asin",
    "business_id",
    "product_id",
    "movieid",
    "iid",
    "sku",
];
/// See [`USER_NAMES`].
pub const TIME_NAMES: [&str; 9] = [
    "timestamp",
    "time",
    "unixreviewtime",
    "date",
    "datetime",
    "ts",
    "event_time",
    "created_at",
    "time_stamp",
];

/// One row's fields (as text) and where it is.
pub struct Row {
    /// The 1-based line of the row in the (decompressed) file.
    pub line: u64,
    /// User, item, and time when a time column is used.
    pub user: String,
    /// See `user`.
    pub item: String,
    /// See `user`.
    pub time: Option<String>,
}

/// Counts the bytes read from the file (compressed), for the progress bar.
struct Counting<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// An open raw log.
pub struct RawLog {
    reader: Box<dyn BufRead>,
    /// Bytes of the file read so far (compressed bytes for a gzip file).
    pub bytes_read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The format.
    pub format: LogFormat,
    /// Whether the file is gzip-compressed.
    pub gzip: bool,
    file: String,
}

impl RawLog {
    /// Opens `path`, detecting gzip by its magic bytes and the format by the extension
    /// (`.csv`, `.tsv`, `.json` / `.jsonl` / `.ndjson`, before any `.gz`) or the first byte.
    pub fn open(path: &Path, format: Option<LogFormat>) -> Result<RawLog, String> {
        let file = path.display().to_string();
        let f = File::open(path).map_err(|e| format!("{file}: cannot read ({e})"))?;
        let bytes_read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut raw = BufReader::with_capacity(
            1 << 20,
            Counting {
                inner: f,
                count: bytes_read.clone(),
            },
        );
        let head = raw.fill_buf().map_err(|e| format!("{file}: {e}"))?;
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let mut reader: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::with_capacity(
                1 << 20,
                flate2::bufread::MultiGzDecoder::new(raw),
            ))
        } else {
            Box::new(raw)
        };
        let format = match format {
            Some(f) => f,
            None => {
                let name = path.to_string_lossy().to_lowercase();
                let name = name.strip_suffix(".gz").unwrap_or(&name);
                if name.ends_with(".csv") {
                    LogFormat::Csv
                } else if name.ends_with(".tsv") || name.ends_with(".inter") {
                    LogFormat::Tsv
                } else if [".json", ".jsonl", ".ndjson"]
                    .iter()
                    .any(|e| name.ends_with(e))
                {
                    LogFormat::Jsonl
                } else {
                    let head = reader.fill_buf().map_err(|e| format!("{file}: {e}"))?;
                    let first_line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
                    if head.first() == Some(&b'{') {
                        LogFormat::Jsonl
                    } else if first_line.contains(&b'\t') {
                        LogFormat::Tsv
                    } else {
                        LogFormat::Csv
                    }
                }
            }
        };
        Ok(RawLog {
            reader,
            bytes_read,
            format,
            gzip,
            file,
        })
    }

    /// Reads every row, calling `row` with each parsed one and `bad` with each malformed one
    /// (`FILE:LINE: problem`); `bad` returning an error stops the reading with it. The
    /// columns are the given names, else guessed from [`USER_NAMES`] etc.; the names used
    /// are returned first through `columns`.
    pub fn rows(
        self,
        cols: [Option<&str>; 3],
        columns: &mut dyn FnMut(&str, &str, Option<&str>),
        row: &mut dyn FnMut(Row),
        bad: &mut dyn FnMut(String) -> Result<(), String>,
    ) -> Result<(), String> {
        match self.format {
            LogFormat::Csv | LogFormat::Tsv => self.delimited(cols, columns, row, bad),
            LogFormat::Jsonl => self.json_lines(cols, columns, row, bad),
        }
    }

    fn delimited(
        self,
        cols: [Option<&str>; 3],
        columns: &mut dyn FnMut(&str, &str, Option<&str>),
        row: &mut dyn FnMut(Row),
        bad: &mut dyn FnMut(String) -> Result<(), String>,
    ) -> Result<(), String> {
        let file = self.file.clone();
        let delimiter = if self.format == LogFormat::Tsv {
            b'\t'
        } else {
            b','
        };
        let mut r = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(self.reader);
        let header: Vec<String> = r
            .byte_headers()
            .map_err(|e| format!("{file}:1: {e}"))?
            .iter()
            .map(|h| {
                let h = String::from_utf8_lossy(h);
                // A `.inter` header carries types: `user_id:token`.
                h.split(':').next().unwrap_or("").trim().to_string()
            })
            .collect();
        let names: Vec<&str> = header.iter().map(String::as_str).collect();
        let (u, i, t) = pick_columns(&names, cols).map_err(|e| format!("{file}:1: {e}"))?;
        columns(&header[u], &header[i], t.map(|t| header[t].as_str()));
        let width = header.len();
        let mut record = csv::ByteRecord::new();
        loop {
            match r.read_byte_record(&mut record) {
                Ok(false) => return Ok(()),
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    bad(format!("{file}:{line}: {e}"))?;
                    continue;
                }
            }
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != width {
                bad(format!(
                    "{file}:{line}: {} fields, the header has {width}",
                    record.len()
                ))?;
                continue;
            }
            let field = |k: usize| -> Result<String, String> {
                let v = std::str::from_utf8(&record[k])
                    .map_err(|_| {
                        format!("{file}:{line}: field `{}` is not valid UTF-8", header[k])
                    })?
                    .trim();
                if v.is_empty() {
                    return Err(format!("{file}:{line}: empty field `{}`", header[k]));
                }
                plain_token(v).map_err(|m| format!("{file}:{line}: field `{}` {m}", header[k]))
            };
            let fields = (field(u), field(i), t.map(field).transpose());
            emit(line, fields, row, bad)?;
        }
    }

    fn json_lines(
        mut self,
        cols: [Option<&str>; 3],
        columns: &mut dyn FnMut(&str, &str, Option<&str>),
        row: &mut dyn FnMut(Row),
        bad: &mut dyn FnMut(String) -> Result<(), String>,
    ) -> Result<(), String> {
        let file = self.file.clone();
        let mut buf = Vec::new();
        let mut line = 0u64;
        let mut chosen: Option<(String, String, Option<String>)> = None;
        loop {
            buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| format!("{file}:{}: {e}", line + 1))?;
            if n == 0 {
                return Ok(());
            }
            line += 1;
            let text = match std::str::from_utf8(&buf) {
                Ok(t) => t.trim(),
                Err(_) => {
                    bad(format!("{file}:{line}: not valid UTF-8"))?;
                    continue;
                }
            };
            if text.is_empty() {
                bad(format!("{file}:{line}: empty line"))?;
                continue;
            }
            let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(text) {
                Ok(o) => o,
                Err(e) => {
                    bad(format!("{file}:{line}: not a JSON object ({e})"))?;
                    continue;
                }
            };
            // The columns are chosen from the first object's keys.
            let (u, i, t) = match &chosen {
                Some(c) => c.clone(),
                None => {
                    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
                    let (u, i, t) =
                        pick_columns(&keys, cols).map_err(|e| format!("{file}:{line}: {e}"))?;
                    let c = (
                        keys[u].to_string(),
                        keys[i].to_string(),
                        t.map(|t| keys[t].to_string()),
                    );
                    columns(&c.0, &c.1, c.2.as_deref());
                    chosen = Some(c.clone());
                    c
                }
            };
            let field = |k: &str| -> Result<String, String> {
                match obj.get(k) {
                    Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                        plain_token(s.trim()).map_err(|m| format!("{file}:{line}: field `{k}` {m}"))
                    }
                    Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                    Some(serde_json::Value::String(_)) => {
                        Err(format!("{file}:{line}: empty field `{k}`"))
                    }
                    Some(other) => Err(format!(
                        "{file}:{line}: field `{k}` is {other}, not a string or number"
                    )),
                    None => Err(format!("{file}:{line}: no field `{k}`")),
                }
            };
            let fields = (field(&u), field(&i), t.as_deref().map(field).transpose());
            emit(line, fields, row, bad)?;
        }
    }
}

/// The fields of a row, parsed or not.
type Fields = (
    Result<String, String>,
    Result<String, String>,
    Result<Option<String>, String>,
);

/// Hands a row whose fields all parsed to `row`, else its first problem to `bad`.
fn emit(
    line: u64,
    fields: Fields,
    row: &mut dyn FnMut(Row),
    bad: &mut dyn FnMut(String) -> Result<(), String>,
) -> Result<(), String> {
    match fields {
        (Ok(user), Ok(item), Ok(time)) => {
            row(Row {
                line,
                user,
                item,
                time,
            });
            Ok(())
        }
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => bad(e),
    }
}

/// A token as the dataset files can hold it: no tab or line break (they separate fields
/// and rows there).
fn plain_token(v: &str) -> Result<String, String> {
    if v.contains(['\t', '\n', '\r']) {
        return Err("holds a tab or a line break".into());
    }
    Ok(v.to_string())
}

/// The user, item and (optional) time columns among `names`: the given ones, else the
/// first of the common names present (compared case-insensitively).
fn pick_columns(
    names: &[&str],
    given: [Option<&str>; 3],
) -> Result<(usize, usize, Option<usize>), String> {
    let find =
        |want: Option<&str>, common: &[&str], what: &str, required: bool| {
            if let Some(w) = want {
                return names.iter().position(|n| *n == w).map(Some).ok_or_else(|| {
                    format!("no column `{w}` (the columns are {})", names.join(", "))
                });
            }
            let guess = common
                .iter()
                .find_map(|c| names.iter().position(|n| n.eq_ignore_ascii_case(c)));
            match guess {
                Some(g) => Ok(Some(g)),
                None if required => Err(format!(
                    "no {what} column among {} (name it with --{what}-col)",
                    names.join(", ")
                )),
                None => Ok(None),
            }
        };
    let u = find(given[0], &USER_NAMES, "user", true)?.expect("required");
    let i = find(given[1], &ITEM_NAMES, "item", true)?.expect("required");
    let t = find(given[2], &TIME_NAMES, "time", false)?;
    if u == i {
        return Err(format!("the user and item columns are both `{}`", names[u]));
    }
    Ok((u, i, t))
}

/// Seconds since 1970 of a time field: a number (Unix time, or any number that orders the
/// rows) or an ISO 8601 date `YYYY-MM-DD`, with an optional time `[T ]HH:MM[:SS[.fff]]` and
/// zone `Z` / `+HH:MM` / `-HHMM` (no zone: UTC).
pub fn parse_time(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit())).then(|| t.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) as f64 * 86_400.0;
    let mut rest = &s[10..];
    if let Some(t) = rest.strip_prefix(['T', ' ']) {
        let tb = t.as_bytes();
        if tb.len() < 5 || tb[2] != b':' {
            return None;
        }
        let (hh, mm): (i64, i64) = (t[..2].parse().ok()?, t[3..5].parse().ok()?);
        let mut used = 5;
        let mut ss = 0.0;
        if tb.get(5) == Some(&b':') {
            let end = 8 + t[8.min(t.len())..]
                .bytes()
                .take_while(|c| c.is_ascii_digit() || *c == b'.')
                .count();
            ss = t.get(6..end)?.parse().ok()?;
            used = end;
        }
        if hh > 23 || mm > 59 || !(0.0..61.0).contains(&ss) {
            return None;
        }
        secs += (hh * 3600 + mm * 60) as f64 + ss;
        rest = &t[used..];
    }
    match rest {
        "" | "Z" => Some(secs),
        z if (z.starts_with('+') || z.starts_with('-')) => {
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let off =
                digits[..2].parse::<i64>().ok()? * 3600 + digits[2..].parse::<i64>().ok()? * 60;
            Some(if z.starts_with('+') {
                secs - off as f64
            } else {
                secs + off as f64
            })
        }
        _ => None,
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_numbers_or_iso_dates() {
        assert_eq!(parse_time("1400000000"), Some(1.4e9));
        assert_eq!(parse_time("1.5"), Some(1.5));
        assert_eq!(parse_time("1970-01-02"), Some(86_400.0));
        assert_eq!(parse_time("2000-03-01"), Some(951_868_800.0));
        assert_eq!(parse_time("2016-07-20 19:41:31"), Some(1_469_043_691.0));
        assert_eq!(parse_time("2016-07-20T19:41:31Z"), Some(1_469_043_691.0));
        assert_eq!(
            parse_time("2016-07-20T21:41:31+02:00"),
            Some(1_469_043_691.0)
        );
        assert_eq!(parse_time("2016-07-20T19:41:31.5"), Some(1_469_043_691.5));
        assert_eq!(parse_time("2016-07-20T19:41"), Some(1_469_043_660.0));
        for bad in [
            "",
            "noon",
            "2016-13-01",
            "2016-02-30",
            "2016-07-20T25:00",
            "2016-07-20X",
            "inf",
            "NaN",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn columns_are_given_or_guessed() {
        let n = ["reviewerID", "asin", "overall", "unixReviewTime"];
        assert_eq!(pick_columns(&n, [None; 3]), Ok((0, 1, Some(3))));
        assert_eq!(
            pick_columns(&n, [None, Some("overall"), None]),
            Ok((0, 2, Some(3)))
        );
        assert!(pick_columns(&["a", "b"], [None; 3])
            .unwrap_err()
            .contains("--user-col"));
        assert!(pick_columns(&n, [Some("who"), None, None])
            .unwrap_err()
            .contains("no column `who`"));
        assert_eq!(
            pick_columns(&["user_id", "business_id", "stars"], [None; 3]),
            Ok((0, 1, None))
        );
    }
}
