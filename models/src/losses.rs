//! MCLRec's losses, as the official code computes them (`mclrec.py`).
//!
//! Where the paper's formulas differ from the code, the code is followed:
//! * the contrastive similarity is a plain dot product with temperature 1 (the paper
//!   writes a general `sim(., .) / tau`);
//! * `L_rec` is a softmax over the padding item and every real item (the padding class is
//!   not masked in training);
//! * the regulariser includes the factor 0.1 (the paper's `gamma`, folded into `R` by the
//!   official `meta_rl`) and is written with hinge terms around the hardest negative.

use mclrec_autograd::fused::FusedOps;
use mclrec_autograd::Var;
use mclrec_tensor::{Element, Tensor};

/// `L_rec`: mean cross-entropy of `h E^T` (E = the class rows of the item table) against
/// the next items, fused so that the `[batch, items]` scores are never stored.
pub fn rec_loss<'t, E: Element>(
    h: Var<'t, E>,
    class_embeddings: Var<'t, E>,
    targets: &[usize],
) -> Var<'t, E> {
    h.linear_cross_entropy(class_embeddings, targets)
}

/// `L_rec` of the BCE protocol (the original SASRec, Caser and the CoSeRec / ICLRec / SRMA
/// code bases): one sampled negative per target, `mean(-ln σ(h·e_pos) - ln σ(-h·e_neg))`
/// over the batch, where `e` are rows of the class embeddings.
pub fn bce_loss<'t, E: Element>(
    h: Var<'t, E>,
    class_embeddings: Var<'t, E>,
    targets: &[usize],
    negatives: &[usize],
) -> Var<'t, E> {
    assert_eq!(targets.len(), negatives.len(), "one negative per target");
    let score = |items: &[usize]| h.mul(class_embeddings.index_select(0, items)).sum_axis(1);
    let pos = score(targets).log_sigmoid();
    let neg = score(negatives).neg().log_sigmoid();
    pos.add(neg).mean_all().neg()
}

/// The BPR loss (Rendle et al.) of representations `h` preferring each target to its
/// negative: `mean(-ln(1e-10 + sigmoid(h.e_pos - h.e_neg)))` (the `1e-10` is RecBole's
/// `BPRLoss` `gamma`, keeping the logarithm finite).
pub fn bpr_loss<'t, E: Element>(
    h: Var<'t, E>,
    class_embeddings: Var<'t, E>,
    targets: &[usize],
    negatives: &[usize],
) -> Var<'t, E> {
    assert_eq!(targets.len(), negatives.len(), "one negative per target");
    let score = |items: &[usize]| h.mul(class_embeddings.index_select(0, items)).sum_axis(1);
    score(targets)
        .sub(score(negatives))
        .sigmoid()
        .add_scalar(E::from_f64(BPR_GAMMA))
        .ln()
        .mean_all()
        .neg()
}

/// RecBole's `BPRLoss` keeps the logarithm finite with this.
const BPR_GAMMA: f64 = 1e-10;

/// For `2n` rows: the partner of row `r` (`r + n` or `r - n`).
fn partners(n: usize) -> Vec<usize> {
    (0..2 * n)
        .map(|r| if r < n { r + n } else { r - n })
        .collect()
}

/// A `[2n, 2n]` mask with 1 on the diagonal (and, with `partner`, at each row's partner),
/// on the device of `s`.
fn mask<E: Element>(s: &Var<'_, E>, n: usize, partner: bool) -> Tensor<E> {
    let m = 2 * n;
    let mut v = vec![E::zero(); m * m];
    for (r, p) in partners(n).into_iter().enumerate() {
        v[r * m + r] = E::one();
        if partner {
            v[r * m + p] = E::one();
        }
    }
    s.value().from_vec_like(v, &[m, m])
}

/// `z = [a; b]`, `S = z z^T` (dot product, temperature 1).
fn similarity<'t, E: Element>(a: Var<'t, E>, b: Var<'t, E>) -> Var<'t, E> {
    let z = Var::concat(&[a, b], 0);
    z.matmul_t(z, false, true)
}

/// InfoNCE of two views `a`, `b` (`[n, d]` each): with `S = [a; b][a; b]^T`, row `r`'s
/// positive is its partner and its negatives the `2n - 2` other rows; the loss is the mean
/// over the `2n` rows of `-S[r, partner] + log sum_{c != r} exp S[r, c]`.
///
/// (`mclrec.py` `info_nce`: cross-entropy of `[positive, negatives]` with label 0, which
/// is the same number.)
pub fn info_nce<'t, E: Element>(a: Var<'t, E>, b: Var<'t, E>) -> Var<'t, E> {
    let s = similarity(a, b);
    if a.shape()[0] >= 2 {
        s.contrastive_pair().0
    } else {
        info_nce_of(s)
    }
}

