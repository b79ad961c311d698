//! `mclrec-cli data prepare RAW --out DIR`: a raw interaction log in, a dataset out.
//!
//! Writes `dataset.txt` ("user item item ..." with dense ids), `user_map.tsv` and
//! `item_map.tsv` (token to id), `dataset.inter` (RecBole's atomic format, the original
//! tokens, the same ids when read back) and `stats.json` (the paper's Table 2 and what the
//! filters did). Nothing is written unless everything succeeded, and existing outputs are
//! never replaced without `--overwrite`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use clap::Args;
use mclrec_models::weights::write_atomic;
use mclrec_trainer::prepare::{Filter, LogBuilder, Prepared};
use mclrec_trainer::{token_map_tsv, MIN_INTERACTIONS};

use crate::raw_log::{parse_time, LogFormat, RawLog};

#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// The raw log: CSV / TSV with a header, or JSON lines; gzip-compressed or not.
    raw: PathBuf,
    /// The folder of the dataset.
    #[arg(long)]
    out: PathBuf,
    /// The layout [default: by the extension, else by the first line].
    #[arg(long, value_enum)]
    format: Option<LogFormat>,
    /// The user column [default: the first of user_id, userId, user, reviewerID, ...].
    #[arg(long)]
    user_col: Option<String>,
    /// The item column [default: the first of item_id, itemId, item, asin, business_id, ...].
    #[arg(long)]
    item_col: Option<String>,
    /// The time column, numbers or ISO dates [default: the first of timestamp, time,
    /// unixReviewTime, date, ...; none: the file's order].
    #[arg(long)]
    time_col: Option<String>,
    /// k-core: users need this many interactions (the paper: 5).
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    min_user: usize,
    /// k-core: items need this many interactions (the paper: 5).
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    min_item: usize,
    /// Keep only the earliest of repeated (user, item) pairs.
    #[arg(long)]
    dedup: bool,
    /// Count and report malformed rows instead of stopping at the first.
    #[arg(long)]
    skip_bad: bool,
    /// Replace the outputs of an earlier `prepare` in --out.
    #[arg(long)]
    overwrite: bool,
}

/// The files `prepare` writes.
const OUTPUTS: [&str; 5] = [
    "dataset.txt",
    "user_map.tsv",
    "item_map.tsv",
    "dataset.inter",
    "stats.json",
];

