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
        let shape = self.x_val.shape();
        let n = shape[shape.len() - 1];
        let mut stat_shape = shape.to_vec();
        *stat_shape.last_mut().unwrap() = 1;
        let mean = self.mean.reshape(&stat_shape);
        let rstd = self.rstd.reshape(&stat_shape);
        let x_hat = self.x_val.sub(&mean).mul(&rstd);
        let rows = self.x_val.numel() / n;
        if grads.wants(self.gamma) {
            grads.add(self.gamma, g.mul(&x_hat).reshape(&[rows, n]).sum_axis(0));
        }
        if grads.wants(self.beta) {
            grads.add(self.beta, g.reshape(&[rows, n]).sum_axis(0));
        }
        if grads.wants(self.x) {
            let last = shape.len() - 1;
            let h = g.mul(&self.gamma_val);
            let mh = h.mean_axis(last).reshape(&stat_shape);
            let mhx = h.mul(&x_hat).mean_axis(last).reshape(&stat_shape);
            grads.add(self.x, h.sub(&mh).sub(&x_hat.mul(&mhx)).mul(&rstd));
        }
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// Layer norm over the last axis, then `* gamma + beta` (both `[n]`).
    pub fn layer_norm(self, gamma: Var<'t, E>, beta: Var<'t, E>, eps: f64) -> Var<'t, E> {
        let (x_val, gamma_val) = (self.value(), gamma.value());
        let (y, mean, rstd) = x_val.layer_norm(&gamma_val, &beta.value(), E::from_f64(eps));
        self.tape.record(y, &[self, gamma, beta], || {
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
