//! Layer norm over the last axis with affine parameters.
//!
//! Forward: `x_hat = (x - mean) * rstd`, `rstd = 1/sqrt(var + eps)` (biased variance),
//! `y = x_hat * gamma + beta`.
//! Backward, with `h = g * gamma` and means over the last axis:
//! `dx = rstd * (h - mean(h) - x_hat * mean(h * x_hat))`,
//! `dgamma = sum over rows of g * x_hat`, `dbeta = sum over rows of g`.
//! PyTorch: `nn.LayerNorm(n, eps)`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct LayerNormBackward<E: Element> {
    x: NodeId,
    gamma: NodeId,
    beta: NodeId,
    x_val: Tensor<E>,
    gamma_val: Tensor<E>,
    mean: Tensor<E>,
    rstd: Tensor<E>,
}

impl<E: Element> Backward<E> for LayerNormBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        // One fused pass per row (the formulas above) instead of a dozen broadcast ops.
        let (dx, dgamma, dbeta) =
            self.x_val
                .layer_norm_backward(&self.gamma_val, &self.mean, &self.rstd, g);
        grads.add(self.gamma, dgamma);
        grads.add(self.beta, dbeta);
        grads.add(self.x, dx);
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// Layer norm over the last axis, then `* gamma + beta` (both `[n]`).
    pub fn layer_norm(self, gamma: Var<'t, E>, beta: Var<'t, E>, eps: f64) -> Var<'t, E> {
        let (x_val, gamma_val) = (self.value(), gamma.value());
        let (y, mean, rstd) = x_val.layer_norm(&gamma_val, &beta.value(), E::from_f64(eps));
        self.tape.record("layer_norm", y, &[self, gamma, beta], || {
            Box::new(LayerNormBackward {
                x: self.node(),
                gamma: gamma.node(),
                beta: beta.node(),
                x_val,
                gamma_val,
                mean,
                rstd,
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
        fn grad_layer_norm(lead in shape(2), n in 2usize..7, seed in 0u64..1000) {
            let mut s = lead.clone();
            s.push(n);
            let x = tensor(&s, seed, -2.0, 2.0);
            let gamma = tensor(&[n], seed + 1, 0.5, 1.5);
            let beta = tensor(&[n], seed + 2, -0.5, 0.5);
            check_gradients(&[x, gamma, beta], |v| v[0].layer_norm(v[1], v[2], 1e-5)).map_err(TestCaseError::fail)?;
        }
    }
}
