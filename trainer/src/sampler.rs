//! Batches bucketed by length, so a batch pads little; a fresh order every epoch.

use rand::seq::SliceRandom;
use rand::Rng;

/// How many batches are sorted by length together: large enough that batches are nearly
/// uniform in length, small enough that which samples meet in a batch stays random.
const BUCKET_BATCHES: usize = 64;

/// Makes an epoch's batches: shuffle all samples, sort each run of
/// `BUCKET_BATCHES * batch_size` of them by length, cut the runs into batches, and shuffle
/// the order of the batches.
#[derive(Clone, Debug)]
pub struct LengthBucketSampler {
    lengths: Vec<usize>,
    batch_size: usize,
}

impl LengthBucketSampler {
    /// A sampler over samples of the given lengths.
    pub fn new(lengths: Vec<usize>, batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch size must be positive");
        LengthBucketSampler {
            lengths,
            batch_size,
        }
    }

    /// The number of batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.lengths.len().div_ceil(self.batch_size)
    }

    /// The sample indices of each batch of one epoch, drawn from `rng`.
    pub fn epoch(&self, rng: &mut impl Rng) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.lengths.len()).collect();
        order.shuffle(rng);
        let run = self.batch_size * BUCKET_BATCHES;
        let mut batches = Vec::with_capacity(self.batches_per_epoch());
        for chunk in order.chunks_mut(run) {
            chunk.sort_by_key(|&i| self.lengths[i]);
            batches.extend(chunk.chunks(self.batch_size).map(<[usize]>::to_vec));
        }
        batches.shuffle(rng);
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_sample_once_and_batches_nearly_uniform() {
        let lengths: Vec<usize> = (0..10_000).map(|i| 1 + (i * 7919) % 50).collect();
        let s = LengthBucketSampler::new(lengths.clone(), 256);
        let b = s.epoch(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        assert_eq!(b.len(), s.batches_per_epoch());
        let mut all: Vec<usize> = b.iter().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..10_000).collect::<Vec<_>>());
        let padded: usize = b
            .iter()
            .map(|x| x.len() * x.iter().map(|&i| lengths[i]).max().unwrap())
            .sum();
        let real: usize = lengths.iter().sum();
        assert!(
            (padded as f64) < 1.1 * real as f64,
            "padding overhead {}",
            padded as f64 / real as f64
        );
        let b2 = s.epoch(&mut rand_chacha::ChaCha8Rng::seed_from_u64(4));
        assert_ne!(b, b2);
    }
}
