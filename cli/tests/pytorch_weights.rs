//! PyTorch checkpoints through the binary: `eval` and `recommend` read the official
//! repository's `model.pth` directly, `convert` writes it as safetensors, and `run --init`
//! starts training from weights.

mod common;

use std::path::PathBuf;

use common::{cli, fails_with, json_output, tiny, tmp};

/// `../shared/reference/beauty-official`, or `None` (a failure under
/// `MCLREC_REQUIRE_REFERENCE`, which CI sets).
fn official() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/beauty-official");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("MCLREC_REQUIRE_REFERENCE").is_none(),
        "{} is absent and MCLREC_REQUIRE_REFERENCE is set",
        dir.display()
    );
    eprintln!("skipped: {} is absent", dir.display());
    None
}

#[test]
fn the_official_pth_gives_the_official_numbers_and_converts_to_the_same_weights() {
    let Some(dir) = official() else { return };
    let pth = dir.join("model.pth");
    let p = pth.to_str().unwrap();
    let from_pth = json_output(&["eval", "--weights", p, "--dataset", "beauty", "--json"]);
    let st = dir.join("model.safetensors");
    let from_st = json_output(&[
        "eval",
        "--weights",
        st.to_str().unwrap(),
        "--dataset",
        "beauty",
        "--json",
    ]);
    assert_eq!(from_pth, from_st);
    let (hr, ndcg) = (
        from_pth["test"]["hr@20"].as_f64().unwrap(),
        from_pth["test"]["ndcg@20"].as_f64().unwrap(),
    );
    assert_eq!(
        (format!("{hr:.4}"), format!("{ndcg:.4}")),
        ("0.1243".into(), "0.0539".into())
    );

    let recs = |w: &str| {
        json_output(&[
            "recommend",
            "--checkpoint",
            w,
            "--dataset",
            "beauty",
            "--user",
            "7",
            "--json",
        ])
    };
    assert_eq!(recs(p), recs(st.to_str().unwrap()));

    let work = tmp("pth");
    let out = work.join("converted.safetensors");
    let o = out.to_str().unwrap();
    cli().args(["convert", p, o]).assert().success();
    let converted = json_output(&["eval", "--weights", o, "--dataset", "beauty", "--json"]);
    assert_eq!(converted, from_pth);
    let before = std::fs::read(&out).unwrap();
    fails_with(&["convert", p, o], "converted.safetensors: exists");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    // A file that is neither is named as such.
    let junk = work.join("junk.pth");
    std::fs::write(&junk, b"PK\x03\x04 not really a zip").unwrap();
    fails_with(
        &[
            "eval",
            "--weights",
            junk.to_str().unwrap(),
            "--dataset",
            "beauty",
        ],
        "junk.pth: not a valid zip archive",
    );
    // `run --init` accepts the official table (its unused last row dropped): the run is
    // stopped once configured, before any training.
    let run = work.join("init");
    let o = cli()
        .args([
            "run",
            "--dataset",
            "beauty",
            "--init",
            p,
            "--out",
            run.to_str().unwrap(),
        ])
        .env("MCLREC_KILL_AT", "run:configured")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        None,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains(&format!(
            "init = \"{}\"",
            std::fs::canonicalize(&pth).unwrap().display()
        )),
        "{config}"
    );
    std::fs::remove_dir_all(&work).ok();
}

#[test]
fn a_run_started_from_weights_starts_where_they_are() {
    let dir = tmp("init");
    let data = tiny(&dir);
    let d = data.to_str().unwrap();
    let common = [
        "--dataset",
        d,
        "--batch-size",
        "16",
        "--max-len",
        "10",
        "--threads",
        "1",
    ];
    let first = dir.join("first");
    cli()
        .arg("run")
        .args(common)
        .args(["--epochs", "3", "--out", first.to_str().unwrap()])
        .assert()
        .success();
    let best = first.join("best.safetensors");
    // A learning rate too small to move a float32 weight: epoch 1 validates the start.
    let second = dir.join("second");
    cli()
        .arg("run")
        .args(common)
        .args([
            "--epochs",
            "1",
            "--lr",
            "1e-15",
            "--init",
            best.to_str().unwrap(),
        ])
        .args(["--out", second.to_str().unwrap()])
        .assert()
        .success();
    let valid_of = |run: &PathBuf| -> serde_json::Value {
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap())
                .unwrap();
        r["valid"].clone()
    };
    assert_eq!(valid_of(&second), valid_of(&first));
    fails_with(
        &["run", "--dataset", d, "--init", "/no/such.pth"],
        "--init /no/such.pth: No such file",
    );
    let other = dir.join("other.txt");
    std::fs::write(&other, "u1 1 2 3 4\nu2 2 3 4 5\nu3 3 4 5 1\n").unwrap();
    fails_with(
        &[
            "run",
            "--dataset",
            other.to_str().unwrap(),
            "--init",
            best.to_str().unwrap(),
            "--out",
            dir.join("x").to_str().unwrap(),
        ],
        "`item_embedding.weight` has shape [31, 64], the model needs [6, 64]",
    );
    assert!(
        !dir.join("x").exists(),
        "nothing written for a refused start"
    );
    std::fs::remove_dir_all(&dir).ok();
}
