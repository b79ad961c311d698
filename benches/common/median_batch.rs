//! The embedded Beauty data and a median-length batch of its real epoch (length-bucketed,
//! with its two augmented views), shared by the benches that time a training batch.

use mclrec::models::SeqBatch;
use mclrec::trainer::run::epoch_rng;
use mclrec::trainer::train_step::{make_batch, Views};
use mclrec::trainer::{train_samples, Dataset, LengthBucketSampler, TrainConfig};

/// The Beauty data shipped in `data/`, built into the bench binary so that it runs from any
/// folder (`scripts/gpu-check.sh --bundle`).
pub fn beauty() -> Dataset {
    let text = include_str!("../../data/amazon-beauty.txt");
    Dataset::from_text(text, "amazon-beauty.txt").expect("valid dataset")
}

/// The batch of median length among the batches of epoch 1 under `config`: its sequences,
/// targets and views.
pub fn median_batch(data: &Dataset, config: &TrainConfig) -> (SeqBatch, Vec<usize>, Views) {
    let samples = train_samples(data, config.max_len);
    let sampler = LengthBucketSampler::new(
        samples.iter().map(|s| s.input.len()).collect(),
        config.batch_size,
    );
    let mut rng = epoch_rng(config.seed, 1);
    let mut order = sampler.epoch(&mut rng);
    order.sort_by_key(|b| b.iter().map(|&i| samples[i].input.len()).max());
    let idx = order[order.len() / 2].clone();
    let (batch, targets, views) = make_batch(&samples, &idx, true, &mut rng);
    (batch, targets, views.expect("views"))
}