pub fn run(args: &PrepareArgs) -> Result<(), String> {
    if args.min_user < MIN_INTERACTIONS {
        return Err(format!(
            "--min-user {} is below {MIN_INTERACTIONS}: every user needs a training, a validation and a test item",
            args.min_user
        ));
    }
    if args.min_item < 1 {
        return Err("--min-item must be at least 1".into());
    }
    if !args.overwrite {
        if let Some(f) = OUTPUTS.iter().find(|f| args.out.join(f).exists()) {
            return Err(format!(
                "{}: exists; choose another --out or replace the dataset with --overwrite",
                args.out.join(f).display()
            ));
        }
    }
    let started = Instant::now();
    let log = RawLog::open(&args.raw, args.format)?;
    let total = std::fs::metadata(&args.raw).map_or(0, |m| m.len());
    let (format, gzip, read) = (log.format, log.gzip, log.bytes_read.clone());
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} ({eta}) {msg}",
        )
        .expect("a valid template"),
    );
    let mut builder = LogBuilder::default();
    // Both closures below count bad rows.
    let bad_rows = std::cell::Cell::new(0usize);
    let first_bad = std::cell::RefCell::new(None::<String>);
    let note_bad = |e: &str| {
        bad_rows.set(bad_rows.get() + 1);
        first_bad.borrow_mut().get_or_insert_with(|| e.to_string());
    };
    let mut used_cols = (String::new(), String::new(), None::<String>);
    let mut time_error = None::<String>;
    let skip_bad = args.skip_bad;
    let cols = [
        args.user_col.as_deref(),
        args.item_col.as_deref(),
        args.time_col.as_deref(),
    ];
    log.rows(
        cols,
        &mut |u, i, t| used_cols = (u.to_string(), i.to_string(), t.map(str::to_string)),
        &mut |row| {
            let time = match &row.time {
                Some(t) => match parse_time(t) {
                    Some(v) => v,
                    None => {
                        let e = format!(
                            "{}:{}: time `{t}` is neither a number nor an ISO 8601 date",
                            args.raw.display(),
                            row.line
                        );
                        note_bad(&e);
                        if !skip_bad && time_error.is_none() {
                            time_error = Some(e);
                        }
                        return;
                    }
                },
                // No time column: the file's order.
                None => row.line as f64,
            };
            if time_error.is_none() {
                builder.push(&row.user, &row.item, time, row.line);
            }
            if builder.len() % 65_536 == 0 {
                bar.set_position(read.load(Ordering::Relaxed));
            }
        },
        &mut |e| {
            note_bad(&e);
            if skip_bad {
                Ok(())
            } else {
                Err(format!("{e} (--skip-bad counts such rows and goes on)"))
            }
        },
    )?;
    bar.finish_and_clear();
    if let Some(e) = time_error {
        return Err(format!("{e} (--skip-bad counts such rows and goes on)"));
    }
    let (uc, ic, tc) = &used_cols;
    eprintln!(
        "{}: {}{}, columns user `{uc}` item `{ic}` time {}",
        args.raw.display(),
        format!("{format:?}").to_lowercase(),
        if gzip { " (gzip)" } else { "" },
        tc.as_ref()
            .map_or("none (the file's order)".to_string(), |t| format!("`{t}`"))
    );
    if builder.is_empty() {
        return Err(format!("{}: no rows", args.raw.display()));
    }
    let read_seconds = started.elapsed().as_secs_f64();
    let p = builder.finish(&Filter {
        min_user: args.min_user,
        min_item: args.min_item,
        dedup: args.dedup,
    });
    if p.users.is_empty() {
        return Err(format!(
            "{}: no user is left after the {}-user / {}-item core filter ({} rows read)",
            args.raw.display(),
            args.min_user,
            args.min_item,
            p.rows
        ));
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("{}: cannot create ({e})", args.out.display()))?;
    let bad_rows = bad_rows.get();
    let stats = stats_json(&p, args, bad_rows, &used_cols, read_seconds, started);
    let outputs = [
        dataset_text(&p),
        token_map_tsv("raw_user", &p.users),
        token_map_tsv("raw_item", &p.items[1..]),
        inter_file(&p),
        format!("{stats:#}\n"),
    ];
    for (name, text) in OUTPUTS.iter().zip(outputs) {
        let path = args.out.join(name);
        write_atomic(&path, text.as_bytes())
            .map_err(|e| format!("{}: cannot write ({e})", path.display()))?;
    }
    let s = &stats["dataset"];
    println!(
        "{} rows -> {} users, {} items, {} actions (avg length {:.2}, sparsity {:.2}%) in {}",
        p.rows,
        s["users"],
        s["items"],
        s["actions"],
        s["avg_length"].as_f64().unwrap_or(0.0),
        100.0 * s["sparsity"].as_f64().unwrap_or(0.0),
        args.out.display()
    );
    println!(
        "{bad_rows} bad rows skipped, {} duplicates removed, {}-core in {} rounds, {} tied pairs (ordered by file line), {:.1} s ({:.0} rows/s)",
        p.duplicates_removed,
        args.min_user,
        p.k_core_rounds,
        p.tied_pairs,
        stats["seconds"].as_f64().unwrap_or(0.0),
        stats["rows_per_s"].as_f64().unwrap_or(0.0)
    );
    if let Some(e) = first_bad.into_inner() {
        eprintln!("first bad row: {e}");
    }
    Ok(())
}

fn stats_json(
    p: &Prepared,
    args: &PrepareArgs,
    bad_rows: usize,
    cols: &(String, String, Option<String>),
    read_seconds: f64,
    started: Instant,
) -> serde_json::Value {
    let actions: usize = p.sequences.iter().map(Vec::len).sum();
    let (u, i) = (p.users.len() as f64, (p.items.len() - 1) as f64);
    let seconds = started.elapsed().as_secs_f64();
    serde_json::json!({
        "raw": args.raw.display().to_string(),
        "columns": {"user": cols.0, "item": cols.1, "time": cols.2},
        "rows": p.rows, "bad_rows": bad_rows,
        "raw_users": p.raw_users, "raw_items": p.raw_items,
        "dedup": args.dedup, "duplicates_removed": p.duplicates_removed,
        "min_user": args.min_user, "min_item": args.min_item, "k_core_rounds": p.k_core_rounds,
        "tied_pairs": p.tied_pairs,
        "tie_rule": "equal times keep the order of their rows in the file",
        "dataset": {
            "users": p.users.len(), "items": p.items.len() - 1, "actions": actions,
            "avg_length": actions as f64 / u, "sparsity": 1.0 - actions as f64 / (u * i),
        },
        "read_seconds": read_seconds, "seconds": seconds,
        "rows_per_s": p.rows as f64 / seconds,
    })
}

/// "user item item ..." with dense ids (users 1.., items as [`Prepared::items`]).
fn dataset_text(p: &Prepared) -> String {
    let mut out = String::new();
    for (u, seq) in p.sequences.iter().enumerate() {
        out += &(u + 1).to_string();
        for it in seq {
            out.push(' ');
            out += &it.to_string();
        }
        out.push('\n');
    }
    out
}

/// RecBole's atomic file of the kept interactions with their original tokens, users in
/// order and each user's items in time order (read back, the ids are those of dataset.txt).
fn inter_file(p: &Prepared) -> String {
    let mut out = String::from("user_id:token\titem_id:token\ttimestamp:float\n");
    for ((user, seq), times) in p.users.iter().zip(&p.sequences).zip(&p.times) {
        for (it, t) in seq.iter().zip(times) {
            out += &format!("{user}\t{}\t{t}\n", p.items[*it]);
        }
    }
    out
}
