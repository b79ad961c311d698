//! Cross-entropy of logits against integer class targets, mean over rows, fused with its
//! log-softmax.
//!
//! `L = -1/N sum_i log softmax(x_i)[t_i]`; `dx_i = g/N (softmax(x_i) - onehot(t_i))`.
//! Fusing the two avoids materialising the log-probabilities' gradient separately and is
//! exact where a separate `ln(softmax)` would underflow. PyTorch: `F.cross_entropy(x, t)`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct CrossEntropyBackward<E: Element> {
    x: NodeId,
    log_p: Tensor<E>,
    targets: Vec<usize>,
}

impl<E: Element> Backward<E> for CrossEntropyBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let n = self.targets.len();
        let c = self.log_p.shape()[1];
        let scale = g.item() / E::from_f64(n as f64);
        // (softmax - onehot) * scale: two parallel passes over the 256 x 12,101 block, then
        // n single-element fixes in place (the fresh tensor is not shared, so no copy).
        let mut gx = self.log_p.exp().mul_scalar(scale);
        let gs = gx.as_mut_slice();
        for (i, &t) in self.targets.iter().enumerate() {
            gs[i * c + t] -= scale;
        }
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
        let x = self.value();
        assert_eq!(
            x.rank(),
            2,
            "cross_entropy needs [n, classes] logits, got {:?}",
            x.shape()
        );
        let (n, c) = (x.shape()[0], x.shape()[1]);
        assert_eq!(
            targets.len(),
            n,
            "cross_entropy: {} targets for {n} rows",
            targets.len()
        );
        assert!(
            targets.iter().all(|&t| t < c),
            "cross_entropy: target out of range for {c} classes"
        );
        let log_p = x.log_softmax();
        let lp = log_p.as_slice();
        let total: f64 = targets
            .iter()
            .enumerate()
            .map(|(i, &t)| lp[i * c + t].as_f64())
            .sum();
        let loss = Tensor::scalar(E::from_f64(-total / n as f64));
        let targets = targets.to_vec();
        self.tape.record(loss, &[self], || {
            Box::new(CrossEntropyBackward {
                x: self.node(),
                log_p,
                targets,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::tensor;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn grad_cross_entropy(n in 1usize..6, c in 1usize..7, seed in 0u64..1000, t in proptest::collection::vec(0usize..100, 6)) {
            let targets: Vec<usize> = t[..n].iter().map(|v| v % c).collect();
            check_gradients(&[tensor(&[n, c], seed, -3.0, 3.0)], |v| v[0].cross_entropy(&targets)).map_err(TestCaseError::fail)?;
        }
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
