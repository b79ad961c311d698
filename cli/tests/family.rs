//! Every model of the family through the binary: `run --model M` under each loss and
//! evaluation preset, then `eval`, `recommend` and `figure curves` on its checkpoint.

mod common;

use common::{cli, json_output, tiny, tmp};

const MODELS: [&str; 9] = [
    "bpr",
    "gru4rec",
    "caser",
    "sasrec",
    "bert4rec",
    "s3rec-mip",
    "cl4srec",
    "duorec",
    "mclrec",
];

/// Trains `model` for 2 epochs on the tiny data with `extra` flags; the run directory.
fn train(dir: &std::path::Path, model: &str, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let data = dir.join("tiny.txt");
    let run = dir.join(name);
    // A setting the model does not use is refused.
    let pretrain: &[&str] = if model == "s3rec-mip" {
        &["--pretrain-epochs", "1"]
    } else {
        &[]
    };
    let results = json_output(
        &[
            &[
                "run",
                "--model",
                model,
                "--dataset",
                data.to_str().unwrap(),
                "--epochs",
                "2",
                "--batch-size",
                "32",
                "--max-len",
                "10",
                "--out",
                run.to_str().unwrap(),
                "--json",
            ],
            pretrain,
            extra,
        ]
        .concat(),
    );
    assert!(results["test"]["hr@10"].is_f64(), "{model} {extra:?}");
    run
}

#[test]
fn every_model_trains_under_every_preset_and_its_checkpoint_evaluates_and_recommends() {
    let dir = tmp("family");
    let data = tiny(&dir);
    let d = data.to_str().unwrap();
    let mut curves = Vec::new();
    for (i, model) in MODELS.into_iter().enumerate() {
        // Both loss presets (and BPR's own) and all three evaluation presets across the
        // family, each written into results.json.
        let (loss, eval) = [
            ("ce", "full"),
            ("bce", "uni100"),
            ("bce", "pop100"),
            ("ce", "uni100"),
        ][i % 4];
        for (loss, eval) in [
            (loss, eval),
            (if loss == "ce" { "bce" } else { "ce" }, "full"),
        ] {
            let name = format!("{model}-{loss}-{eval}");
            let run = train(&dir, model, &name, &["--loss", loss, "--eval", eval]);
            let results: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap())
                    .unwrap();
            assert_eq!(
                results["protocol"],
                serde_json::json!({"loss": loss, "eval": eval}),
                "{name}"
            );
            if eval != "full" {
                continue;
            }
            // `eval` of the best checkpoint gives the run's own test numbers.
            let best = run.join("best.safetensors");
            let b = best.to_str().unwrap();
            let v = json_output(&["eval", "--weights", b, "--dataset", d, "--json"]);
            assert_eq!(v["test"], results["test"], "{name}: eval of its checkpoint");
            // `recommend` for a known user: k distinct items, none from the history.
            let top = json_output(&[
                "recommend",
                "--checkpoint",
                b,
                "--dataset",
                d,
                "--user",
                "u3",
                "-k",
                "5",
                "--json",
            ]);
            let items: Vec<&str> = top
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["item"].as_str().unwrap())
                .collect();
            assert_eq!(items.len(), 5, "{name}: {top}");
            // A new history: the sequence models score it; BPR and Caser, whose users are
            // rows of a table, say they need a known user (exit 2, one line).
            let out = cli()
                .args(["recommend", "--checkpoint", b, "--dataset", d])
                .args(["--history", "4 5 6", "-k", "3", "--json"])
                .output()
                .unwrap();
            if matches!(model, "bpr" | "caser") {
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{name}: {err}");
                assert!(err.contains("--user"), "{name}: {err}");
            } else {
                assert!(
                    out.status.success(),
                    "{name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            curves.push(format!("{model}={}", run.display()));
        }
    }
    // One figure of every model's validation curves.
    let png = dir.join("curves.png");
    let mut args = vec!["figure".to_string(), "curves".to_string()];
    for c in &curves {
        args.push("--run".into());
        args.push(c.clone());
    }
    args.extend(["--out".to_string(), png.to_string_lossy().into_owned()]);
    let out = cli().args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    std::fs::remove_dir_all(&dir).ok();
}
