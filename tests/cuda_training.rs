//! Training on the GPU against training on the CPU: one whole MCLRec three-step batch (dropout
//! off, fixed seed) gives the same losses and parameter updates within 1e-4 relative (updates
//! up to the f32 resolution of the parameters they change), and a short run reaches the same
//! validation metrics.
//!
//! Each test first asks for `cuda:0`; where there is none it prints `skipped: no GPU
//! (<reason>)` and passes (`scripts/gpu-check.sh` runs it on a GPU machine).
#![cfg(feature = "cuda")]

use mclrec::tensor::{Device, Tensor};
use mclrec::trainer::run::{build_model, epoch_rng, Silent};
use mclrec::trainer::train_step::{BatchLosses, Learner};
use mclrec::trainer::{run, train_samples, Dataset, RunMode, TrainConfig};

/// The tolerance for a whole step.
const REL: f64 = 1e-4;

fn gpu(test: &str) -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            println!("{test}: skipped: no GPU ({e})");
            None
        }
    }
}

/// The first `users` users of the Beauty data (the real item vocabulary), built into the
/// test binary so that it runs from any folder (`scripts/gpu-check.sh --bundle`).
fn beauty_head(users: usize) -> Dataset {
    let text = include_str!("../data/amazon-beauty.txt");
    let head: String = text.lines().take(users).map(|l| format!("{l}\n")).collect();
    Dataset::from_text(&head, "beauty-head.txt").expect("valid dataset")
}

/// `got` equals `want` within `REL` of the largest magnitude of `want` (or of `floor` where
/// that is larger), plus `slack[i]` for element `i`.
fn close(what: &str, got: &[f64], want: &[f64], floor: f64, slack: &[f64]) {
    assert_eq!(
        (got.len(), slack.len()),
        (want.len(), want.len()),
        "{what}: lengths"
    );
    let scale = want.iter().fold(floor, |m, v| m.max(v.abs()));
    for (i, ((a, b), s)) in got.iter().zip(want).zip(slack).enumerate() {
        let err = ((a - b).abs() - s).max(0.0) / scale;
        assert!(
            err <= REL,
            "{what}[{i}]: cuda {a} vs cpu {b} (relative {err:.2e})"
        );
    }
}

fn losses(l: &BatchLosses) -> Vec<f64> {
    vec![l.rec, l.cl1, l.cl2, l.reg]
}

#[test]
fn a_three_step_batch_matches_the_cpu() {
    let Some(gpu) = gpu("a_three_step_batch_matches_the_cpu") else {
        return;
    };
    let data = beauty_head(2000);
    let config = TrainConfig {
        dropout: 0.0,
        lambda: 0.1, // every loss term, L_cl1 included
        ..TrainConfig::paper_beauty("beauty-head.txt")
    };
    let samples = train_samples(&data, config.max_len);
    let idx: Vec<usize> = (0..config.batch_size.min(samples.len())).collect();
    let learner_on = |d: Device| {
        let mut l = Learner::new(build_model(&config, &data), &config);
        // At step 1 Adam's update is about lr * sign(g): with the default eps a gradient
        // that is float noise on both devices could flip it. A large eps makes the update
        // lr * g / (|g| + 1), a smooth function of the gradient, so updates compare as
        // gradients do (the Adam kernel itself is compared in tensor/tests/cuda_parity.rs).
        for (_, adam) in l.opt.named_mut() {
            adam.eps = 1.0;
        }
        l.to_device(d).expect("device");
        l
    };
    let (mut cpu, mut cuda) = (learner_on(Device::Cpu), learner_on(gpu));
    let before: Vec<Vec<f64>> = cpu
        .model
        .store()
        .iter()
        .map(|(_, p)| p.value.to_f64s())
        .collect();
    let step = |l: &mut Learner| {
        let mut rng = epoch_rng(7, 1);
        l.train_batch(&samples, &idx, 1, &mut rng)
            .expect("finite losses")
    };
    let (lc, lg) = (step(&mut cpu), step(&mut cuda));
    close(
        "losses [rec, cl1, cl2, reg]",
        &losses(&lg),
        &losses(&lc),
        1e-30,
        &[0.0; 4],
    );
    assert_eq!(
        cpu.model.store().len(),
        cuda.model.store().len(),
        "parameter counts"
    );
    for (((_, pc), (_, pg)), b) in cpu
        .model
        .store()
        .iter()
        .zip(cuda.model.store().iter())
        .zip(&before)
    {
        assert!(
            matches!(pg.value.device(), Device::Cuda(_)),
            "{} left the GPU",
            pc.name
        );
        let update = |t: &Tensor<f32>| -> Vec<f64> {
            t.to_f64s().iter().zip(b).map(|(a, b)| a - b).collect()
        };
        // An update is read back as the difference of two f32 parameters, so it is known
        // only to one unit in the last place of the parameter: ~2e-9 for a weight of 0.03
        // against updates of ~1e-5, i.e. 1.6e-4 of the largest (seen on an H200; perturbing
        // the CPU's own parameters by one ulp moves them as much). That ulp is allowed on
        // top of `REL`. The key projection's bias has a gradient of exactly zero (softmax is
        // unchanged by adding one number to a whole row of scores), so its update is
        // rounding noise (~1e-15) on both devices: the floor keeps it from being the scale.
        let cpu_after = pc.value.to_f64s();
        let ulp: Vec<f64> = cpu_after
            .iter()
            .map(|v| f64::from(f32::EPSILON) * v.abs())
            .collect();
        close(
            &format!("update of {}", pc.name),
            &update(&pg.value),
            &update(&pc.value),
            1e-6 * config.lr,
            &ulp,
        );
    }
}

#[test]
fn a_short_run_reaches_the_cpus_validation_metrics() {
    let Some(gpu) = gpu("a_short_run_reaches_the_cpus_validation_metrics") else {
        return;
    };
    let data = beauty_head(4000);
    let run_on = |device: Device| {
        let config = TrainConfig {
            epochs: 3,
            device: device.to_string(),
            ..TrainConfig::paper_beauty("beauty-head.txt")
        };
        let dir = std::env::temp_dir().join(format!(
            "mclrec-cuda-run-{}-{}",
            device.to_string().replace(':', ""),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let r = run(&config, &data, &dir, RunMode::New, &mut Silent).expect("run");
        let _ = std::fs::remove_dir_all(&dir);
        r
    };
    let (c, g) = (run_on(Device::Cpu), run_on(gpu));
    // The same seed draws the same batches, views and dropout masks (the masks are a hash
    // of seed and index on both devices): the runs differ only by float rounding.
    for k in ["hr@20", "ndcg@20", "hr@10", "ndcg@10"] {
        let (a, b) = (g.valid.get(k).unwrap(), c.valid.get(k).unwrap());
        println!("{k}: cuda {a:.4}, cpu {b:.4}");
        assert!((a - b).abs() <= 0.01, "{k}: cuda {a} vs cpu {b}");
    }
}
