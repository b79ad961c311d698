//! The `mclrec-cli` binary end to end on tiny data: the main paths work, and every bad
//! input gives exit code 2, one clear message, no panic, and leaves files alone.

mod common;

use std::path::{Path, PathBuf};

use common::{cli, fails_with, metrics_without_time, tiny, tmp};

fn train_tiny(dir: &Path) -> PathBuf {
    let data = tiny(dir);
    let run = dir.join("run");
    let out = cli()
        .args([
            "run",
            "--dataset",
            data.to_str().unwrap(),
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--max-len",
            "10",
        ])
        .args(["--out", run.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for split in ["valid", "test"] {
        for k in [5, 10, 20, 50] {
            for m in ["hr", "ndcg", "mrr"] {
                assert!(
                    results[split][format!("{m}@{k}")].is_f64(),
                    "{split} {m}@{k}"
                );
            }
        }
    }
    run
}

#[test]
fn run_then_eval_recommend_and_stats_on_its_checkpoint() {
    let dir = tmp("main");
    let run = train_tiny(&dir);
    let data = dir.join("tiny.txt");
    let d = data.to_str().unwrap();
    for f in [
        "config.toml",
        "metrics.jsonl",
        "results.json",
        "best.safetensors",
        "last.safetensors",
        "losses.png",
        "validation.png",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let best = run.join("best.safetensors");
    let b = best.to_str().unwrap();

    let out = cli()
        .args(["eval", "--weights", b, "--dataset", d, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The same numbers as the run's own test evaluation of its best model.
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(v["test"]["hr@10"], results["test"]["hr@10"]);

    // --by-length: the groups partition the users, and their metrics average to the total.
    let json = |extra: &[&str]| -> serde_json::Value {
        let out = cli()
            .args(["eval", "--weights", b, "--dataset", d, "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let by = json(&["--by-length"]);
    let groups = by["by_length"].as_object().unwrap();
    assert_eq!(groups.len(), 3);
    let users: f64 = groups.values().map(|g| g["users"].as_f64().unwrap()).sum();
    let weighted: f64 = groups
        .values()
        .map(|g| g["users"].as_f64().unwrap() * g["ndcg@10"].as_f64().unwrap())
        .sum();
    let total = by["test"]["ndcg@10"].as_f64().unwrap();
    assert!(
        (weighted / users - total).abs() < 1e-12,
        "{weighted} / {users} vs {total}"
    );
    // --noise 0 changes nothing; a large ratio changes the inputs and so the metrics.
    assert_eq!(json(&["--noise", "0"])["test"], v["test"]);
    let noisy = json(&["--noise", "0.5", "--seed", "3"]);
    assert_eq!(noisy["noise"], 0.5);
    assert_ne!(noisy["test"], v["test"]);
    assert_eq!(
        json(&["--noise", "0.5", "--seed", "3"])["test"],
        noisy["test"]
    );

    let out = cli()
        .args([
            "recommend",
            "--checkpoint",
            b,
            "--dataset",
            d,
            "--user",
            "u3",
            "-k",
            "5",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 6, "{text}");

    let out = cli()
        .args([
            "recommend",
            "--checkpoint",
            b,
            "--dataset",
            d,
            "--history",
            "4 5 6",
            "-k",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    let recs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items: Vec<&str> = recs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"].as_str().unwrap())
        .collect();
    assert_eq!(items.len(), 3);
    assert!(
        !items.iter().any(|i| ["4", "5", "6"].contains(i)),
        "history excluded: {items:?}"
    );
    let out = cli()
        .args([
            "recommend",
            "--checkpoint",
            b,
            "--dataset",
            d,
            "--history",
            "4 5 6",
            "-k",
            "30",
            "--include-history",
            "--json",
        ])
        .output()
        .unwrap();
    let recs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(recs.as_array().unwrap().len(), 30);

    let out = cli().args(["data", "stats", d, "--json"]).output().unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = std::fs::read_to_string(&data).unwrap();
    let actions: usize = text.lines().map(|l| l.split_whitespace().count() - 1).sum();
    assert_eq!(
        (
            s["users"].as_u64(),
            s["items"].as_u64(),
            s["actions"].as_u64()
        ),
        (Some(81), Some(30), Some(actions as u64))
    );
    cli().args(["data", "check", d]).assert().success();

    // figure: PNGs, and tables whose clean column is the evaluation above.
    let png = |name: &str| dir.join(name);
    let is_png = |p: &Path| std::fs::read(p).is_ok_and(|b| b.starts_with(b"\x89PNG"));
    let model = format!("tiny={b}");
    let figure = |args: &[&str]| -> String {
        let out = cli().arg("figure").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let noise_png = png("noise.png");
    let table = figure(&[
        "noise",
        "--model",
        &model,
        "--dataset",
        d,
        "--ratios",
        "0,0.5",
        "--out",
        noise_png.to_str().unwrap(),
    ]);
    assert!(is_png(&noise_png), "noise.png");
    let clean = format!(
        "| tiny (HR@20 / NDCG@20) | {:.4} / {:.4} |",
        v["test"]["hr@20"].as_f64().unwrap(),
        v["test"]["ndcg@20"].as_f64().unwrap()
    );
    assert!(table.contains(&clean), "{clean} not in\n{table}");
    let groups_png = png("groups.png");
    let table = figure(&[
        "groups",
        "--model",
        &model,
        "--dataset",
        d,
        "--out",
        groups_png.to_str().unwrap(),
    ]);
    assert!(is_png(&groups_png), "groups.png");
    assert_eq!(
        table.lines().filter(|l| l.starts_with("| tiny |")).count(),
        3
    );
    let curves_png = png("curves.png");
    figure(&[
        "curves",
        "--run",
        &format!("tiny={}", run.display()),
        "--out",
        curves_png.to_str().unwrap(),
    ]);
    assert!(is_png(&curves_png), "curves.png");
    // figure batch: runs of one name and batch size are averaged, other sizes get a column.
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let size = config
        .lines()
        .find_map(|l| l.strip_prefix("batch_size = "))
        .unwrap()
        .to_string();
    let fake = |name: &str, batch: &str, hr: f64, ndcg: f64| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let c = config.replace(
            &format!("batch_size = {size}"),
            &format!("batch_size = {batch}"),
        );
        std::fs::write(d.join("config.toml"), c).unwrap();
        let r = serde_json::json!({"best_epoch": 1, "test": {"hr@20": hr, "ndcg@20": ndcg}});
        std::fs::write(d.join("results.json"), r.to_string()).unwrap();
        format!("tiny={}", d.display())
    };
    let batch_png = png("batch.png");
    let table = figure(&[
        "batch",
        "--run",
        &format!("tiny={}", run.display()),
        "--run",
        &fake("same-size", &size, 0.5, 0.25),
        "--run",
        &fake("other-size", "1000", 0.3, 0.1),
        "--out",
        batch_png.to_str().unwrap(),
    ]);
    assert!(is_png(&batch_png), "batch.png");
    let (hr, ndcg) = (
        results["test"]["hr@20"].as_f64().unwrap(),
        results["test"]["ndcg@20"].as_f64().unwrap(),
    );
    let row = format!(
        "| tiny | {:.4} / {:.4} (mean of 2) | 0.3000 / 0.1000 |",
        (hr + 0.5) / 2.0,
        (ndcg + 0.25) / 2.0
    );
    assert!(
        table.contains(&format!("B = {size} | B = 1000 |")),
        "{table}"
    );
    assert!(table.contains(&row), "{row} not in\n{table}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_one_clear_line_and_exit_code_2() {
    let dir = tmp("bad");
    let data = tiny(&dir);
    let d = data.to_str().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    // Files.
    fails_with(
        &["run", "--dataset", "/no/such/file.txt"],
        "/no/such/file.txt: no such file",
    );
    fails_with(
        &["eval", "--weights", "/no/such.safetensors", "--dataset", d],
        "/no/such.safetensors: cannot read",
    );
    fails_with(
        &["figure", "groups", "--model", "no-name", "--out", "x.png"],
        "`no-name`: expected NAME=PATH",
    );
    fails_with(
        &[
            "figure",
            "batch",
            "--run",
            "x=/no/such/run",
            "--out",
            "x.png",
        ],
        "/no/such/run/config.toml: cannot read",
    );
    fails_with(
        &[
            "run",
            "--dataset",
            &write("alpha.txt", "u1 1 2 3\nu2 4 x 6\n"),
        ],
        "alpha.txt:2: item `x` is not a positive integer id",
    );
    fails_with(
        &[
            "run",
            "--dataset",
            &write("empty.txt", "u1 1 2 3\n\nu2 1 2 3\n"),
        ],
        "empty.txt:2: empty line",
    );
    fails_with(
        &[
            "run",
            "--dataset",
            &write("short.txt", "u1 1 2 3\nu2 1 2\n"),
        ],
        "short.txt:2: user `u2` has 2 interactions",
    );
    fails_with(
        &[
            "run",
            "--dataset",
            &write("dup.txt", "u1 1 2 3\nu1 1 2 3\n"),
        ],
        "dup.txt:2: user `u1` appears again",
    );
    let out = cli()
        .args(["data", "check", &dir.join("dup.txt").to_string_lossy()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("dup.txt:2:"));
    // Values.
    fails_with(
        &["run", "--dataset", d, "--batch-size", "0"],
        "batch-size must be at least 2",
    );
    fails_with(
        &["run", "--dataset", d, "--lr", "-0.1"],
        "lr must be a positive number",
    );
    fails_with(
        &["run", "--dataset", d, "--lr", "NaN"],
        "lr must be a positive number",
    );
    fails_with(
        &["run", "--dataset", d, "--max-len", "0"],
        "max-len must be at least 1",
    );
    fails_with(
        &["run", "--dataset", d, "--early-stop-metric", "auc"],
        "early-stop-metric `auc`",
    );
    fails_with(
        &["run", "--dataset", "movielens"],
        "movielens: no such file (datasets are `beauty`, `sports`, or a path)",
    );
    fails_with(&["run", "--model", "word2vec"], "`word2vec` is not a model");
    fails_with(&["run", "--schedule", "four-step"], "four-step");
    fails_with(&["run", "--frobnicate"], "--frobnicate");
    // Without the `cuda` feature the build is named as the reason; with it (on a machine
    // without a GPU, as CI's) the driver or the GPU is.
    #[cfg(not(feature = "cuda"))]
    fails_with(
        &["run", "--dataset", d, "--device", "cuda"],
        "without CUDA support",
    );
    #[cfg(feature = "cuda")]
    if mclrec_tensor::Device::cuda(0).is_err() {
        let expected = match mclrec_tensor::Device::cuda(0) {
            Err(mclrec_tensor::DeviceError::NoGpu(_)) => "no GPU with ordinal 0",
            _ => "no CUDA driver could be loaded",
        };
        fails_with(&["run", "--dataset", d, "--device", "cuda"], expected);
    }
    fails_with(
        &[
            "run",
            "--config",
            &write("bad.toml", "epochs = 3\nbatch_sise = 64\n"),
        ],
        "bad.toml:2: unknown setting `batch_sise`",
    );
    // Checkpoints.
    fails_with(
        &[
            "eval",
            "--weights",
            &write("corrupt.safetensors", "not a checkpoint"),
            "--dataset",
            d,
        ],
        "corrupt.safetensors: not a valid safetensors file",
    );
    let run = train_tiny(&dir);
    let best = std::fs::read(run.join("best.safetensors")).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &best[..best.len() / 2]).unwrap();
    fails_with(
        &[
            "eval",
            "--weights",
            truncated.to_str().unwrap(),
            "--dataset",
            d,
        ],
        "truncated.safetensors",
    );
    // The checkpoint knows its item tokens: a dataset with another item is refused.
    let other = write("other.txt", "u1 1 2 3\nu2 2 3 4\nu3 3 4 99\n");
    fails_with(
        &[
            "eval",
            "--weights",
            run.join("best.safetensors").to_str().unwrap(),
            "--dataset",
            &other,
        ],
        "(the item tokens it was trained with): item `99` of the dataset is not in the map",
    );
    fails_with(
        &[
            "recommend",
            "--checkpoint",
            run.join("best.safetensors").to_str().unwrap(),
            "--dataset",
            d,
            "--history",
            "1 zz",
        ],
        "unknown item token `zz`",
    );
    fails_with(
        &[
            "recommend",
            "--checkpoint",
            run.join("best.safetensors").to_str().unwrap(),
            "--dataset",
            d,
            "--user",
            "u1",
            "-k",
            "0",
        ],
        "-k must be at least 1",
    );
    // Nothing overwritten by a failed run into an existing directory.
    let before = std::fs::read(run.join("last.safetensors")).unwrap();
    fails_with(
        &[
            "run",
            "--dataset",
            d,
            "--out",
            run.to_str().unwrap(),
            "--lr",
            "-1",
        ],
        "lr must be",
    );
    assert_eq!(std::fs::read(run.join("last.safetensors")).unwrap(), before);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ctrl_c_writes_a_resumable_checkpoint_and_exits_130() {
    let dir = tmp("interrupt");
    let data = tiny(&dir);
    let d = data.to_str().unwrap().to_string();
    let common = [
        "--dataset",
        &d,
        "--epochs",
        "12",
        "--patience",
        "100",
        "--batch-size",
        "8",
        "--max-len",
        "10",
        "--threads",
        "1",
    ];
    let (stopped, full) = (dir.join("stopped"), dir.join("full"));
    let bin = assert_cmd::cargo::cargo_bin("mclrec-cli");
    let child = std::process::Command::new(&bin)
        .arg("run")
        .args(common)
        .args(["--out", stopped.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first epoch is done, in the middle of a later one.
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(stopped.join("metrics.jsonl")).map_or(true, |s| s.is_empty()) {
        assert!(t0.elapsed().as_secs() < 120, "no epoch finished");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(150));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(0) {
        eprintln!("skipped: the run finished before the interrupt arrived");
        return;
    }
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains(&format!("mclrec-cli run --resume {}", stopped.display())),
        "{err}"
    );
    assert!(!err.contains("panicked"));

    cli()
        .args(["run", "--resume", stopped.to_str().unwrap()])
        .assert()
        .success();
    cli()
        .arg("run")
        .args(common)
        .args(["--out", full.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(
        metrics_without_time(&stopped),
        metrics_without_time(&full),
        "a resumed run gives the numbers of an uninterrupted one"
    );
    assert_eq!(
        std::fs::read_to_string(stopped.join("results.json")).unwrap(),
        std::fs::read_to_string(full.join("results.json")).unwrap()
    );
    std::fs::remove_dir_all(&dir).ok();
}
