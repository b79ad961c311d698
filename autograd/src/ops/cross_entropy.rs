//! Cross-entropy of logits against integer class targets, mean over rows, fused with its
//! log-softmax.
//!
//! `L = -1/N sum_i log softmax(x_i)[t_i]`; `dx_i = g/N (softmax(x_i) - onehot(t_i))`.
//! The forward computes the softmax of each row once and turns it into the gradient
//! `(softmax - onehot) / N` while the row is in cache; the backward only scales it by `g`
//! (and not even that when `g = 1`). The loss falls back to the row's log-softmax where
//! `ln(softmax)` would underflow. PyTorch: `F.cross_entropy(x, t)`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct CrossEntropyBackward<E: Element> {
    x: NodeId,
    /// `d loss / d x` for an upstream gradient of 1, made by the forward pass.
    grad: Tensor<E>,
}

impl<E: Element> Backward<E> for CrossEntropyBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let g = g.item();
        // The usual case (the loss is summed into the total with weight 1) costs no pass.
        let gx = if g == E::one() {
            self.grad.clone()
        } else {
            self.grad.mul_scalar(g)
        };
        grads.add(self.x, gx);
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// Mean cross-entropy of `self` (logits `[n, classes]`) against `targets` (`n` class
    /// indices).
    ///
    /// # Panics
    /// If the shapes disagree or a target is out of range.
    pub fn cross_entropy(self, targets: &[usize]) -> Var<'t, E> {
        let (loss, grad) = self.value().cross_entropy(targets);
        let loss = grad.full_like(&[], E::from_f64(loss));
        self.tape.record("cross_entropy", loss, &[self], || {
            Box::new(CrossEntropyBackward {
                x: self.node(),
                grad,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::agreement::agree;
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::tensor;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Against its definition in general ops, `-mean_r log_softmax(x_r)[t_r]`, whose
        /// gradient autograd makes (the op's own is made by the forward kernel).
        #[test]
        fn equals_its_definition_in_general_ops(n in 1usize..6, c in 1usize..9, seed in 0u64..1000, t in proptest::collection::vec(0usize..100, 6)) {
            let targets: Vec<usize> = t[..n].iter().map(|v| v % c).collect();
            agree(
                &[tensor(&[n, c], seed, -4.0, 4.0)],
                |v| v[0].cross_entropy(&targets).mul_scalar(1.5),
                |v| v[0].log_softmax().gather(1, &targets, &[n, 1]).mean_all().neg().mul_scalar(1.5),
                1e-12,
            ).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn grad_cross_entropy(n in 1usize..6, c in 1usize..7, seed in 0u64..1000, t in proptest::collection::vec(0usize..100, 6)) {
            let targets: Vec<usize> = t[..n].iter().map(|v| v % c).collect();
            check_gradients(&[tensor(&[n, c], seed, -3.0, 3.0)], |v| v[0].cross_entropy(&targets)).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn a_target_with_underflowing_probability_keeps_an_exact_loss() {
        // softmax gives p = exp(-200) = 0 in f32; the loss must still be 200, not inf.
        let tape = crate::Tape::<f32>::new();
        let x = tape.constant(mclrec_tensor::Tensor::from_f64s(&[0.0, -200.0], &[1, 2]));
        let ce = x.cross_entropy(&[1]).value().item();
        assert!((ce - 200.0).abs() < 1e-3, "{ce}");
    }

    #[test]
    fn cross_entropy_equals_log_softmax_pick() {
        let tape = crate::Tape::<f64>::new();
        let x = tape.constant(mclrec_tensor::Tensor::from_f64s(
            &[1.0, 2.0, 3.0, 0.5, 0.5, -1.0],
            &[2, 3],
        ));
        let ce = x.cross_entropy(&[2, 0]).value().item();
        let lp = x.log_softmax().value().to_vec();
        assert!((ce - (-(lp[2] + lp[3]) / 2.0)).abs() < 1e-14);
    }
}