/// [`info_nce`] from the pair's similarity matrix `S` (`[2n, 2n]`).
fn info_nce_of<E: Element>(s: Var<'_, E>) -> Var<'_, E> {
    let n = s.shape()[0] / 2;
    s.masked_fill(&mask(&s, n, false), E::neg_infinity())
        .cross_entropy(&partners(n))
}

/// The official `meta_contrast_rl` term for one pair: with positives `p_r`, negatives
/// `n_rj` and `m_r = max_j n_rj`,
/// `mean_r relu(p_r - min(p_r, m_r)) + mean_{r,j} relu(max(p_r, m_r) - n_rj)`.
///
/// Written with `relu(p - m)` for `p - min(p, m)` and `m + relu(p - m)` for `max(p, m)`,
/// which are equal and have the same gradients as the official `torch.min` / `torch.max`.
pub fn regulariser_term<'t, E: Element>(a: Var<'t, E>, b: Var<'t, E>) -> Var<'t, E> {
    regulariser_of(similarity(a, b))
}

/// [`regulariser_term`] from the pair's similarity matrix `S` (`[2n, 2n]`).
fn regulariser_of<E: Element>(s: Var<'_, E>) -> Var<'_, E> {
    let m2 = s.shape()[0];
    let n = m2 / 2;
    let not_neg = mask(&s, n, true);
    let pos = s.gather(1, &partners(n), &[m2, 1]); // [2n, 1]
    let hardest = s
        .masked_fill(&not_neg, E::neg_infinity())
        .max_axis(1)
        .reshape(&[m2, 1]);
    let gap = pos.sub(hardest).relu(); // p - min(p, m)
    let hi = hardest.add(gap); // max(p, m)
    let first = gap.mean_all();
    let hinge = hi.sub(s).relu().masked_fill(&not_neg, E::zero());
    let second = hinge
        .sum_all()
        .mul_scalar(E::from_f64(1.0 / (m2 * (m2 - 2)) as f64));
    first.add(second)
}

/// Every loss term of one MCLRec forward pass (each a scalar).
pub struct MclrecLosses<'t, E: Element> {
    /// `L_rec` (absent when the step does not use it).
    pub rec: Option<Var<'t, E>>,
    /// `L_cl1 = info_nce(h1, h2)`.
    pub cl1: Var<'t, E>,
    /// `info_nce(h1, z2)`, `info_nce(h2, z1)`, `info_nce(z1, z2)`.
    pub cl2_terms: [Var<'t, E>; 3],
    /// `r(h1, z2)`, `r(h2, z1)`, `r(z1, z2)` (without the 0.1).
    pub reg_terms: [Var<'t, E>; 3],
}

impl<'t, E: Element> MclrecLosses<'t, E> {
    /// Computes the contrastive terms from the two views `h1`, `h2` and their augmenter
    /// outputs `z1 = w1(h1)`, `z2 = w2(h2)`.
    pub fn new(
        rec: Option<Var<'t, E>>,
        h1: Var<'t, E>,
        h2: Var<'t, E>,
        z1: Var<'t, E>,
        z2: Var<'t, E>,
    ) -> Self {
        // One similarity matrix per pair, and both of its terms from one fused op (which
        // needs a negative per row: n >= 2; a batch of one keeps the written-out terms).
        let pairs = [(h1, z2), (h2, z1), (z1, z2)].map(|(a, b)| {
            let s = similarity(a, b);
            if a.shape()[0] >= 2 {
                s.contrastive_pair()
            } else {
                (info_nce_of(s), regulariser_of(s))
            }
        });
        MclrecLosses {
            rec,
            cl1: info_nce(h1, h2),
            cl2_terms: pairs.map(|p| p.0),
            reg_terms: pairs.map(|p| p.1),
        }
    }

    /// `L_cl2`: the sum of the three meta-contrast terms.
    pub fn cl2(&self) -> Var<'t, E> {
        self.cl2_terms[0]
            .add(self.cl2_terms[1])
            .add(self.cl2_terms[2])
    }

    /// `R = 0.1 (r1 + r2 + r3)` (the official `meta_rl`).
    pub fn reg(&self) -> Var<'t, E> {
        self.reg_terms[0]
            .add(self.reg_terms[1])
            .add(self.reg_terms[2])
            .mul_scalar(E::from_f64(0.1))
    }

    /// The encoder steps' loss: `L_rec + lambda L_cl1 + beta (L_cl2 + R)`.
    ///
    /// # Panics
    /// If `L_rec` was not computed.
    pub fn encoder_loss(&self, lambda: f64, beta: f64) -> Var<'t, E> {
        self.encoder_objective(&MclrecWeights::all(lambda, beta))
    }

    /// The encoder steps' loss with the terms `w` drops left out (a zero `lambda` adds
    /// nothing, not even a backward pass): `L_rec + lambda L_cl1 + beta L_cl2 + beta R`.
    /// This is what the trainer minimises.
    ///
    /// # Panics
    /// If `L_rec` was not computed.
    pub fn encoder_objective(&self, w: &MclrecWeights) -> Var<'t, E> {
        let mut loss = self.rec.expect("the encoder step needs L_rec");
        if w.lambda != 0.0 {
            loss = loss.add(self.cl1.mul_scalar(E::from_f64(w.lambda)));
        }
        if w.cl2 {
            loss = loss.add(self.cl2().mul_scalar(E::from_f64(w.beta)));
        }
        if w.reg {
            loss = loss.add(self.reg().mul_scalar(E::from_f64(w.beta)));
        }
        loss
    }

    /// The augmenter step's loss: `lambda L_cl1 + L_cl2 + R`.
    pub fn augmenter_loss(&self, lambda: f64) -> Var<'t, E> {
        self.augmenter_objective(&MclrecWeights::all(lambda, 1.0))
            .expect("L_cl2 is kept")
    }

    /// The augmenter step's loss with the terms `w` drops left out (its `beta` is not
    /// used): `lambda L_cl1 + L_cl2 + R`; `None` when nothing is left.
    pub fn augmenter_objective(&self, w: &MclrecWeights) -> Option<Var<'t, E>> {
        let mut parts = Vec::new();
        if w.lambda != 0.0 {
            parts.push(self.cl1.mul_scalar(E::from_f64(w.lambda)));
        }
        if w.cl2 {
            parts.push(self.cl2());
        }
        if w.reg {
            parts.push(self.reg());
        }
        parts.into_iter().reduce(|a, b| a.add(b))
    }
}

