//! End-to-end training on a small synthetic dataset with a planted sequential pattern:
//! item `i` is followed by item `i + 1` nine times in ten.

use std::path::PathBuf;

use mclrec_trainer::run::Silent;
use mclrec_trainer::{run, Dataset, ModelKind, RunError, RunMode, Schedule, TrainConfig};
use rand::{Rng, SeedableRng};

const ITEMS: usize = 60;

fn planted() -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut text = String::new();
    for u in 0..240 {
        let len = rng.gen_range(5..12);
        let mut s = vec![rng.gen_range(1..=ITEMS)];
        while s.len() < len {
            let next = if rng.gen_bool(0.9) {
                s[s.len() - 1] % ITEMS + 1
            } else {
                rng.gen_range(1..=ITEMS)
            };
            s.push(next);
        }
        let items: Vec<String> = s.iter().map(|v| v.to_string()).collect();
        text += &format!("u{u} {}\n", items.join(" "));
    }
    Dataset::from_text(&text, "planted.txt").unwrap()
}

fn config(model: ModelKind, schedule: Schedule, epochs: usize) -> TrainConfig {
    TrainConfig {
        model,
        schedule,
        epochs,
        batch_size: 128,
        lambda: if model == ModelKind::Sasrec { 0.0 } else { 0.1 },
        beta: if model == ModelKind::Mclrec {
            0.05
        } else {
            0.0
        },
        dropout: 0.2,
        max_len: 20,
        lr: 3e-3,
        lr_augmenter: 3e-3,
        ..TrainConfig::paper_beauty("planted.txt")
    }
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mclrec-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn every_model_and_schedule_learns_the_planted_pattern() {
    let data = planted();
    // Chance: HR@10 = 10 / 60.
    for (model, schedule) in [
        (ModelKind::Sasrec, Schedule::ThreeStep),
        (ModelKind::Cl4srec, Schedule::ThreeStep),
        (ModelKind::Duorec, Schedule::ThreeStep),
        (ModelKind::Mclrec, Schedule::ThreeStep),
        (ModelKind::Mclrec, Schedule::TwoStage),
        (ModelKind::Mclrec, Schedule::Joint),
    ] {
        let dir = out_dir(&format!("{model:?}-{schedule:?}"));
        let r = run(
            &config(model, schedule, 8),
            &data,
            &dir,
            RunMode::New,
            &mut Silent,
        )
        .unwrap();
        let hr = r.valid.get("hr@10").unwrap();
        assert!(hr > 0.6, "{model:?} {schedule:?}: valid HR@10 {hr}");
        for f in [
            "config.toml",
            "metrics.jsonl",
            "results.json",
            "best.safetensors",
            "last.safetensors",
        ] {
            assert!(dir.join(f).is_file(), "{f} missing");
        }
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
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
        assert_eq!(
            std::fs::read_to_string(dir.join("metrics.jsonl"))
                .unwrap()
                .lines()
                .count(),
            8
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

fn metrics_without_time(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            for k in ["seconds", "eval_seconds", "samples_per_s"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v
        })
        .collect()
}

#[test]
fn same_seed_same_numbers_and_resume_equals_an_uninterrupted_run() {
    let data = planted();
    let full = out_dir("full");
    let a = run(
        &config(ModelKind::Mclrec, Schedule::ThreeStep, 3),
        &data,
        &full,
        RunMode::New,
        &mut Silent,
    )
    .unwrap();
    let again = out_dir("again");
    let b = run(
        &config(ModelKind::Mclrec, Schedule::ThreeStep, 3),
        &data,
        &again,
        RunMode::New,
        &mut Silent,
    )
    .unwrap();
    assert_eq!(a.test, b.test, "same seed, same thread count, same metrics");
    assert_eq!(metrics_without_time(&full), metrics_without_time(&again));

    // Stop after 2 epochs, then resume to 3: the same as running 3 in one go.
    let parts = out_dir("parts");
    run(
        &config(ModelKind::Mclrec, Schedule::ThreeStep, 2),
        &data,
        &parts,
        RunMode::New,
        &mut Silent,
    )
    .unwrap();
    let resumed = run(
        &config(ModelKind::Mclrec, Schedule::ThreeStep, 3),
        &data,
        &parts,
        RunMode::Resume,
        &mut Silent,
    )
    .unwrap();
    assert_eq!(resumed.epochs_run, 1);
    assert_eq!(metrics_without_time(&parts), metrics_without_time(&full));
    assert_eq!(
        (resumed.best_epoch, &resumed.valid, &resumed.test),
        (a.best_epoch, &a.valid, &a.test)
    );
    // Any other setting must be the same.
    let other = TrainConfig {
        beta: 0.1,
        ..config(ModelKind::Mclrec, Schedule::ThreeStep, 4)
    };
    let err = run(&other, &data, &parts, RunMode::Resume, &mut Silent).unwrap_err();
    assert!(
        matches!(err, RunError::Invalid(_)),
        "a different configuration is refused: {err}"
    );
    std::fs::remove_dir_all(&again).ok();
    std::fs::remove_dir_all(&full).ok();
    std::fs::remove_dir_all(&parts).ok();
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let data = planted();
    let dir = out_dir("nan");
    run(
        &config(ModelKind::Mclrec, Schedule::ThreeStep, 1),
        &data,
        &dir,
        RunMode::New,
        &mut Silent,
    )
    .unwrap();
    let good = std::fs::read(dir.join("last.safetensors")).unwrap();
    // A learning rate of 1e30 throws the weights to 1e30 at the first update; the next loss
    // overflows.
    let blow_up = TrainConfig {
        lr: 1e30,
        lr_augmenter: 1e30,
        ..config(ModelKind::Mclrec, Schedule::ThreeStep, 3)
    };
    let err = run(&blow_up, &data, &dir.join("sub"), RunMode::New, &mut Silent).unwrap_err();
    let RunError::NonFinite(msg) = &err else {
        panic!("expected a non-finite loss, got {err}")
    };
    assert!(msg.contains("batch") && msg.contains("step"), "{msg}");
    assert_eq!(std::fs::read(dir.join("last.safetensors")).unwrap(), good);
    assert!(
        !dir.join("sub/last.safetensors").exists(),
        "no checkpoint of a failed first epoch"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// 300 items, item `i` followed by `i + 1` nine times in ten.
fn planted_wide() -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut text = String::new();
    for u in 0..400 {
        let len = rng.gen_range(5..12);
        let mut s = vec![rng.gen_range(1..=300)];
        while s.len() < len {
            let next = if rng.gen_bool(0.9) {
                s[s.len() - 1] % 300 + 1
            } else {
                rng.gen_range(1..=300)
            };
            s.push(next);
        }
        let items: Vec<String> = s.iter().map(|v| v.to_string()).collect();
        text += &format!("u{u} {}\n", items.join(" "));
    }
    Dataset::from_text(&text, "wide.txt").unwrap()
}

#[test]
fn the_bce_loss_learns_and_sampled_protocols_rank_above_full_ranking() {
    use mclrec_trainer::evaluate::{evaluate, EvalOptions};
    use mclrec_trainer::sampled_eval::sampled_negatives;
    use mclrec_trainer::{eval_cases, EvalProtocol, LossKind, Split};
    let data = planted_wide();
    let dir = out_dir("bce");
    let config = TrainConfig {
        loss: LossKind::Bce,
        lr: 5e-3,
        ..config(ModelKind::Sasrec, Schedule::ThreeStep, 10)
    };
    let r = run(&config, &data, &dir, RunMode::New, &mut Silent).unwrap();
    let hr = r.valid.get("hr@10").unwrap();
    assert!(hr > 0.3, "BCE SASRec: valid HR@10 {hr} (chance 10 / 300)");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        results["protocol"],
        serde_json::json!({"loss": "bce", "eval": "full"})
    );
    // The best model under each protocol.
    let bytes = std::fs::read(dir.join("best.safetensors")).unwrap();
    let model =
        mclrec_models::MclrecModel::<f32>::from_encoder_weights(&bytes, "best", data.n_items())
            .unwrap();
    let cases = eval_cases(&data, Split::Test, 20);
    let hr10 = |p: EvalProtocol| {
        let opts = EvalOptions {
            negatives: sampled_negatives(&data, &cases, p).map(std::sync::Arc::new),
            ..Default::default()
        };
        evaluate(&model, &cases, &opts)
            .metrics
            .get("hr@10")
            .unwrap()
    };
    let (full, uni, pop) = (
        hr10(EvalProtocol::Full),
        hr10(EvalProtocol::Uni100),
        hr10(EvalProtocol::Pop100),
    );
    assert_eq!(
        uni,
        hr10(EvalProtocol::Uni100),
        "the same negatives every time"
    );
    assert!(
        uni > full,
        "100 negatives are easier than 300 items: {uni} vs {full}"
    );
    assert!(
        pop >= full && pop != uni,
        "pop100 {pop}, uni100 {uni}, full {full}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The classic baselines of Table 3 with their paper defaults but for a short run's
/// learning rate and length.
fn classic(model: ModelKind, epochs: usize) -> TrainConfig {
    let paper = mclrec_trainer::registry::paper_defaults(model);
    TrainConfig {
        model,
        epochs,
        batch_size: 128,
        // DuoRec's contrastive weight (its official lmd_sem); the others have none.
        lambda: if model == ModelKind::Duorec { 0.1 } else { 0.0 },
        beta: 0.0,
        dropout: paper.dropout,
        loss: paper.loss,
        max_len: paper.max_len.min(20),
        lr: 3e-3,
        pretrain_epochs: 3,
        ..TrainConfig::paper_beauty("planted.txt")
    }
}

#[test]
fn every_classic_baseline_learns_the_planted_pattern() {
    let data = planted();
    // Chance: HR@10 = 10 / 60. BPR has no notion of order: it learns each user's region of
    // the item line, around which the next item lies.
    for (model, epochs, at_least) in [
        (ModelKind::Bpr, 40, 0.35),
        (ModelKind::Gru4rec, 8, 0.6),
        (ModelKind::Caser, 20, 0.6),
        (ModelKind::Bert4rec, 8, 0.6),
        (ModelKind::S3recMip, 8, 0.6),
    ] {
        let dir = out_dir(&format!("classic-{}", model.name()));
        let cfg = TrainConfig {
            patience: epochs,
            ..classic(model, epochs)
        };
        let r = run(&cfg, &data, &dir, RunMode::New, &mut Silent).unwrap();
        let hr = r.valid.get("hr@10").unwrap();
        assert!(hr > at_least, "{}: valid HR@10 {hr}", model.name());
        let lines = metrics_without_time(&dir);
        let pretrain = if model == ModelKind::S3recMip { 3 } else { 0 };
        assert_eq!(lines.len(), pretrain + epochs, "{}", model.name());
        for (e, l) in lines.iter().enumerate() {
            // Pre-training epochs are not validated.
            assert_eq!(
                l["valid"].is_null(),
                e < pretrain,
                "{} epoch {e}",
                model.name()
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn every_baseline_resumes_to_the_numbers_of_an_uninterrupted_run() {
    let data = planted();
    // DuoRec too: its same-target partners are drawn from the batch's stream, so a resumed
    // epoch draws the same ones.
    for model in [
        ModelKind::Bpr,
        ModelKind::Gru4rec,
        ModelKind::Caser,
        ModelKind::Bert4rec,
        ModelKind::S3recMip,
        ModelKind::Duorec,
    ] {
        // S3-Rec: one pre-training epoch, then fine-tuning.
        let cfg = |epochs| TrainConfig {
            pretrain_epochs: 1,
            ..classic(model, epochs)
        };
        let (full, parts) = (
            out_dir(&format!("resume-full-{}", model.name())),
            out_dir(&format!("resume-parts-{}", model.name())),
        );
        let a = run(&cfg(3), &data, &full, RunMode::New, &mut Silent).unwrap();
        run(&cfg(1), &data, &parts, RunMode::New, &mut Silent).unwrap();
        let b = run(&cfg(3), &data, &parts, RunMode::Resume, &mut Silent).unwrap();
        assert_eq!(b.epochs_run, 2, "{}", model.name());
        assert_eq!(
            metrics_without_time(&parts),
            metrics_without_time(&full),
            "{}",
            model.name()
        );
        assert_eq!(
            (b.best_epoch, &b.test),
            (a.best_epoch, &a.test),
            "{}",
            model.name()
        );
        std::fs::remove_dir_all(&full).ok();
        std::fs::remove_dir_all(&parts).ok();
    }
}

#[test]
fn s3rec_fine_tunes_a_pre_training_run_given_as_pretrained() {
    let data = planted();
    let pre = out_dir("s3rec-pre");
    run(
        &classic(ModelKind::S3recMip, 1),
        &data,
        &pre,
        RunMode::New,
        &mut Silent,
    )
    .unwrap();
    let fine = out_dir("s3rec-fine");
    let cfg = TrainConfig {
        pretrained: pre.to_string_lossy().into_owned(),
        ..classic(ModelKind::S3recMip, 2)
    };
    let r = run(&cfg, &data, &fine, RunMode::New, &mut Silent).unwrap();
    // No pre-training epoch ran: the two lines are fine-tuning epochs, validated.
    let lines = metrics_without_time(&fine);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["valid"].is_object()));
    assert!(r.best_epoch >= 1);
    // A run that is not a finished pre-training is refused before anything is written.
    let not_pre = TrainConfig {
        pretrained: fine.to_string_lossy().into_owned(),
        ..classic(ModelKind::S3recMip, 2)
    };
    let sub = fine.join("sub");
    let err = run(&not_pre, &data, &sub, RunMode::New, &mut Silent).unwrap_err();
    assert!(matches!(err, RunError::Invalid(_)), "{err}");
    assert!(!sub.exists());
    std::fs::remove_dir_all(&pre).ok();
    std::fs::remove_dir_all(&fine).ok();
}
