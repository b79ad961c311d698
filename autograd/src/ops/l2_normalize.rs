//! Row-wise L2 normalisation over the last axis: `y = x / ||x||`.
//!
//! `dx = (g - y * sum(g * y)) / ||x||`. As the official MCLRec augmenter, there is no
//! epsilon: a zero row gives NaN. PyTorch: `x / x.norm(dim=-1, keepdim=True)`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct L2NormalizeBackward<E: Element> {
    x: NodeId,
    y: Tensor<E>,
    norm: Tensor<E>,
}

impl<E: Element> Backward<E> for L2NormalizeBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let last = self.y.rank() - 1;
        let dot = g.mul(&self.y).sum_keepdim(last);
        grads.add(self.x, g.sub(&self.y.mul(&dot)).div(&self.norm));
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// Divides each row (last axis) by its Euclidean norm.
    pub fn l2_normalize(self) -> Var<'t, E> {
        let x = self.value();
        let last = x.rank() - 1;
        let norm = x.square().sum_keepdim(last).sqrt();
        let y = x.div(&norm);
        let saved = y.clone();
        self.tape.record("l2_normalize", y, &[self], || {
            Box::new(L2NormalizeBackward {
                x: self.node(),
                y: saved,
                norm,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::{away_from_zero, shape};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn grad_l2_normalize(s in shape(3), seed in 0u64..1000) {
            check_gradients(&[away_from_zero(&s, seed, 0.3)], |v| v[0].l2_normalize()).map_err(TestCaseError::fail)?;
        }
    }
}
