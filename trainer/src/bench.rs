//! Timing training batches with the real schedule, and counting their useful work.

use std::time::Instant;

use mclrec_models::{SasRecConfig, SeqBatch};

use crate::config::{ModelKind, Schedule, TrainConfig};
use crate::run::{build_model, epoch_rng};
use crate::sampler::LengthBucketSampler;
use crate::train_step::{make_batch, Learner, Views};
use crate::{train_samples, Dataset};

/// Multiply-adds x 2 of one encoder forward over sequences of the given lengths (exact
/// lengths: no padding counted; attention counted over full `l x l` score blocks).
pub fn encoder_forward_flops(c: &SasRecConfig, lens: &[usize]) -> f64 {
    let (d, inner) = (c.hidden as f64, c.inner as f64);
    let positions: f64 = lens.iter().map(|&l| l as f64).sum();
    let attention: f64 = lens.iter().map(|&l| 4.0 * (l * l) as f64 * d).sum();
    c.layers as f64 * (positions * (8.0 * d * d + 4.0 * d * inner) + attention)
}

/// Useful floating-point work of one training batch: forward passes, and twice their work
/// for each backward pass, with the item-score product and the small augmenter and
/// contrastive products.
pub fn batch_flops(
    config: &TrainConfig,
    c: &SasRecConfig,
    batch: &SeqBatch,
    views: Option<&Views>,
) -> f64 {
    let b = batch.len() as f64;
    let d = c.hidden as f64;
    let scores = 2.0 * b * d * c.n_classes as f64;
    let seq = encoder_forward_flops(c, &batch.lens);
    let view = views.map_or(0.0, |v| {
        encoder_forward_flops(c, &v.first.lens) + encoder_forward_flops(c, &v.second.lens)
    });
    let contrast = if views.is_some() {
        4.0 * 2.0 * (2.0 * b) * (2.0 * b) * d
    } else {
        0.0
    };
    // Encoder step: forward + backward (x3).
    let encoder_step = 3.0 * (seq + scores + view + contrast);
    match (config.model, config.schedule, config.uses_augmenters()) {
        (ModelKind::Mclrec, Schedule::ThreeStep, true) => {
            2.0 * encoder_step + view + 3.0 * contrast
        }
        (ModelKind::Mclrec, Schedule::TwoStage, true) => encoder_step + view + 3.0 * contrast,
        _ => encoder_step,
    }
}

/// The timings of [`bench`].
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// Seconds of each timed batch.
    pub batch_seconds: Vec<f64>,
    /// The median of `batch_seconds`.
    pub median_batch_s: f64,
    /// Samples per second at the median.
    pub samples_per_s: f64,
    /// Seconds for one epoch at the median rate.
    pub s_per_epoch: f64,
    /// Useful GFLOP/s over the timed batches.
    pub gflops: f64,
    /// Batches per epoch.
    pub batches_per_epoch: usize,
}

/// Times `batches` training batches of an epoch's real batch stream after `warmup` batches.
pub fn bench(config: &TrainConfig, data: &Dataset, warmup: usize, batches: usize) -> BenchReport {
    let samples = train_samples(data, config.max_len);
    let sampler = LengthBucketSampler::new(
        samples.iter().map(|s| s.input.len()).collect(),
        config.batch_size,
    );
    let mut learner = Learner::new(build_model(config, data), config);
    let enc_config = learner.model.encoder.config.clone();
    let mut rng = epoch_rng(config.seed, 1);
    let order = sampler.epoch(&mut rng);
    let mut times = Vec::new();
    let mut flops = 0.0;
    let mut timed_samples = 0usize;
    for (i, idx) in order.iter().cycle().take(warmup + batches).enumerate() {
        let t0 = Instant::now();
        let (batch, targets, views) = make_batch(&samples, idx, config.needs_views(), &mut rng);
        let _ = learner.train_batch(&batch, &targets, views.as_ref(), &mut rng);
        let dt = t0.elapsed().as_secs_f64();
        if i >= warmup {
            times.push(dt);
            flops += batch_flops(config, &enc_config, &batch, views.as_ref());
            timed_samples += idx.len();
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = sorted[sorted.len() / 2];
    let total: f64 = times.iter().sum();
    let mean_batch = timed_samples as f64 / times.len() as f64;
    BenchReport {
        median_batch_s: median,
        samples_per_s: mean_batch / median,
        s_per_epoch: samples.len() as f64 / (mean_batch / median),
        gflops: flops / total / 1e9,
        batches_per_epoch: sampler.batches_per_epoch(),
        batch_seconds: times,
    }
}
