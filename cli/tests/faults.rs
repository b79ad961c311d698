//! Nothing lost and nothing silently wrong: the binary under re-runs, busy directories,
//! kills at every file-system step, poisoned weights, huge ids, changed data and bad input.
//! Every refusal is exit code 2 with one line naming the problem, and leaves every existing
//! file byte-identical.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{cli, fails_with, metrics_without_time, tiny, tmp};

/// The settings of the short runs below (3 epochs of the tiny data, one thread).
const SHORT: [&str; 10] = [
    "--epochs",
    "3",
    "--patience",
    "100",
    "--batch-size",
    "16",
    "--max-len",
    "10",
    "--threads",
    "1",
];

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("mclrec-cli")
}

fn run_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("run").args(args);
    c
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `dir` with its bytes (but the lock file, which holds its last owner's
/// pid).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file() && e.file_name() != ".lock")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn results(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("results.json")).unwrap()
}

/// A copy of a safetensors file with one value of `tensor` set to NaN.
fn poison(src: &Path, dst: &Path, tensor: &str) {
    let mut b = std::fs::read(src).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let at = 8 + n + header[tensor]["data_offsets"][0].as_u64().unwrap() as usize + 4;
    b[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(dst, b).unwrap();
}

/// The crash-test points of `mclrec_trainer::fault`, in the order a run reaches them.
const POINTS: [&str; 9] = [
    "run:configured",
    "last.safetensors:before-write",
    "last.safetensors:temp-written",
    "last.safetensors:renamed",
    "best.safetensors:before-write",
    "best.safetensors:temp-written",
    "best.safetensors:renamed",
    "metrics:before-append",
    "metrics:appended",
];

#[test]
fn a_kill_at_any_step_of_a_checkpoint_resumes_to_the_uninterrupted_numbers() {
    let dir = tmp("kill");
    let data = tiny(&dir);
    let d = data.to_str().unwrap();
    let full = dir.join("full");
    ok(run_cmd(&["--dataset", d, "--out", full.to_str().unwrap()])
        .args(SHORT)
        .output()
        .unwrap());
    for point in POINTS {
        // The first epoch, and a later one (where `best` is written only if it is the best).
        let times: &[usize] = if point == "run:configured" {
            &[1]
        } else {
            &[1, 2]
        };
        for &n in times {
            let killed = dir.join(format!("{}-{n}", point.replace([':', '.'], "-")));
            let out = run_cmd(&["--dataset", d, "--out", killed.to_str().unwrap()])
                .args(SHORT)
                .env("MCLREC_KILL_AT", format!("{point}@{n}"))
                .output()
                .unwrap();
            if out.status.success() {
                // Only `best` of a later epoch may be skipped: that epoch was not the best.
                assert!(
                    point.starts_with("best") && n > 1,
                    "{point}@{n} never reached"
                );
            } else {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(
                    out.status.signal(),
                    Some(9),
                    "{point}@{n}: {}",
                    stderr(&out)
                );
                ok(run_cmd(&["--resume", killed.to_str().unwrap()])
                    .output()
                    .unwrap());
            }
            assert_eq!(
                metrics_without_time(&killed),
                metrics_without_time(&full),
                "{point}@{n}: metrics.jsonl"
            );
            assert_eq!(
                results(&killed),
                results(&full),
                "{point}@{n}: results.json"
            );
            let names: Vec<String> = snapshot(&killed).into_keys().collect();
            assert!(
                !names.iter().any(|f| f.contains(".tmp")),
                "{point}@{n}: stale temporary files {names:?}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_run_never_replaces_another_unless_told_to() {
    let dir = tmp("clobber");
    let data = tiny(&dir);
    let d = data.to_str().unwrap();
    let first = dir.join("first");
    let f = first.to_str().unwrap();
    ok(run_cmd(&["--dataset", d, "--out", f])
        .args(SHORT)
        .output()
        .unwrap());
    let before = snapshot(&first);
    // Again into the same directory: refused, with what to do.
    let out = run_cmd(&["--dataset", d, "--out", f]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("already holds a run") && err.contains(&format!("--resume {f}")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // A run that fails on its data after start-up, into the same directory.
    let header_only = dir.join("empty.inter");
    std::fs::write(
        &header_only,
        "user_id:token\titem_id:token\ttimestamp:float\n",
    )
    .unwrap();
    fails_with(
        &[
            "run",
            "--dataset",
            header_only.to_str().unwrap(),
            "--out",
            f,
            "--overwrite",
        ],
        "empty.inter: no users in the file",
    );
    assert_eq!(snapshot(&first), before, "nothing written by refused runs");

    // The default directory: a fresh numbered name once the first holds a run.
    for expect in ["runs/mclrec-tiny", "runs/mclrec-tiny-2"] {
        let out = ok(run_cmd(&["--dataset", "tiny.txt", "--epochs", "1"])
            .args(&SHORT[2..])
            .current_dir(&dir)
            .output()
            .unwrap());
        assert!(
            stderr(&out).contains(&format!("-> {expect}\n")),
            "{}",
            stderr(&out)
        );
        assert!(dir.join(expect).join("results.json").is_file());
    }

    // --overwrite removes the old run first: after a new run killed in its first epoch, no
    // file of the old one is left to be read as the new one's.
    let out = run_cmd(&["--dataset", d, "--out", f, "--overwrite"])
        .args(SHORT)
        .env("MCLREC_KILL_AT", "last.safetensors:before-write")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "killed: {}", stderr(&out));
    let left: Vec<String> = snapshot(&first).into_keys().collect();
    assert_eq!(left, ["config.toml", "item_map.tsv", "metrics.jsonl"]);
    assert_eq!(
        std::fs::read_to_string(first.join("metrics.jsonl")).unwrap(),
        ""
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Waits until the run in `dir` has logged an epoch.
fn wait_for_an_epoch(dir: &Path) {
    let t0 = Instant::now();
    while std::fs::read_to_string(dir.join("metrics.jsonl")).map_or(true, |s| s.is_empty()) {
        assert!(t0.elapsed() < Duration::from_secs(120), "no epoch finished");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_busy_directory_is_refused_and_sigterm_stops_a_run_resumably() {
    let dir = tmp("busy");
    let data = tiny(&dir);
    let d = data.to_str().unwrap();
    let busy = dir.join("busy");
    let b = busy.to_str().unwrap();
    let long = [
        "--epochs",
        "100000",
        "--patience",
        "100000",
        "--max-len",
        "10",
    ];
    let mut child = run_cmd(&["--dataset", d, "--out", b, "--threads", "1"])
        .args(long)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_an_epoch(&busy);
    let pid = child.id().to_string();
    let busy_msg = format!("{b} is in use by pid {pid}");
    fails_with(&["run", "--resume", b], &busy_msg);
    fails_with(
        &["run", "--dataset", d, "--out", b, "--overwrite"],
        &busy_msg,
    );
    assert!(
        busy.join("last.safetensors").is_file(),
        "not removed by the refused overwrite"
    );

    // SIGTERM (what `timeout` and schedulers send): the batch ends, a checkpoint is written.
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "SIGTERM ignored");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains(&format!("mclrec-cli run --resume {b}")),
        "{err}"
    );
    // The lock died with the process; the run continues (and may be shortened).
    let logged = metrics_without_time(&busy).len();
    ok(
        run_cmd(&["--resume", b, "--epochs", &(logged + 1).to_string()])
            .output()
            .unwrap(),
    );
    assert_eq!(metrics_without_time(&busy).len(), logged + 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resume_works_from_anywhere_and_refuses_other_settings_or_data() {
    let dir = tmp("resume");
    let data = tiny(&dir);
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    // Started with a relative dataset path, killed after its first epoch.
    let out = run_cmd(&["--dataset", "tiny.txt", "--out", "run"])
        .args(SHORT)
        .current_dir(&dir)
        .env("MCLREC_KILL_AT", "metrics:appended@1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "{}", stderr(&out));
    std::fs::write(run.join(".last.safetensors.tmp4242"), "half a file").unwrap();
    let before = snapshot(&run);
    fails_with(
        &["run", "--resume", r, "--lr", "0.01"],
        "--lr: differ from the run's settings",
    );
    fails_with(
        &["run", "--resume", r, "--model", "sasrec"],
        "--model: differ from the run's settings",
    );
    fails_with(
        &["run", "--resume", r, "--seed=-1"],
        "invalid value '-1' for '--seed",
    );
    assert_eq!(snapshot(&run), before, "refused resumes write nothing");
    // The same shape, other data: two items of a line swapped.
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut f: Vec<&str> = lines[0].split(' ').collect();
    f.swap(1, 2);
    lines[0] = f.join(" ");
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let out = cli().args(["run", "--resume", r]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("has changed: its SHA-256 is"), "{err}");
    std::fs::write(&data, text).unwrap();
    // From another working directory, with the settings that may change.
    ok(Command::new(bin())
        .args(["run", "--resume", r, "--patience", "50", "--threads", "2"])
        .current_dir("/")
        .output()
        .unwrap());
    assert_eq!(metrics_without_time(&run).len(), 3);
    assert!(
        !run.join(".last.safetensors.tmp4242").exists(),
        "stale temp removed"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn non_finite_weights_are_refused_and_never_written() {
    let dir = tmp("nan");
    let data = tiny(&dir);
    let d = data.to_str().unwrap();
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    let out = run_cmd(&["--dataset", d, "--out", r])
        .args(SHORT)
        .env("MCLREC_KILL_AT", "metrics:appended@2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "{}", stderr(&out));
    let bad = dir.join("bad.safetensors");
    let tensor = "trm_encoder.layer.0.feed_forward.LayerNorm.weight";
    poison(&run.join("best.safetensors"), &bad, tensor);
    let b = bad.to_str().unwrap();
    let named = format!("bad.safetensors: tensor `{tensor}` holds a non-finite value");
    fails_with(&["eval", "--weights", b, "--dataset", d], &named);
    fails_with(
        &[
            "recommend",
            "--checkpoint",
            b,
            "--dataset",
            d,
            "--user",
            "u1",
        ],
        &named,
    );
    fails_with(
        &[
            "figure",
            "groups",
            "--model",
            &format!("x={b}"),
            "--dataset",
            d,
            "--out",
            "x.png",
        ],
        &named,
    );
    poison(&run.join("last.safetensors"), &bad, "item_embedding.weight");
    std::fs::copy(&bad, run.join("last.safetensors")).unwrap();
    let before = snapshot(&run);
    fails_with(
        &["run", "--resume", r],
        "last.safetensors: tensor `item_embedding.weight` holds a non-finite value",
    );
    assert_eq!(snapshot(&run), before);
    // A learning rate that blows up in the first batch: no checkpoint, and none named.
    let blown = dir.join("blown");
    let out = run_cmd(&[
        "--dataset",
        d,
        "--out",
        blown.to_str().unwrap(),
        "--lr",
        "1e30",
    ])
    .args(&SHORT[2..])
    .output()
    .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("No checkpoint was written yet"), "{err}");
    assert!(!blown.join("last.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn item_ids_are_tokens_of_any_size_and_their_map_travels_with_the_checkpoint() {
    let dir = tmp("tokens");
    let small = tiny(&dir);
    // The same data with every item id i turned into a 64-bit token.
    let token = |i: u64| (u64::MAX - 1000 + i).to_string();
    let text: String = std::fs::read_to_string(&small)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split(' ');
            let user = f.next().unwrap().to_string();
            let items: Vec<String> = f.map(|i| token(i.parse().unwrap())).collect();
            format!("{user} {}\n", items.join(" "))
        })
        .collect();
    let big = dir.join("big.txt");
    std::fs::write(&big, &text).unwrap();
    let g = big.to_str().unwrap();
    let out = ok(cli().args(["data", "check", g]).output().unwrap());
    assert!(String::from_utf8_lossy(&out.stdout).contains("30 items"));
    let run = dir.join("run");
    ok(run_cmd(&["--dataset", g, "--out", run.to_str().unwrap()])
        .args(SHORT)
        .output()
        .unwrap());
    let best = run.join("best.safetensors");
    let w = best.to_str().unwrap();
    let out = ok(cli()
        .args([
            "recommend",
            "--checkpoint",
            w,
            "--dataset",
            g,
            "--user",
            "u3",
            "--json",
        ])
        .output()
        .unwrap());
    let recs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in recs.as_array().unwrap() {
        let t: u64 = r["item"].as_str().unwrap().parse().unwrap();
        assert!(t > u64::MAX - 1000, "printed tokens are the file's: {t}");
    }
    // The users in reverse order number the items differently; the checkpoint's own token
    // map still scores the same items, so the metrics are the run's.
    let reversed = dir.join("reversed.txt");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.reverse();
    std::fs::write(&reversed, lines.join("\n") + "\n").unwrap();
    let eval = |data: &Path| -> serde_json::Value {
        let out = ok(cli()
            .args([
                "eval",
                "--weights",
                w,
                "--dataset",
                data.to_str().unwrap(),
                "--json",
            ])
            .output()
            .unwrap());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let run_results: serde_json::Value = serde_json::from_str(&results(&run)).unwrap();
    assert_eq!(eval(&big)["test"], run_results["test"]);
    // Users are averaged in another order: equal up to the rounding of the sums.
    let again = eval(&reversed);
    for (k, v) in run_results["test"].as_object().unwrap() {
        let (a, b) = (v.as_f64().unwrap(), again["test"][k].as_f64().unwrap());
        assert!((a - b).abs() < 1e-12, "{k}: {a} vs {b}");
    }
    // The map beside it is the `--item-map` format; a row beyond the table is an error.
    let map = std::fs::read_to_string(run.join("item_map.tsv")).unwrap();
    assert_eq!(map.lines().count(), 31);
    let far = dir.join("far.tsv");
    std::fs::write(
        &far,
        format!("raw_item\tinternal_id\n{}\t5000000000\n", token(1)),
    )
    .unwrap();
    fails_with(
        &[
            "eval",
            "--weights",
            w,
            "--dataset",
            g,
            "--item-map",
            far.to_str().unwrap(),
        ],
        "maps to row 5000000000, but the weights' item table has rows 1 to 30",
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn odd_input_is_named_or_warned_about_never_a_panic() {
    let dir = tmp("odd");
    let data = tiny(&dir);
    let d = data.to_str().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let header = "user_id:token\titem_id:token\ttimestamp:float\n";
    let h = write("h.inter", header.as_bytes());
    fails_with(&["data", "stats", &h], "h.inter: no users in the file");
    let out = cli().args(["data", "check", &h]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    fails_with(
        &[
            "data",
            "stats",
            &write("t.inter", b"user_id:token\titem_id:tok\n"),
        ],
        "unknown type `tok`",
    );
    fails_with(
        &[
            "data",
            "stats",
            &write("e.inter", format!("{header}u\t\t1\n").as_bytes()),
        ],
        "e.inter:2: empty item_id field",
    );
    fails_with(
        &[
            "data",
            "stats",
            &write("bin.txt", b"u1 1 2 3\nu2 1 \xff 3\n"),
        ],
        "bin.txt:2: not valid UTF-8",
    );
    // A byte-order mark is not part of the first user's name.
    let bom = write(
        "bom.txt",
        &[b"\xEF\xBB\xBF".as_slice(), &std::fs::read(&data).unwrap()].concat(),
    );
    let out = ok(cli().args(["data", "check", &bom]).output().unwrap());
    assert!(String::from_utf8_lossy(&out.stdout).contains("81 users"));
    fails_with(
        &["run", "--dataset", d, "--patience", "0"],
        "patience must be at least 1",
    );
    fails_with(
        &["run", "--dataset", d, "--threads", "100000"],
        "threads 100000 is more than 4 per core",
    );
    // Settings: a dataset by path gets the preset it is, and the run says which.
    let sports = dir.join("sports-copy.txt");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/amazon-sports.txt"),
        &sports,
    )
    .unwrap();
    let configured = |args: &[&str], out: &str| -> (String, String) {
        let o = run_cmd(args)
            .args(["--out", dir.join(out).to_str().unwrap()])
            .env("MCLREC_KILL_AT", "run:configured")
            .output()
            .unwrap();
        let config = std::fs::read_to_string(dir.join(out).join("config.toml")).unwrap();
        (stderr(&o), config)
    };
    let (err, config) = configured(&["--dataset", sports.to_str().unwrap()], "sports");
    assert!(
        err.contains(
            "settings: preset sports (the file is the built-in sports data); model mclrec lambda 0.04 beta 0.4"
        ),
        "{err}"
    );
    assert!(config.contains("lambda = 0.04\nbeta = 0.4\n"), "{config}");
    let (err, config) = configured(&["--dataset", d, "--preset", "yelp"], "yelp");
    assert!(
        err.contains("preset yelp (as given); model mclrec lambda 0.03 beta 0.1"),
        "{err}"
    );
    assert!(config.contains("lambda = 0.03\n"), "{config}");
    // No learning signal: said before training.
    let one = write("one.txt", b"u1 7 7 7\nu2 7 7 7 7\nu3 7 7 7\n");
    let (err, _) = configured(&["--dataset", &one], "one");
    assert!(err.contains("warning: one.txt has 1 item(s)"), "{err}");
    // recommend: k above the item count.
    let run = dir.join("run");
    ok(run_cmd(&["--dataset", d, "--out", run.to_str().unwrap()])
        .args(["--epochs", "1", "--max-len", "10"])
        .output()
        .unwrap());
    let best = run.join("best.safetensors");
    fails_with(
        &[
            "eval",
            "--weights",
            best.to_str().unwrap(),
            "--dataset",
            d,
            "--noise",
            "-0.5",
        ],
        "the noise ratio must be in [0, 1], got -0.5",
    );
    fails_with(
        &[
            "recommend",
            "--checkpoint",
            best.to_str().unwrap(),
            "--dataset",
            d,
            "--user",
            "u1",
            "-k",
            "100000",
        ],
        "-k 100000 is more than the 30 items",
    );
    ok(cli()
        .args([
            "recommend",
            "--checkpoint",
            best.to_str().unwrap(),
            "--dataset",
            &bom,
            "--user",
            "u1",
        ])
        .output()
        .unwrap());
    std::fs::remove_dir_all(&dir).ok();
}