/// The weights of MCLRec's terms, and which of them an ablation keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MclrecWeights {
    /// Weight of `L_cl1`.
    pub lambda: f64,
    /// Weight of `L_cl2` and `R` in the encoder steps.
    pub beta: f64,
    /// Keep `L_cl2` (off: the ablation "w/o L_cl2").
    pub cl2: bool,
    /// Keep `R` (off: the ablation "w/o R").
    pub reg: bool,
}

impl MclrecWeights {
    /// Every term, with these weights.
    pub fn all(lambda: f64, beta: f64) -> Self {
        MclrecWeights {
            lambda,
            beta,
            cl2: true,
            reg: true,
        }
    }
}

#[cfg(test)]
mod bce_tests {
    use super::*;
    use mclrec_autograd::Tape;

    #[test]
    fn bce_loss_is_the_mean_of_the_two_log_sigmoid_terms() {
        let tape = Tape::new();
        let h = tape.leaf(Tensor::from_vec(vec![1.0f64, -2.0, 0.5, 0.25], &[2, 2]));
        let e = tape.leaf(Tensor::from_vec(
            vec![0.0, 0.0, 1.0, 1.0, -1.0, 3.0, 2.0, 0.5],
            &[4, 2],
        ));
        let loss = bce_loss(h, e, &[1, 3], &[2, 1]).value().item();
        let ls = |x: f64| -(1.0 + (-x).exp()).ln();
        // Row 0: pos = h0.e1 = -1, neg = h0.e2 = -7; row 1: pos = h1.e3 = 1.125, neg = h1.e1 = 0.75.
        let want = -(ls(-1.0) + ls(7.0) + ls(1.125) + ls(-0.75)) / 2.0;
        assert!((loss - want).abs() < 1e-12, "{loss} vs {want}");
    }

    #[test]
    fn bce_loss_gradients_match_finite_differences() {
        use mclrec_autograd::gradcheck::check_gradients;
        let h = Tensor::from_vec(vec![0.3f64, -0.7, 1.1, 0.2, -0.4, 0.9], &[3, 2]);
        let e = Tensor::from_vec((0..10).map(|i| (i as f64 * 0.37).sin()).collect(), &[5, 2]);
        check_gradients(&[h, e], |v| bce_loss(v[0], v[1], &[1, 4, 1], &[3, 2, 0])).unwrap();
    }
}
