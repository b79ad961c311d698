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
    use crate::agreement::agree;
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::{shape, tensor};
    use crate::Var;
    use proptest::prelude::*;

    /// Layer norm written with general ops, the definition the fused row kernels (forward
    /// and backward) must equal: `x_hat = (x - mean) / sqrt(var + eps)` with the biased
    /// variance, then `x_hat * gamma + beta`; autograd differentiates it.
    fn layer_norm_by_hand<'t>(
        x: Var<'t, f64>,
        gamma: Var<'t, f64>,
        beta: Var<'t, f64>,
        eps: f64,
    ) -> Var<'t, f64> {
        let mut keep = x.shape();
        let last = keep.len() - 1;
        keep[last] = 1;
        let centred = x.sub(x.mean_axis(last).reshape(&keep));
        let var = centred.mul(centred).mean_axis(last).reshape(&keep);
        centred.div(var.add_scalar(eps).sqrt()).mul(gamma).add(beta)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn equals_its_definition_in_general_ops(lead in shape(2), n in 1usize..9, seed in 0u64..1000) {
            let mut s = lead.clone();
            s.push(n);
            let inputs = [
                tensor(&s, seed, -2.0, 2.0),
                tensor(&[n], seed + 1, 0.5, 1.5),
                tensor(&[n], seed + 2, -0.5, 0.5),
            ];
            agree(
                &inputs,
                |v| v[0].layer_norm(v[1], v[2], 1e-5),
                |v| layer_norm_by_hand(v[0], v[1], v[2], 1e-5),
                1e-12,
            ).map_err(TestCaseError::fail)?;
        }

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
