//! The embedded Beauty data and a median-length batch of its real epoch (length-bucketed,
//! with its two augmented views), shared by the benches that time a training batch.

use mclrec::models::augment::two_views;
use mclrec::models::SeqBatch;
use mclrec::trainer::run::epoch_rng;
use mclrec::trainer::{train_samples, Dataset, LengthBucketSampler, TrainConfig, TrainSample};

/// The Beauty data shipped in `data/`, built into the bench binary so that it runs from any
/// folder (`scripts/gpu-check.sh --bundle`).
pub fn beauty() -> Dataset {
    let text = include_str!("../../data/amazon-beauty.txt");
    Dataset::from_text(text, "amazon-beauty.txt").expect("valid dataset")
}

/// A batch of the epoch: the samples it indexes, and its packed sequences, targets and
/// two views.
#[allow(dead_code)] // each bench reads its own fields
pub struct MedianBatch {
    /// Every training sample.
    pub samples: Vec<TrainSample>,
    /// The batch's samples.
    pub idx: Vec<usize>,
    /// Their sequences.
    pub batch: SeqBatch,
    /// Their targets.
    pub targets: Vec<usize>,
    /// The first and second views of every sequence.
    pub views: (SeqBatch, SeqBatch),
}

/// The batch of median length among the batches of epoch 1 under `config`.
pub fn median_batch(data: &Dataset, config: &TrainConfig) -> MedianBatch {
    let samples = train_samples(data, config.max_len);
    let sampler = LengthBucketSampler::new(
        samples.iter().map(|s| s.input.len()).collect(),
        config.batch_size,
    );
    let mut rng = epoch_rng(config.seed, 1);
    let mut order = sampler.epoch(&mut rng);
    order.sort_by_key(|b| b.iter().map(|&i| samples[i].input.len()).max());
    let idx = order[order.len() / 2].clone();
    let inputs: Vec<&[usize]> = idx.iter().map(|&i| samples[i].input.as_slice()).collect();
    let (a, b): (Vec<Vec<usize>>, Vec<Vec<usize>>) =
        inputs.iter().map(|s| two_views(s, &mut rng)).unzip();
    MedianBatch {
        batch: SeqBatch::new(&inputs),
        targets: idx.iter().map(|&i| samples[i].target).collect(),
        views: (SeqBatch::new(&a), SeqBatch::new(&b)),
        samples,
        idx,
    }
}
