//! Softmax and log-softmax over the last axis.
//!
//! `y = softmax(x)`: `dx = y * (g - sum(g * y))` (sums over the last axis).
//! `y = log_softmax(x)`: `dx = g - softmax(x) * sum(g)`.
//! PyTorch: `F.softmax(x, -1)`, `F.log_softmax(x, -1)`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct SoftmaxBackward<E: Element> {
    x: NodeId,
    y: Tensor<E>,
    log: bool,
}

impl<E: Element> Backward<E> for SoftmaxBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let last = self.y.rank() - 1;
        let gx = if self.log {
            let p = self.y.exp();
            g.sub(&p.mul(&g.sum_keepdim(last)))
        } else {
            let dot = g.mul(&self.y).sum_keepdim(last);
            self.y.mul(&g.sub(&dot))
        };
        grads.add(self.x, gx);
    }
}

impl<'t, E: Element> Var<'t, E> {
    fn softmax_op(self, log: bool) -> Var<'t, E> {
        let x = self.value();
        let y = if log { x.log_softmax() } else { x.softmax() };
        let saved = y.clone();
        self.tape.record(
            if log { "log_softmax" } else { "softmax" },
            y,
            &[self],
            || {
                Box::new(SoftmaxBackward {
                    x: self.node(),
                    y: saved,
                    log,
                })
            },
        )
    }

    /// Softmax over the last axis.
    pub fn softmax(self) -> Var<'t, E> {
        self.softmax_op(false)
    }
    /// Log-softmax over the last axis (stable: never `ln` of an underflowed softmax).
    pub fn log_softmax(self) -> Var<'t, E> {
        self.softmax_op(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::{shape, tensor};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn grad_softmax(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, -3.0, 3.0)], |v| v[0].softmax()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_log_softmax(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, -3.0, 3.0)], |v| v[0].log_softmax()).map_err(TestCaseError::fail)?;
        }
    }
}
