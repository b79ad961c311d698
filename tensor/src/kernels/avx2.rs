//! AVX2+FMA versions of the hot `f32` kernels (8 lanes). The `exp` and GELU family are
//! [`super::vector_math`] compiled for [`F32x8`]; the row kernels here have scalar tails.
//! Every function requires a CPU with AVX2 and FMA: callers check with
//! [`super::simd_enabled`].

#![allow(clippy::excessive_precision, clippy::missing_safety_doc)]

use super::lanes::{F32x8, Lanes};
use super::{scalar, vector_math, AdamParams};
use std::arch::x86_64::*;

const LANES: usize = 8;

/// `y = gelu(x)`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gelu(x: &[f32], y: &mut [f32]) {
    vector_math::gelu::<F32x8>(x, y)
}

/// `gx = gy * gelu'(x)`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gelu_backward(x: &[f32], gy: &[f32], gx: &mut [f32]) {
    vector_math::gelu_backward::<F32x8>(x, gy, gx)
}

/// `y = exp(x)`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn exp(x: &[f32], y: &mut [f32]) {
    vector_math::exp_slice::<F32x8>(x, y)
}

/// The largest element (`-inf` for an empty row).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn row_max(x: &[f32]) -> f32 {
    vector_math::row_max::<F32x8>(x)
}

/// Writes `exp(x - m)` to `y` and returns its sum.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn exp_shifted_sum(x: &[f32], m: f32, y: &mut [f32]) -> f32 {
    vector_math::exp_shifted_sum::<F32x8>(x, m, y)
}

/// Softmax of one row.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn softmax_row(x: &[f32], y: &mut [f32]) {
    let m = row_max(x);
    let s = exp_shifted_sum(x, m, y);
    let inv = 1.0 / s;
    let n = x.len();
    let body = n - n % LANES;
    let iv = _mm256_set1_ps(inv);
    for i in (0..body).step_by(LANES) {
        let p = y.as_mut_ptr().add(i);
        _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_loadu_ps(p), iv));
    }
    y[body..n].iter_mut().for_each(|v| *v *= inv);
}

/// Log-softmax of one row (uses `y` as scratch for the exponentials).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn log_softmax_row(x: &[f32], y: &mut [f32]) {
    let m = row_max(x);
    let s = exp_shifted_sum(x, m, y);
    // (x - m) - ln s, not x - (m + ln s): m + ln s would round at the scale of m.
    let ls = s.ln();
    let n = x.len();
    let body = n - n % LANES;
    let (mv, lv) = (_mm256_set1_ps(m), _mm256_set1_ps(ls));
    for i in (0..body).step_by(LANES) {
        let v = _mm256_loadu_ps(x.as_ptr().add(i));
        _mm256_storeu_ps(
            y.as_mut_ptr().add(i),
            _mm256_sub_ps(_mm256_sub_ps(v, mv), lv),
        );
    }
    for i in body..n {
        y[i] = (x[i] - m) - ls;
    }
}

/// Layer norm of one row (two passes for the variance, as the scalar reference).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn layer_norm_row(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    y: &mut [f32],
) -> (f32, f32) {
    let n = x.len();
    let body = n - n % LANES;
    let mut acc = _mm256_setzero_ps();
    for i in (0..body).step_by(LANES) {
        acc = _mm256_add_ps(acc, _mm256_loadu_ps(x.as_ptr().add(i)));
    }
    let mut s = F32x8(acc).sum();
    s += x[body..].iter().sum::<f32>();
    let mean = s / n as f32;
    let mv = _mm256_set1_ps(mean);
    let mut acc = _mm256_setzero_ps();
    for i in (0..body).step_by(LANES) {
        let d = _mm256_sub_ps(_mm256_loadu_ps(x.as_ptr().add(i)), mv);
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    let mut ss = F32x8(acc).sum();
    ss += x[body..]
        .iter()
        .map(|&v| (v - mean) * (v - mean))
        .sum::<f32>();
    let rstd = 1.0 / (ss / n as f32 + eps).sqrt();
    let rv = _mm256_set1_ps(rstd);
    for i in (0..body).step_by(LANES) {
        let d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x.as_ptr().add(i)), mv), rv);
        let g = _mm256_loadu_ps(gamma.as_ptr().add(i));
        let b = _mm256_loadu_ps(beta.as_ptr().add(i));
        _mm256_storeu_ps(y.as_mut_ptr().add(i), _mm256_fmadd_ps(d, g, b));
    }
    for i in body..n {
        y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
    }
    (mean, rstd)
}

/// One fused Adam step.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn adam(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: &AdamParams) {
    let n = p.len();
    let body = n - n % LANES;
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step as i32);
    let b1 = _mm256_set1_ps(h.beta1 as f32);
    // 1 - beta in f64 first: 1 - 0.999f32 is 1.00002e-3, a 2e-5 error on every update.
    let b1c = _mm256_set1_ps((1.0 - h.beta1) as f32);
    let b2 = _mm256_set1_ps(h.beta2 as f32);
    let b2c = _mm256_set1_ps((1.0 - h.beta2) as f32);
    let wd = _mm256_set1_ps(h.weight_decay as f32);
    let step = _mm256_set1_ps((h.lr / bc1) as f32);
    let isb = _mm256_set1_ps((1.0 / bc2.sqrt()) as f32);
    let eps = _mm256_set1_ps(h.eps as f32);
    for i in (0..body).step_by(LANES) {
        let pp = p.as_mut_ptr().add(i);
        let mp = m.as_mut_ptr().add(i);
        let vp = v.as_mut_ptr().add(i);
        let pv = _mm256_loadu_ps(pp);
        let gv = _mm256_fmadd_ps(wd, pv, _mm256_loadu_ps(g.as_ptr().add(i)));
        let mv = _mm256_fmadd_ps(b1, _mm256_loadu_ps(mp), _mm256_mul_ps(b1c, gv));
        let vv = _mm256_fmadd_ps(
            b2,
            _mm256_loadu_ps(vp),
            _mm256_mul_ps(b2c, _mm256_mul_ps(gv, gv)),
        );
        let denom = _mm256_fmadd_ps(_mm256_sqrt_ps(vv), isb, eps);
        let upd = _mm256_div_ps(_mm256_mul_ps(step, mv), denom);
        _mm256_storeu_ps(mp, mv);
        _mm256_storeu_ps(vp, vv);
        _mm256_storeu_ps(pp, _mm256_sub_ps(pv, upd));
    }
    scalar::adam(
        &mut p[body..],
        &g[body..],
        &mut m[body..],
        &mut v[body..],
        h,
    );
}
