//! Cross-entropy over the scores of a linear layer without bias, `h W^T`, fused: the
//! next-item loss of a recommender, whose `W` is the item table. The maths is in
//! [`FusedOps::linear_cross_entropy`](super::FusedOps::linear_cross_entropy); the same loss
//! in general ops is [`reference::linear_cross_entropy`](super::reference::linear_cross_entropy).
//!
//! `L = -1/n sum_r log softmax(h_r W^T)[t_r]`; with `G = (softmax(h W^T) - onehot) / n`,
//! `dh = g G W` and `dW = g G^T h`. The same as `h.matmul_t(w, false, true).cross_entropy(t)`,
//! but on the CPU neither the `[n, classes]` scores nor their gradient is stored: the forward
//! works a block of classes at a time while the block is in cache and keeps its
//! exponentials, from which the backward makes `G` block by block (see
//! [`mclrec_tensor::Tensor::linear_cross_entropy`]).

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct LinearCrossEntropyBackward<E: Element> {
    h: (NodeId, Tensor<E>),
    w: (NodeId, Tensor<E>),
    targets: Vec<usize>,
    /// What the forward kept for the backward (on the CPU the exponentials per block).
    saved: Tensor<E>,
}

impl<E: Element> Backward<E> for LinearCrossEntropyBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let (h, w) = (&self.h.1, &self.w.1);
        let (dh, dw) = h.linear_cross_entropy_backward(w, &self.targets, &self.saved, g.item());
        grads.add(self.h.0, dh);
        grads.add(self.w.0, dw);
    }
}

/// [`FusedOps::linear_cross_entropy`](super::FusedOps::linear_cross_entropy): the
/// kernel's loss, and a backward that keeps the inputs and what the kernel saved.
pub(super) fn linear_cross_entropy<'t, E: Element>(
    h: Var<'t, E>,
    w: Var<'t, E>,
    targets: &[usize],
) -> Var<'t, E> {
    let (h_value, w_value) = (h.value(), w.value());
    let (loss, saved) = h_value.linear_cross_entropy(&w_value, targets);
    let loss = saved.full_like(&[], E::from_f64(loss));
    h.tape().record("linear_cross_entropy", loss, &[h, w], || {
        Box::new(LinearCrossEntropyBackward {
            h: (h.node(), h_value.clone()),
            w: (w.node(), w_value.clone()),
            targets: targets.to_vec(),
            saved,
        })
    })
}

#[cfg(test)]
mod tests {
    use crate::agreement::agree;
    use crate::fused::{reference, FusedOps};
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::tensor;
    use crate::Tape;
    use mclrec_tensor::Tensor;
    use proptest::prelude::*;

    /// The fused loss equals the reference's, value and both gradients, to `1e-12`.
    fn fused_equals_reference(
        h: Tensor<f64>,
        w: Tensor<f64>,
        targets: &[usize],
    ) -> Result<(), String> {
        agree(
            &[h, w],
            |v| v[0].linear_cross_entropy(v[1], targets),
            |v| reference::linear_cross_entropy(v[0], v[1], targets),
            1e-12,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn equals_the_reference_on_random_scores(n in 1usize..6, c in 1usize..9, d in 1usize..5, seed in 0u64..1000, t in proptest::collection::vec(0usize..100, 5)) {
            let targets: Vec<usize> = t.iter().cycle().take(n).map(|v| v % c).collect();
            fused_equals_reference(tensor(&[n, d], seed, -3.0, 3.0), tensor(&[c, d], seed + 1, -3.0, 3.0), &targets)
                .map_err(TestCaseError::fail)?;
        }

        #[test]
        fn grad_linear_cross_entropy(n in 1usize..5, c in 1usize..7, d in 1usize..4, seed in 0u64..1000, t in proptest::collection::vec(0usize..100, 5)) {
            let targets: Vec<usize> = t[..n].iter().map(|v| v % c).collect();
            check_gradients(
                &[tensor(&[n, d], seed, -2.0, 2.0), tensor(&[c, d], seed + 1, -2.0, 2.0)],
                |v| v[0].linear_cross_entropy(v[1], &targets).mul_scalar(1.5),
            ).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn equals_the_reference_over_several_item_blocks() {
        // 1,300 classes: the CPU kernel's blocks of 512 and a part; repeated targets.
        let (n, c, d) = (7, 1300, 4);
        let targets = [0, 511, 512, 1299, 700, 511, 3];
        fused_equals_reference(
            tensor(&[n, d], 3, -2.0, 2.0),
            tensor(&[c, d], 4, -2.0, 2.0),
            &targets,
        )
        .unwrap();
    }

    #[test]
    fn equals_the_unfused_loss_and_gradients_over_several_item_blocks() {
        // 1,300 classes: the CPU kernel's blocks of 512 and a part.
        let (n, c, d) = (9, 1300, 5);
        let val = |i: usize, s: f64| (i as f64 * 0.37 + s).sin() * 1.3;
        let h = Tensor::<f64>::from_vec((0..n * d).map(|i| val(i, 0.1)).collect(), &[n, d]);
        let w = Tensor::from_vec((0..c * d).map(|i| val(i, 2.0)).collect(), &[c, d]);
        let targets: Vec<usize> = (0..n).map(|r| (r * 211) % c).collect();
        let run = |fused: bool| {
            let tape = Tape::<f64>::new();
            let (hv, wv) = (tape.leaf(h.clone()), tape.leaf(w.clone()));
            let loss = if fused {
                hv.linear_cross_entropy(wv, &targets)
            } else {
                hv.matmul_t(wv, false, true).cross_entropy(&targets)
            };
            let loss = loss.mul_scalar(0.5);
            let grads = loss.backward();
            (
                loss.value().item(),
                grads.get(hv).unwrap().to_vec(),
                grads.get(wv).unwrap().to_vec(),
            )
        };
        let (fused, unfused) = (run(true), run(false));
        assert!((fused.0 - unfused.0).abs() < 1e-12);
        for (a, b) in fused
            .1
            .iter()
            .chain(&fused.2)
            .zip(unfused.1.iter().chain(&unfused.2))
        {
            assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        }
    }
}
