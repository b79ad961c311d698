//! The protocol presets through the binary: `--loss bce` and `--eval uni100|pop100` are
//! recorded in `results.json` and `config.toml`, and `eval --eval` ranks the same way.

mod common;

use common::{cli, json_output, tiny, tmp};

#[test]
fn the_loss_and_evaluation_protocol_are_chosen_and_recorded() {
    let dir = tmp("protocols");
    let data = tiny(&dir);
    let d = data.to_str().unwrap();
    let run = dir.join("run");
    let out = cli()
        .args(["run", "--dataset", d, "--epochs", "2", "--max-len", "10"])
        .args([
            "--loss",
            "bce",
            "--eval",
            "pop100",
            "--out",
            run.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("loss bce eval pop100"), "{err}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        results["protocol"],
        serde_json::json!({"loss": "bce", "eval": "pop100"})
    );
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("eval = \"pop100\"\n"), "{config}");
    assert!(config.contains("loss = \"bce\"\n"), "{config}");
    // `eval` under the run's protocol gives the run's own test numbers.
    let best = run.join("best.safetensors");
    let b = best.to_str().unwrap();
    let again = json_output(&[
        "eval",
        "--weights",
        b,
        "--dataset",
        d,
        "--eval",
        "pop100",
        "--json",
    ]);
    assert_eq!(again["test"], results["test"]);
    assert_eq!(again["eval"], "pop100");
    let full = json_output(&["eval", "--weights", b, "--dataset", d, "--json"]);
    assert_eq!(full["eval"], "full");
    common::fails_with(
        &["run", "--dataset", d, "--loss", "hinge"],
        "`hinge` is not a loss (ce, bce, bpr)",
    );
    common::fails_with(
        &["eval", "--weights", b, "--dataset", d, "--eval", "pop50"],
        "not an evaluation protocol",
    );
    std::fs::remove_dir_all(&dir).ok();
}
