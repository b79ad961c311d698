//! The data augmentations of CL4SRec / MCLRec: crop, mask, reorder.
//!
//! Each training sequence gets two *different* operators, drawn without replacement from
//! the three; a sequence of length 1 is left as it is (as in the official code). Ratios
//! are the official ones.

use rand::seq::SliceRandom;
use rand::Rng;

/// Share of the items that crop drops (`eta`): crop keeps `floor(len * (1 - 0.5))`.
pub const CROP_ETA: f64 = 0.5;
/// Share of the items that mask sets to the padding id (`gamma`).
pub const MASK_GAMMA: f64 = 0.5;
/// Share of the items in the span that reorder shuffles (`beta`).
pub const REORDER_BETA: f64 = 0.8;

/// One augmentation operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Augmentation {
    /// Keep `floor(len (1 - eta))` consecutive items from a random start.
    Crop,
    /// Set `floor(len gamma)` random positions to 0 (the padding id); the length is kept.
    Mask,
    /// Shuffle a random span of `floor(len beta)` consecutive items.
    Reorder,
}

impl Augmentation {
    /// Applies the operator to `seq` (length >= 1) with randomness from `rng`.
    pub fn apply(self, seq: &[usize], rng: &mut impl Rng) -> Vec<usize> {
        let len = seq.len();
        if len <= 1 {
            return seq.to_vec();
        }
        match self {
            Augmentation::Crop => {
                let keep = ((len as f64 * (1.0 - CROP_ETA)).floor() as usize).max(1);
                let start = rng.gen_range(0..=len - keep);
                seq[start..start + keep].to_vec()
            }
            Augmentation::Mask => {
                let n = (len as f64 * MASK_GAMMA).floor() as usize;
                let mut out = seq.to_vec();
                let mut positions: Vec<usize> = (0..len).collect();
                positions.partial_shuffle(rng, n);
                for &p in &positions[..n] {
                    out[p] = 0;
                }
                out
            }
            Augmentation::Reorder => {
                let span = (len as f64 * REORDER_BETA).floor() as usize;
                let start = rng.gen_range(0..=len - span);
                let mut out = seq.to_vec();
                out[start..start + span].shuffle(rng);
                out
            }
        }
    }
}

/// Two views of `seq` by two different operators drawn at random.
pub fn two_views(seq: &[usize], rng: &mut impl Rng) -> (Vec<usize>, Vec<usize>) {
    let mut ops = [
        Augmentation::Crop,
        Augmentation::Mask,
        Augmentation::Reorder,
    ];
    ops.shuffle(rng);
    (ops[0].apply(seq, rng), ops[1].apply(seq, rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn operators_keep_their_promises() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let seq: Vec<usize> = (1..=10).collect();
        let c = Augmentation::Crop.apply(&seq, &mut rng);
        assert_eq!(c.len(), 5);
        assert!(
            c.windows(2).all(|w| w[1] == w[0] + 1),
            "crop keeps consecutive items: {c:?}"
        );
        let m = Augmentation::Mask.apply(&seq, &mut rng);
        assert_eq!((m.len(), m.iter().filter(|&&v| v == 0).count()), (10, 5));
        let r = Augmentation::Reorder.apply(&seq, &mut rng);
        let mut sorted = r.clone();
        sorted.sort();
        assert_eq!(sorted, seq);
        assert_eq!(Augmentation::Mask.apply(&[7], &mut rng), vec![7]);
    }
}
