//! Portable reference kernels, generic over the element type.
//!
//! These are the definitions: the AVX2 kernels are tested against them, and `f64` always
//! runs them.

use super::AdamParams;
use crate::Element;

/// `gelu(x) = x/2 * (1 + erf(x / sqrt 2))`, with `1 + erf(u)` computed as `erfc(-u)` so
/// the negative tail keeps its relative accuracy.
pub fn gelu<E: Element>(x: &[E], y: &mut [E]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = crate::unary_op::gelu(xi);
    }
}

/// `gx = gy * (Phi(x) + x phi(x))`, the derivative of the erf GELU.
pub fn gelu_backward<E: Element>(x: &[E], gy: &[E], gx: &mut [E]) {
    for ((g, &xi), &gyi) in gx.iter_mut().zip(x).zip(gy) {
        *g = gyi * crate::unary_op::gelu_derivative(xi);
    }
}

/// `y = exp(x)`.
pub fn exp<E: Element>(x: &[E], y: &mut [E]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = xi.exp();
    }
}

/// The largest element (`-inf` for an empty row).
pub fn row_max<E: Element>(x: &[E]) -> E {
    x.iter().copied().fold(E::neg_infinity(), E::max)
}

/// Writes `exp(x - m)` to `y` and returns its sum.
pub fn exp_shifted_sum<E: Element>(x: &[E], m: E, y: &mut [E]) -> E {
    let mut s = E::zero();
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = (xi - m).exp();
        s += *yi;
    }
    s
}

/// `y = exp(x - max x) / sum exp(x - max x)`.
pub fn softmax_row<E: Element>(x: &[E], y: &mut [E]) {
    let m = row_max(x);
    let mut s = E::zero();
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = (xi - m).exp();
        s += *yi;
    }
    let inv = E::one() / s;
    y.iter_mut().for_each(|v| *v *= inv);
}

/// `y = x - max x - log sum exp(x - max x)`.
pub fn log_softmax_row<E: Element>(x: &[E], y: &mut [E]) {
    let m = row_max(x);
    let s: E = x.iter().map(|&v| (v - m).exp()).sum();
    // (x - m) - ln s, not x - (m + ln s): m + ln s would round at the scale of m.
    let ls = s.ln();
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = (xi - m) - ls;
    }
}

/// Layer norm of one row with the biased variance (as PyTorch); returns `(mean, rstd)`.
pub fn layer_norm_row<E: Element>(x: &[E], gamma: &[E], beta: &[E], eps: E, y: &mut [E]) -> (E, E) {
    let n = E::from_f64(x.len() as f64);
    let mean = x.iter().copied().sum::<E>() / n;
    let var = x.iter().map(|&v| (v - mean) * (v - mean)).sum::<E>() / n;
    let rstd = E::one() / (var + eps).sqrt();
    for i in 0..x.len() {
        y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
    }
    (mean, rstd)
}

/// One step of `torch.optim.Adam` (L2 weight decay added to the gradient, bias-corrected).
pub fn adam<E: Element>(p: &mut [E], g: &[E], m: &mut [E], v: &mut [E], h: &AdamParams) {
    let b1 = E::from_f64(h.beta1);
    let b2 = E::from_f64(h.beta2);
    // 1 - beta in f64 first (in f32, 1 - 0.999 is off by 5e-5 relative).
    let b1c = E::from_f64(1.0 - h.beta1);
    let b2c = E::from_f64(1.0 - h.beta2);
    let wd = E::from_f64(h.weight_decay);
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step as i32);
    let step_size = E::from_f64(h.lr / bc1);
    let inv_sqrt_bc2 = E::from_f64(1.0 / bc2.sqrt());
    let eps = E::from_f64(h.eps);
    for i in 0..p.len() {
        let gi = g[i] + wd * p[i];
        m[i] = b1 * m[i] + b1c * gi;
        v[i] = b2 * v[i] + b2c * gi * gi;
        let denom = v[i].sqrt() * inv_sqrt_bc2 + eps;
        p[i] -= step_size * m[i] / denom;
    }
}
