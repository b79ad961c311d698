//! Sums, means, maxima and minima, over everything or along one axis.
//!
//! `sum`: the gradient is broadcast back over the reduced axis; `mean`: the same divided by
//! the axis length; `max` / `min`: the whole gradient goes to the selected element (the
//! first one on ties, as PyTorch's `max(dim)`). PyTorch: `sum`, `mean`, `max(dim)`, `min(dim)`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct SumBackward<E> {
    x: NodeId,
    shape: Vec<usize>,
    axis: usize,
    scale: E,
}
impl<E: Element> Backward<E> for SumBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let mut keep = self.shape.clone();
        keep[self.axis] = 1;
        let g = g.reshape(&keep).broadcast_to(&self.shape);
        grads.add(
            self.x,
            if self.scale == E::one() {
                g
            } else {
                g.mul_scalar(self.scale)
            },
        );
    }
}

struct SelectBackward {
    x: NodeId,
    shape: Vec<usize>,
    axis: usize,
    idx: Vec<usize>,
}
impl<E: Element> Backward<E> for SelectBackward {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let mut keep = self.shape.clone();
        keep[self.axis] = 1;
        grads.add(
            self.x,
            g.reshape(&keep)
                .scatter_add(self.axis, &self.idx, &self.shape),
        );
    }
}

struct NormBackward<E: Element> {
    x: (NodeId, Tensor<E>),
    norm: Tensor<E>,
}
impl<E: Element> Backward<E> for NormBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        // g x / norm, the scale a rank-0 tensor broadcast over x (no read back to the host).
        grads.add(self.x.0, self.x.1.mul(&g.div(&self.norm)));
    }
}

impl<'t, E: Element> Var<'t, E> {
    fn reduce_sum(self, axis: usize, mean: bool) -> Var<'t, E> {
        let x = self.value();
        let shape = x.shape().to_vec();
        let y = if mean {
            x.mean_axis(axis)
        } else {
            x.sum_axis(axis)
        };
        let scale = if mean {
            E::one() / E::from_f64(shape[axis] as f64)
        } else {
            E::one()
        };
        self.tape.record(
            if mean { "mean_axis" } else { "sum_axis" },
            y,
            &[self],
            || {
                Box::new(SumBackward {
                    x: self.node(),
                    shape,
                    axis,
                    scale,
                })
            },
        )
    }

    /// Sum along `axis` (removed from the shape).
    pub fn sum_axis(self, axis: usize) -> Var<'t, E> {
        self.reduce_sum(axis, false)
    }
    /// Mean along `axis` (removed from the shape).
    pub fn mean_axis(self, axis: usize) -> Var<'t, E> {
        self.reduce_sum(axis, true)
    }
    /// The sum of every element (a rank-0 value).
    pub fn sum_all(self) -> Var<'t, E> {
        let n = self.value().numel();
        self.reshape(&[n]).sum_axis(0)
    }
    /// The mean of every element (a rank-0 value).
    pub fn mean_all(self) -> Var<'t, E> {
        let n = self.value().numel();
        self.reshape(&[n]).mean_axis(0)
    }

    /// The Frobenius norm `sqrt(sum x^2)` of every element (a rank-0 value), as one node:
    /// its backward is `g x / norm` in one pass over `x` (PyTorch: `torch.norm(x)`), where
    /// `x.mul(x).sum_all().sqrt()` would keep `x` twice and broadcast `g` over its shape.
    /// The gradient is not finite at a zero norm.
    pub fn norm_all(self) -> Var<'t, E> {
        let x = self.value();
        let n = x.numel();
        let norm = x.square().reshape(&[n]).sum_axis(0).sqrt();
        self.tape.record("norm_all", norm.clone(), &[self], || {
            Box::new(NormBackward {
                x: (self.node(), x),
                norm,
            })
        })
    }

    fn select(self, axis: usize, max: bool) -> Var<'t, E> {
        let x = self.value();
        let shape = x.shape().to_vec();
        let (y, idx) = if max {
            x.max_axis(axis)
        } else {
            x.min_axis(axis)
        };
        self.tape.record(
            if max { "max_axis" } else { "min_axis" },
            y,
            &[self],
            || {
                Box::new(SelectBackward {
                    x: self.node(),
                    shape,
                    axis,
                    idx,
                })
            },
        )
    }

    /// Maximum along `axis`; the gradient goes to the (first) maximal element.
    pub fn max_axis(self, axis: usize) -> Var<'t, E> {
        self.select(axis, true)
    }
    /// Minimum along `axis`; the gradient goes to the (first) minimal element.
    pub fn min_axis(self, axis: usize) -> Var<'t, E> {
        self.select(axis, false)
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::{distinct, shape, tensor};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn grad_sum_all(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].sum_all()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_norm_all(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].norm_all()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn norm_all_is_the_composed_norm(s in shape(3), seed in 0u64..1000) {
            let x = tensor(&s, seed, -2.0, 2.0);
            crate::agreement::agree(&[x], |v| v[0].norm_all(), |v| v[0].mul(v[0]).sum_all().sqrt(), 1e-12)
                .map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_mean_all(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].mean_all()).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_sum_axis(s in shape(3), seed in 0u64..1000, a in 0usize..3) {
            let axis = a % s.len();
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].sum_axis(axis)).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_mean_axis(s in shape(3), seed in 0u64..1000, a in 0usize..3) {
            let axis = a % s.len();
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].mean_axis(axis)).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_max_axis(s in shape(3), seed in 0u64..1000, a in 0usize..3) {
            let axis = a % s.len();
            check_gradients(&[distinct(&s, seed)], |v| v[0].max_axis(axis)).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_min_axis(s in shape(3), seed in 0u64..1000, a in 0usize..3) {
            let axis = a % s.len();
            check_gradients(&[distinct(&s, seed)], |v| v[0].min_axis(axis)).map_err(TestCaseError::fail)?;
        }
    }
}
