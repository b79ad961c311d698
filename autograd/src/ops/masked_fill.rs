//! Masked fill: `value` where a (broadcast) mask is non-zero, `x` elsewhere.
//!
//! `dx = g` where the mask is zero, `0` where it is set. PyTorch: `x.masked_fill(mask, v)`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct MaskedFillBackward<E: Element> {
    x: NodeId,
    mask: Tensor<E>,
}

impl<E: Element> Backward<E> for MaskedFillBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        grads.add(self.x, g.masked_fill(&self.mask, E::zero()));
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// `value` wherever `mask` (broadcast to this shape) is non-zero.
    pub fn masked_fill(self, mask: &Tensor<E>, value: E) -> Var<'t, E> {
        let y = self.value().masked_fill(mask, value);
        let mask = mask.clone();
        self.tape.record("masked_fill", y, &[self], || {
            Box::new(MaskedFillBackward {
                x: self.node(),
                mask,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::{broadcast_pair, tensor};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn grad_masked_fill((a, b, _) in broadcast_pair(), seed in 0u64..1000) {
            let mask = tensor(&b, seed + 9, 0.0, 1.0).gt_scalar(0.5);
            check_gradients(&[tensor(&a, seed, -2.0, 2.0)], |v| v[0].masked_fill(&mask, -7.0)).map_err(TestCaseError::fail)?;
        }
    }
}
