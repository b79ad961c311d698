//! Caser's horizontal convolution max-pooled over time, fused: one tape node over the
//! kernel [`mclrec_tensor::Tensor::conv_max_pool`]. The maths is in
//! [`FusedOps::conv_max_pool`](super::FusedOps::conv_max_pool); the same op in general ops is
//! [`reference::conv_max_pool`](super::reference::conv_max_pool).
//!
//! The node keeps the input, the filters and the window each maximum came from (`b n`
//! indices), not the `h` unfolded copies of the input and the `[b, l - h + 1, n]`
//! activations that the reference keeps; its backward touches only the winning windows.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct ConvMaxPoolBackward<E: Element> {
    x: (NodeId, Tensor<E>),
    w: (NodeId, Tensor<E>),
    bias: NodeId,
    /// The window of each output's maximum.
    at: Vec<usize>,
}

impl<E: Element> Backward<E> for ConvMaxPoolBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let (dx, dw, dbias) = self.x.1.conv_max_pool_backward(&self.w.1, &self.at, g);
        grads.add(self.x.0, dx);
        grads.add(self.w.0, dw);
        grads.add(self.bias, dbias);
    }
}

/// [`FusedOps::conv_max_pool`](super::FusedOps::conv_max_pool): the kernel's output, and a
/// backward that keeps the inputs and the winning windows.
pub(super) fn conv_max_pool<'t, E: Element>(
    x: Var<'t, E>,
    w: Var<'t, E>,
    bias: Var<'t, E>,
) -> Var<'t, E> {
    let (x_value, w_value) = (x.value(), w.value());
    let (out, at) = x_value.conv_max_pool(&w_value, &bias.value());
    x.tape().record("conv_max_pool", out, &[x, w, bias], || {
        Box::new(ConvMaxPoolBackward {
            x: (x.node(), x_value.clone()),
            w: (w.node(), w_value.clone()),
            bias: bias.node(),
            at,
        })
    })
}

#[cfg(test)]
mod tests {
    use crate::agreement::agree;
    use crate::fused::{reference, FusedOps};
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::tensor;
    use mclrec_tensor::Tensor;
    use proptest::prelude::*;

    /// Shapes `(b, l, d, n, h)` with `1 <= h <= l`.
    fn dims() -> impl Strategy<Value = (usize, usize, usize, usize, usize)> {
        (1usize..4, 1usize..6, 1usize..4, 1usize..4)
            .prop_flat_map(|(b, l, d, n)| (Just(b), Just(l), Just(d), Just(n), 1..=l))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn equals_the_reference_on_random_inputs((b, l, d, n, h) in dims(), seed in 0u64..1000) {
            agree(
                &[tensor(&[b, l, d], seed, -2.0, 2.0), tensor(&[n, h, d], seed + 1, -2.0, 2.0), tensor(&[n], seed + 2, -1.0, 1.0)],
                |v| v[0].conv_max_pool(v[1], v[2]),
                |v| reference::conv_max_pool(v[0], v[1], v[2]),
                1e-12,
            ).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn grad_conv_max_pool((b, l, d, n, h) in dims(), seed in 0u64..1000) {
            // Random inputs: the windows' maxima are apart by far more than the step.
            check_gradients(
                &[tensor(&[b, l, d], seed, -2.0, 2.0), tensor(&[n, h, d], seed + 1, -2.0, 2.0), tensor(&[n], seed + 2, -1.0, 1.0)],
                |v| v[0].conv_max_pool(v[1], v[2]),
            ).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn tied_windows_send_the_gradient_to_the_first() {
        // x = [1, 1, 1] with one filter of height 1: every window ties, the first wins.
        let x = Tensor::<f64>::from_f64s(&[1.0, 1.0, 1.0], &[1, 3, 1]);
        let w = Tensor::from_f64s(&[2.0], &[1, 1, 1]);
        let b = Tensor::from_f64s(&[0.0], &[1]);
        let tape = crate::Tape::new();
        let (xv, wv, bv) = (tape.leaf(x), tape.leaf(w), tape.leaf(b));
        let grads = xv.conv_max_pool(wv, bv).sum_all().backward();
        assert_eq!(grads.get(xv).unwrap().to_f64s(), vec![2.0, 0.0, 0.0]);
        assert_eq!(grads.get(wv).unwrap().to_f64s(), vec![1.0]);
    }
}
