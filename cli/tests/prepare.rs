//! `data prepare` on a synthetic raw log (short users, unpopular items, tied times,
//! repeated pairs, bad rows) against a naive reference implementation of the filters.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use common::{cli, fails_with, tmp};

/// A row of the synthetic log: user, item, day (ties within a day are common).
type RawRow = (String, String, u64);

/// 400 users with 1 to 19 rows over 120 items drawn with a heavy head, times on 40 days.
fn synthetic() -> Vec<RawRow> {
    let mut x: u64 = 99;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    let mut rows = Vec::new();
    for u in 0..400 {
        let n = 1 + next() % 19;
        for _ in 0..n {
            // Squaring a uniform number puts most draws on the first items.
            let r = (next() % 1000) as f64 / 1000.0;
            let item = (r * r * 120.0) as u64;
            rows.push((
                format!("user-{u}"),
                format!("item {item}"),
                1_600_000_000 + 86_400 * (next() % 40),
            ));
        }
    }
    // Rows of all users interleaved, as a log is.
    let mut shuffled = Vec::with_capacity(rows.len());
    while !rows.is_empty() {
        let k = (next() as usize) % rows.len();
        shuffled.push(rows.swap_remove(k));
    }
    shuffled
}

/// The naive reference: de-duplicate (earliest), then drop users and items under 5 until
/// nothing changes; each user's items by (time, line).
fn reference(rows: &[(usize, RawRow)]) -> (BTreeMap<String, Vec<String>>, usize) {
    let mut sorted: Vec<&(usize, RawRow)> = rows.iter().collect();
    sorted.sort_by_key(|(line, (_, _, t))| (*t, *line));
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<&(usize, RawRow)> = sorted
        .into_iter()
        .filter(|(_, (u, i, _))| seen.insert((u.clone(), i.clone())))
        .collect();
    loop {
        let mut users: HashMap<&str, usize> = HashMap::new();
        let mut items: HashMap<&str, usize> = HashMap::new();
        for (_, (u, i, _)) in &kept {
            *users.entry(u).or_default() += 1;
            *items.entry(i).or_default() += 1;
        }
        let before = kept.len();
        let next: Vec<&(usize, RawRow)> = kept
            .iter()
            .copied()
            .filter(|(_, (u, i, _))| users[u.as_str()] >= 5 && items[i.as_str()] >= 5)
            .collect();
        if next.len() == before {
            break;
        }
        kept = next;
    }
    let mut seqs: BTreeMap<String, Vec<(u64, usize, String)>> = BTreeMap::new();
    for (line, (u, i, t)) in kept {
        seqs.entry(u.clone())
            .or_default()
            .push((*t, *line, i.clone()));
    }
    let mut ties = 0;
    let out = seqs
        .into_iter()
        .map(|(u, mut v)| {
            v.sort();
            ties += v.windows(2).filter(|w| w[0].0 == w[1].0).count();
            (u, v.into_iter().map(|(_, _, i)| i).collect())
        })
        .collect();
    (out, ties)
}

/// `token -> id` of a map file.
fn read_map(path: &Path) -> HashMap<usize, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (t, id) = l.split_once('\t').unwrap();
            (id.parse().unwrap(), t.to_string())
        })
        .collect()
}

/// The prepared sequences as tokens.
fn prepared(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let (users, items) = (
        read_map(&dir.join("user_map.tsv")),
        read_map(&dir.join("item_map.tsv")),
    );
    std::fs::read_to_string(dir.join("dataset.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split(' ').map(|v| v.parse::<usize>().unwrap());
            let u = users[&f.next().unwrap()].clone();
            (u, f.map(|i| items[&i].clone()).collect())
        })
        .collect()
}

