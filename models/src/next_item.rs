//! The next-item objective under each loss preset, and the negatives the sampled ones
//! draw: the protocol choice behind most "cannot reproduce the paper" reports in this field.

use mclrec_autograd::Var;
use mclrec_tensor::Element;
use rand::{Rng, RngCore};

use crate::losses::{bce_loss, bpr_loss, rec_loss};

/// How a model's next-item objective scores its target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Softmax cross-entropy over all items (the RecBole family, MCLRec's official code).
    #[default]
    Ce,
    /// Binary cross-entropy with one sampled negative per target (the original SASRec and
    /// Caser, the CoSeRec / ICLRec / SRMA code bases).
    Bce,
    /// Bayesian personalised ranking with one sampled negative per target,
    /// `-ln(1e-10 + sigmoid(s_pos - s_neg))` (BPR-MF; RecBole's `BPRLoss`).
    Bpr,
}

impl LossKind {
    /// Every preset.
    pub const ALL: [LossKind; 3] = [LossKind::Ce, LossKind::Bce, LossKind::Bpr];

    /// `ce`, `bce` or `bpr`.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Ce => "ce",
            LossKind::Bce => "bce",
            LossKind::Bpr => "bpr",
        }
    }

    /// Whether the loss needs one sampled negative per target.
    pub fn samples_negatives(self) -> bool {
        self != LossKind::Ce
    }
}

impl std::str::FromStr for LossKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        LossKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("`{s}` is not a loss (ce, bce, bpr)"))
    }
}

/// The objective of representations `h` (`[batch, d]`) scored against the class rows
/// `classes` for their targets; `negatives` (one per target) for the sampled losses.
///
/// # Panics
/// If a sampled loss gets no negatives.
pub fn next_item_loss<'t, E: Element>(
    kind: LossKind,
    h: Var<'t, E>,
    classes: Var<'t, E>,
    targets: &[usize],
    negatives: Option<&[usize]>,
) -> Var<'t, E> {
    let negatives = || negatives.expect("a sampled loss needs its negatives");
    match kind {
        LossKind::Ce => rec_loss(h, classes, targets),
        LossKind::Bce => bce_loss(h, classes, targets, negatives()),
        LossKind::Bpr => bpr_loss(h, classes, targets, negatives()),
    }
}

/// One negative per target: an item of `1..=n_items` that is neither the target nor in its
/// input sequence (SASRec's rule, over the sample's input rather than the user's whole
/// history), uniformly. A bounded search: a sequence holding nearly every item takes what it
/// gets.
pub fn draw_negatives(
    inputs: &[&[usize]],
    targets: &[usize],
    n_items: usize,
    rng: &mut dyn RngCore,
) -> Vec<usize> {
    targets
        .iter()
        .zip(inputs)
        .map(|(&t, seen)| {
            let mut j = rng.gen_range(1..=n_items);
            for _ in 0..64 {
                if j != t && !seen.contains(&j) {
                    break;
                }
                j = rng.gen_range(1..=n_items);
            }
            j
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_negative_is_never_the_target_nor_in_the_input() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let inputs: Vec<&[usize]> = vec![&[1, 2, 3], &[4]];
        for _ in 0..200 {
            let negs = draw_negatives(&inputs, &[4, 5], 6, &mut rng);
            assert!(![1, 2, 3, 4].contains(&negs[0]), "{negs:?}");
            assert!(![4, 5].contains(&negs[1]), "{negs:?}");
        }
    }

    #[test]
    fn loss_names_parse_back() {
        for k in LossKind::ALL {
            assert_eq!(k.name().parse::<LossKind>(), Ok(k));
        }
        assert!("softmax".parse::<LossKind>().is_err());
    }
}
