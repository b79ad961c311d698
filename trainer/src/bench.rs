//! Timing training batches with the real schedule, and counting their useful work.

use std::time::Instant;

use mclrec_models::augment::two_views;
use mclrec_models::SasRecConfig;
use mclrec_tensor::Device;

use crate::config::{ModelKind, Schedule, TrainConfig};
use crate::run::{build_model, epoch_rng};
use crate::sampler::LengthBucketSampler;
use crate::train_step::Learner;
use crate::{train_samples, Dataset, TrainSample};
use rand::seq::SliceRandom;

/// Multiply-adds x 2 of one encoder forward over sequences of the given lengths: exact
/// lengths (no padding), causal attention counted over full `l x l` score blocks, and the
/// last layer's work only where it is needed (keys and values at every position; queries,
/// output projection and feed-forward at the last position).
pub fn encoder_forward_flops(c: &SasRecConfig, lens: &[usize]) -> f64 {
    if c.layers == 0 {
        return 0.0;
    }
    let (d, inner) = (c.hidden as f64, c.inner as f64);
    let positions: f64 = lens.iter().map(|&l| l as f64).sum();
    let seqs = lens.len() as f64;
    let attention: f64 = lens.iter().map(|&l| 4.0 * (l * l) as f64 * d).sum();
    let last_attention: f64 = lens.iter().map(|&l| 4.0 * l as f64 * d).sum();
    let full_layer = positions * (8.0 * d * d + 4.0 * d * inner) + attention;
    let last_layer =
        positions * 4.0 * d * d + seqs * (4.0 * d * d + 4.0 * d * inner) + last_attention;
    (c.layers - 1) as f64 * full_layer + last_layer
}

/// Useful floating-point work of one SASRec / CL4SRec / MCLRec training batch of
/// sequences of lengths `lens` (and, when drawn, views of lengths `view_lens`): forward
/// passes, and twice their work for each backward pass, with the item-score product and the
/// small augmenter and contrastive products.
pub fn batch_flops(
    config: &TrainConfig,
    c: &SasRecConfig,
    lens: &[usize],
    view_lens: Option<(&[usize], &[usize])>,
) -> f64 {
    let views = view_lens;
    let b = lens.len() as f64;
    let d = c.hidden as f64;
    let scores = 2.0 * b * d * c.n_classes as f64;
    let seq = encoder_forward_flops(c, lens);
    let view = views.map_or(0.0, |(first, second)| {
        encoder_forward_flops(c, first) + encoder_forward_flops(c, second)
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

/// The timings of [`bench()`].
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// Seconds of each timed batch.
    pub batch_seconds: Vec<f64>,
    /// The median of `batch_seconds`.
    pub median_batch_s: f64,
    /// Timed samples divided by the total time of the timed batches.
    pub samples_per_s: f64,
    /// Seconds for one epoch at `samples_per_s`.
    pub s_per_epoch: f64,
    /// Useful GFLOP/s over the timed batches (counted for SASRec, CL4SRec and MCLRec).
    pub gflops: Option<f64>,
    /// Batches per epoch.
    pub batches_per_epoch: usize,
}

/// `n` batches spread evenly over an epoch's batches sorted by length, in random order: a
/// batch's cost grows with its length, so this makes the epoch projection representative
/// (the same choice as `torch_reference.py --mode bucket`).
fn stratified(
    order: &[Vec<usize>],
    samples: &[TrainSample],
    n: usize,
    rng: &mut impl rand::Rng,
) -> Vec<Vec<usize>> {
    let mut by_len: Vec<&Vec<usize>> = order.iter().collect();
    by_len.sort_by_key(|b| b.iter().map(|&i| samples[i].input.len()).max());
    let mut picked: Vec<Vec<usize>> = (0..n)
        .map(|j| by_len[(2 * j + 1) * by_len.len() / (2 * n)].clone())
        .collect();
    picked.shuffle(rng);
    picked
}

/// Times `batches` training batches (spread over the lengths of an epoch's real batch
/// stream) after `warmup` batches; the epoch is projected from the total time, so long and
/// short batches count as often as they occur. Runs on `config.device`; an unusable device
/// is an error. Subnormals are flushed or not as the caller set them
/// ([`mclrec_tensor::flush_denormals`]; `mclrec-cli bench` flushes them).
pub fn bench(
    config: &TrainConfig,
    data: &Dataset,
    warmup: usize,
    batches: usize,
) -> Result<BenchReport, String> {
    let device = Device::parse(&config.device)?;
    // On a pool thread, every parallel op's first half runs on the calling thread instead
    // of waking a worker and sleeping until it is done.
    rayon::scope(|_| bench_on_pool(config, data, device, warmup, batches))
}

fn bench_on_pool(
    config: &TrainConfig,
    data: &Dataset,
    device: Device,
    warmup: usize,
    batches: usize,
) -> Result<BenchReport, String> {
    let samples = train_samples(data, config.max_len);
    let sampler = LengthBucketSampler::new(
        samples.iter().map(|s| s.input.len()).collect(),
        config.batch_size,
    );
    let mut learner = Learner::new(build_model(config, data), config);
    learner.to_device(device).map_err(|e| e.to_string())?;
    let enc_config = config
        .model
        .is_mclrec_family()
        .then(|| crate::registry::transformer(config, data.n_items()));
    // The first epoch that trains the task (S3-Rec's fine-tuning, after pre-training).
    let epoch = (1..)
        .find(|&e| learner.model.epoch_role(e) == mclrec_models::EpochRole::Train)
        .expect("a model trains its task eventually");
    let mut rng = epoch_rng(config.seed, 1);
    let order = sampler.epoch(&mut rng);
    let timed = stratified(&order, &samples, batches.min(order.len()), &mut rng);
    let mut times = Vec::new();
    let mut flops = 0.0;
    let mut timed_samples = 0usize;
    for (i, idx) in order.iter().take(warmup).chain(&timed).enumerate() {
        // The views' lengths, as the model is about to draw them (its first draws).
        let view_lens = (config.needs_views() && i >= warmup).then(|| {
            let mut ahead = rng.clone();
            let (a, b): (Vec<usize>, Vec<usize>) = idx
                .iter()
                .map(|&j| {
                    let (x, y) = two_views(&samples[j].input, &mut ahead);
                    (x.len(), y.len())
                })
                .unzip();
            (a, b)
        });
        let t0 = Instant::now();
        let _ = learner.train_batch(&samples, idx, epoch, &mut rng);
        device.synchronize();
        let dt = t0.elapsed().as_secs_f64();
        if i >= warmup {
            times.push(dt);
            if let Some(c) = &enc_config {
                let lens: Vec<usize> = idx.iter().map(|&j| samples[j].input.len()).collect();
                let views = view_lens
                    .as_ref()
                    .map(|(a, b)| (a.as_slice(), b.as_slice()));
                flops += batch_flops(config, c, &lens, views);
            }
            timed_samples += idx.len();
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let total: f64 = times.iter().sum();
    let samples_per_s = timed_samples as f64 / total;
    Ok(BenchReport {
        median_batch_s: sorted[sorted.len() / 2],
        samples_per_s,
        s_per_epoch: samples.len() as f64 / samples_per_s,
        gflops: enc_config.is_some().then(|| flops / total / 1e9),
        batches_per_epoch: sampler.batches_per_epoch(),
        batch_seconds: times,
    })
}
