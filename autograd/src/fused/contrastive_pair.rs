//! MCLRec's pair terms (InfoNCE and the regulariser term) fused over the pair's similarity
//! matrix: one tape node over the kernel [`mclrec_tensor::Tensor::contrastive_pair`]. The
//! maths is in [`FusedOps::contrastive_pair`](super::FusedOps::contrastive_pair); the same
//! terms in general ops are [`reference::contrastive_pair`](super::reference::contrastive_pair).
//!
//! The forward computes both terms and their gradients with respect to `S` in one pass per
//! row (the rows are 512 long, so the gradients cost what the forward does); the backward
//! is `dS = g_0 dInfoNCE/dS + g_1 dR/dS`. One op instead of about twenty elementwise ops,
//! gathers and reductions over `[2n, 2n]` per pair.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct ContrastivePairBackward<E: Element> {
    s: NodeId,
    d_nce: Tensor<E>,
    d_reg: Tensor<E>,
}

impl<E: Element> Backward<E> for ContrastivePairBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let g = g.to_vec();
        let ds = match (g[0] == E::zero(), g[1] == E::zero()) {
            (true, true) => return,
            (false, true) => self.d_nce.mul_scalar(g[0]),
            (true, false) => self.d_reg.mul_scalar(g[1]),
            (false, false) => self
                .d_nce
                .mul_scalar(g[0])
                .add(&self.d_reg.mul_scalar(g[1])),
        };
        grads.add(self.s, ds);
    }
}

/// [`FusedOps::contrastive_pair`](super::FusedOps::contrastive_pair): one node holding
/// both terms (`[2]`), whose backward scales the two gradients the kernel made, then the two
/// scalars cut from it.
pub(super) fn contrastive_pair<'t, E: Element>(s: Var<'t, E>) -> (Var<'t, E>, Var<'t, E>) {
    let (values, d_nce, d_reg) = s.value().contrastive_pair();
    let both = s.tape().record("contrastive_pair", values, &[s], || {
        Box::new(ContrastivePairBackward {
            s: s.node(),
            d_nce,
            d_reg,
        })
    });
    (
        both.narrow(0, 0, 1).reshape(&[]),
        both.narrow(0, 1, 1).reshape(&[]),
    )
}

#[cfg(test)]
mod tests {
    use crate::agreement::agree;
    use crate::fused::{reference, FusedOps};
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::tensor;
    use crate::Tape;
    use crate::Var;
    use mclrec_tensor::Tensor;
    use proptest::prelude::*;

    /// Both terms as one `[2]` output, weighted differently by [`agree`]'s contraction.
    fn both<'t>((a, b): (Var<'t, f64>, Var<'t, f64>)) -> Var<'t, f64> {
        Var::concat(&[a.reshape(&[1]), b.reshape(&[1])], 0)
    }

    /// The fused terms equal the reference's, values and gradient, to `1e-12`.
    fn fused_equals_reference(s: Tensor<f64>) -> Result<(), String> {
        agree(
            &[s],
            |v| both(v[0].contrastive_pair()),
            |v| both(reference::contrastive_pair(v[0])),
            1e-12,
        )
    }

    #[test]
    fn equals_the_reference_on_ties() {
        // Small integers: rows whose positive ties its hardest negative (gap 0, relu'(0) = 0),
        // rows with two equal hardest negatives (the first gets the gradient), hinges at
        // exactly 0, and a diagonal larger than everything (which must not count).
        #[rustfmt::skip]
        let n2 = Tensor::<f64>::from_f64s(&[
            9.0, 1.0, 1.0, 1.0,
            2.0, 9.0, 1.0, 2.0,
            1.0, 3.0, 9.0, 3.0,
            0.0, 0.0, 0.0, 9.0,
        ], &[4, 4]);
        fused_equals_reference(n2).unwrap();
        let n5: Vec<f64> = (0..100)
            .map(|i| ((i * 7 + i / 10) % 5) as f64 - 2.0)
            .collect();
        fused_equals_reference(Tensor::from_vec(n5, &[10, 10])).unwrap();
    }

    /// The two terms written out literally, one row at a time, in f64.
    fn literal(s: &[f64], m: usize) -> (f64, f64) {
        let n = m / 2;
        let (mut nce, mut gaps, mut hinges) = (0.0, 0.0, 0.0);
        for r in 0..m {
            let p = if r < n { r + n } else { r - n };
            let row = &s[r * m..(r + 1) * m];
            let others: Vec<f64> = (0..m).filter(|&c| c != r).map(|c| row[c]).collect();
            nce += others.iter().map(|v| v.exp()).sum::<f64>().ln() - row[p];
            let negs: Vec<f64> = (0..m)
                .filter(|&c| c != r && c != p)
                .map(|c| row[c])
                .collect();
            let hard = negs.iter().cloned().fold(f64::MIN, f64::max);
            let (mn, mx) = (row[p].min(hard), row[p].max(hard));
            gaps += row[p] - mn;
            hinges += negs.iter().map(|v| (mx - v).max(0.0)).sum::<f64>();
        }
        (
            nce / m as f64,
            gaps / m as f64 + hinges / (m * (m - 2)) as f64,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn contrastive_pair_equals_the_literal_terms(n in 2usize..6, seed in 0u64..1000) {
            let m = 2 * n;
            let s = tensor(&[m, m], seed, -3.0, 3.0);
            let tape = Tape::<f64>::new();
            let (a, b) = tape.constant(s.clone()).contrastive_pair();
            let (want_a, want_b) = literal(&s.to_vec(), m);
            prop_assert!((a.value().item() - want_a).abs() < 1e-12);
            prop_assert!((b.value().item() - want_b).abs() < 1e-12);
        }

        #[test]
        fn equals_the_reference_on_random_pairs(n in prop_oneof![Just(2usize), Just(5), 2usize..7], seed in 0u64..1000) {
            fused_equals_reference(tensor(&[2 * n, 2 * n], seed, -3.0, 3.0))
                .map_err(TestCaseError::fail)?;
        }

        #[test]
        fn grad_contrastive_pair(n in 2usize..5, seed in 0u64..1000, wa in -2.0f64..2.0, wb in -2.0f64..2.0) {
            let m = 2 * n;
            check_gradients(&[tensor(&[m, m], seed, -3.0, 3.0)], |v| {
                let (a, b) = v[0].contrastive_pair();
                a.mul_scalar(wa).add(b.mul_scalar(wb))
            }).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn a_positive_below_its_hardest_negative_sends_the_gap_gradient_to_that_negative() {
        // Row 0: partner 2 scores 0, the hardest negative (column 1) 2.
        #[rustfmt::skip]
        let s = Tensor::<f64>::from_f64s(&[
            5.0, 2.0, 0.0, 1.0,
            2.0, 5.0, 1.0, 0.0,
            0.0, 1.0, 5.0, 2.0,
            1.0, 0.0, 2.0, 5.0,
        ], &[4, 4]);
        check_gradients(&[s], |v| v[0].contrastive_pair().1).unwrap();
    }
}
