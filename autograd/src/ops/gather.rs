//! Gather by index along an axis (`torch.gather`): `y[.., j, ..] = x[.., idx[.., j, ..], ..]`.
//!
//! The backward scatter-adds `g` back to the gathered places. InfoNCE uses it to pick each
//! row's positive similarity. PyTorch: `torch.gather(x, dim, idx)`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct GatherBackward {
    x: NodeId,
    shape: Vec<usize>,
    axis: usize,
    idx: Vec<usize>,
}

impl<E: Element> Backward<E> for GatherBackward {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        grads.add(self.x, g.scatter_add(self.axis, &self.idx, &self.shape));
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// Picks along `axis` by `idx` (row-major, of shape `idx_shape`, equal to this shape off
    /// the axis).
    pub fn gather(self, axis: usize, idx: &[usize], idx_shape: &[usize]) -> Var<'t, E> {
        let x = self.value();
        let shape = x.shape().to_vec();
        let y = x.gather(axis, idx, idx_shape);
        let idx = idx.to_vec();
        self.tape.record("gather", y, &[self], || {
            Box::new(GatherBackward {
                x: self.node(),
                shape,
                axis,
                idx,
            })
        })
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
        fn grad_gather(s in shape(3), k in 1usize..4, a in 0usize..3, picks in proptest::collection::vec(0usize..100, 64), seed in 0u64..1000) {
            let axis = a % s.len();
            let mut is = s.clone();
            is[axis] = k;
            let n: usize = is.iter().product();
            let idx: Vec<usize> = picks.iter().cycle().take(n).map(|p| p % s[axis]).collect();
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].gather(axis, &idx, &is)).map_err(TestCaseError::fail)?;
        }
    }
}
