//! DuoRec's supervised positives: for a training sample, another training sample with the
//! same next item, drawn uniformly each time it is asked for (the official code's
//! `duorec_aug`, `np.random.choice` over the sequence's `same_target_index`).

use rand::{Rng, RngCore};

use crate::TrainSample;

/// The training samples grouped by their target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SameTargetIndex {
    /// The samples of each target, in sample order.
    groups: Vec<Vec<usize>>,
    /// Each sample's target and where it sits in that target's group.
    position: Vec<(usize, usize)>,
}

impl SameTargetIndex {
    /// The index of `samples`.
    ///
    /// ```
    /// use mclrec_trainer::same_target::SameTargetIndex;
    /// use mclrec_trainer::split::TrainSample;
    /// use rand::SeedableRng;
    ///
    /// let s = |input: Vec<usize>, target| TrainSample { user: 0, input, target };
    /// let samples = [s(vec![1], 2), s(vec![3], 4), s(vec![1, 5], 2)];
    /// let index = SameTargetIndex::new(&samples);
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// assert_eq!(index.partner(0, &mut rng), 2); // the other sample with target 2
    /// assert_eq!(index.partner(1, &mut rng), 1); // alone with target 4: itself
    /// ```
    pub fn new(samples: &[TrainSample]) -> Self {
        let n_targets = samples.iter().map(|s| s.target + 1).max().unwrap_or(0);
        let mut groups = vec![Vec::new(); n_targets];
        let mut position = Vec::with_capacity(samples.len());
        for (i, s) in samples.iter().enumerate() {
            position.push((s.target, groups[s.target].len()));
            groups[s.target].push(i);
        }
        SameTargetIndex { groups, position }
    }

    /// Samples indexed.
    pub fn len(&self) -> usize {
        self.position.len()
    }

    /// Whether no sample is indexed.
    pub fn is_empty(&self) -> bool {
        self.position.is_empty()
    }

    /// A sample other than `i` with `i`'s target, uniformly, or `i` itself when no other
    /// has it (the official code then pairs the sequence with itself).
    ///
    /// # Panics
    /// If `i` is not an indexed sample.
    pub fn partner(&self, i: usize, rng: &mut dyn RngCore) -> usize {
        let (target, at) = self.position[i];
        let group = &self.groups[target];
        if group.len() == 1 {
            return i;
        }
        // Uniform over the group without `i`: skip its place.
        let r = rng.gen_range(0..group.len() - 1);
        group[if r >= at { r + 1 } else { r }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn partners_share_the_target_are_never_the_sample_and_cover_the_group() {
        let samples: Vec<TrainSample> = (0..40)
            .map(|i| TrainSample {
                user: i,
                input: vec![i + 1],
                target: i % 4,
            })
            .collect();
        let index = SameTargetIndex::new(&samples);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut seen = vec![0usize; samples.len()];
        for _ in 0..200 {
            let j = index.partner(5, &mut rng);
            assert_eq!(samples[j].target, samples[5].target);
            assert_ne!(j, 5);
            seen[j] += 1;
        }
        // The nine other samples of target 1, each drawn (200 draws, p = 1/9 each).
        let drawn: Vec<usize> = (0..40).filter(|&j| seen[j] > 0).collect();
        assert_eq!(
            drawn,
            (1..40).step_by(4).filter(|&j| j != 5).collect::<Vec<_>>()
        );
        // The same seed draws the same partners.
        let again = |seed| {
            let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            (0..40)
                .map(|i| index.partner(i, &mut r))
                .collect::<Vec<_>>()
        };
        assert_eq!(again(9), again(9));
    }
}