#[test]
fn a_raw_log_becomes_the_5_core_dataset_a_naive_filter_gives() {
    let dir = tmp("prepare");
    let rows = synthetic();
    // CSV with quoted fields (items hold a space), bad rows sprinkled in.
    let mut csv = String::from("user_id,item_id,rating,timestamp\n");
    let mut good = Vec::new();
    let mut bad = 0;
    let mut line = 1;
    for (k, (u, i, t)) in rows.iter().enumerate() {
        line += 1;
        match k % 150 {
            7 => {
                csv += &format!("{u},,4,{t}\n");
                bad += 1;
                continue;
            }
            8 => {
                csv += &format!("{u},\"{i}\",4,yesterday\n");
                bad += 1;
                continue;
            }
            9 => {
                csv += &format!("{u},\"{i}\"\n");
                bad += 1;
                continue;
            }
            _ => {}
        }
        csv += &format!("{u},\"{i}\",4.5,{t}\n");
        good.push((line, (u.clone(), i.clone(), *t)));
    }
    let raw = dir.join("log.csv");
    std::fs::write(&raw, &csv).unwrap();
    let out = dir.join("data");
    let (r, o) = (raw.to_str().unwrap(), out.to_str().unwrap());
    // Without --skip-bad the first bad row stops it, naming its line; nothing is written.
    fails_with(
        &["data", "prepare", r, "--out", o, "--dedup"],
        "log.csv:9: empty field `item_id`",
    );
    assert!(!out.exists());
    fails_with(
        &["data", "prepare", r, "--out", o, "--min-user", "2"],
        "--min-user 2 is below 3",
    );
    cli()
        .args(["data", "prepare", r, "--out", o, "--dedup", "--skip-bad"])
        .assert()
        .success();

    let (want, ties) = reference(&good);
    assert!(
        want.len() > 50 && want.len() < 400,
        "the filters bite: {} users",
        want.len()
    );
    assert_eq!(prepared(&out), want);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    let actions: usize = want.values().map(Vec::len).sum();
    let items: std::collections::HashSet<&String> = want.values().flatten().collect();
    assert_eq!(stats["dataset"]["users"], want.len());
    assert_eq!(stats["dataset"]["items"], items.len());
    assert_eq!(stats["dataset"]["actions"], actions);
    assert_eq!(stats["bad_rows"], bad);
    assert_eq!(stats["rows"], good.len());
    assert_eq!(stats["tied_pairs"], ties);
    assert!(ties > 0, "the log has ties");
    // Both outputs load with the same ids, and as datasets the tool checks.
    for f in ["dataset.txt", "dataset.inter"] {
        cli()
            .args(["data", "check", out.join(f).to_str().unwrap()])
            .assert()
            .success();
    }
    let stats_of = |f: &str| -> serde_json::Value {
        let o = cli()
            .args(["data", "stats", "--json", out.join(f).to_str().unwrap()])
            .output()
            .unwrap();
        serde_json::from_slice(&o.stdout).unwrap()
    };
    assert_eq!(stats_of("dataset.txt"), stats_of("dataset.inter"));
    // An existing dataset is not replaced without --overwrite.
    let before = std::fs::read(out.join("dataset.txt")).unwrap();
    fails_with(
        &["data", "prepare", r, "--out", o, "--skip-bad"],
        "dataset.txt: exists",
    );
    assert_eq!(std::fs::read(out.join("dataset.txt")).unwrap(), before);

    // The same rows as gzip-compressed JSON lines (the Amazon dumps' keys) give the same data.
    let jsonl = dir.join("reviews.json.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&jsonl).unwrap(),
        flate2::Compression::fast(),
    );
    for (_, (u, i, t)) in &good {
        let obj =
            serde_json::json!({"reviewerID": u, "asin": i, "overall": 5.0, "unixReviewTime": t});
        writeln!(gz, "{obj}").unwrap();
    }
    gz.finish().unwrap();
    let out2 = dir.join("data2");
    let o = cli()
        .args([
            "data",
            "prepare",
            jsonl.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
            "--dedup",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("jsonl (gzip), columns user `reviewerID` item `asin` time `unixReviewTime`"));
    for f in [
        "dataset.txt",
        "user_map.tsv",
        "item_map.tsv",
        "dataset.inter",
    ] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(out2.join(f)).unwrap(),
            "{f}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
