//! AVX2+FMA versions of the hot `f32` kernels (8 lanes), with scalar tails.
//!
//! `exp` is the Cephes polynomial (relative error about 1 ulp on [-87, 88]); `erf` is the
//! rational approximation used by Eigen and XLA (a few ulp on [-4, 4], exact ±1 beyond).
//! Every function requires a CPU with AVX2 and FMA: callers check with
//! [`super::simd_enabled`].

#![allow(clippy::excessive_precision, clippy::missing_safety_doc)]

use super::{scalar, AdamParams};
use std::arch::x86_64::*;

const LANES: usize = 8;

/// `exp(x)` for 8 lanes (inputs clamped to the finite range of `f32`).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn exp256(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(-87.336_54)),
        _mm256_set1_ps(88.376_26),
    );
    // n = round(x / ln 2); r = x - n ln 2 in two parts for accuracy.
    let n = _mm256_round_ps(
        _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
    );
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_375), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_15e-4);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.398_199_95e-3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.333_451_9e-3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_579_6e-2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666_666_5e-1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.000_000_1e-1));
    let r2 = _mm256_mul_ps(r, r);
    let y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
    // Scale by 2^n through the exponent bits. n is in [-126, 128]: split to stay finite.
    let ni = _mm256_cvtps_epi32(n);
    let half = _mm256_srai_epi32(ni, 1);
    let rest = _mm256_sub_epi32(ni, half);
    let bias = _mm256_set1_epi32(127);
    let s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    let s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, bias), 23));
    _mm256_mul_ps(_mm256_mul_ps(y, s1), s2)
}

/// `erf(x)` for 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn erf256(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0)), _mm256_set1_ps(4.0));
    let x2 = _mm256_mul_ps(x, x);
    let mut p = _mm256_set1_ps(-2.726_142_3e-10);
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(2.770_681_4e-08));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.101_024e-06));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-5.692_506_4e-05));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-7.349_906_3e-04));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.954_600e-03));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-1.609_603_3e-02));
    p = _mm256_mul_ps(x, p);
    let mut q = _mm256_set1_ps(-1.456_607_2e-05);
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-2.133_740_6e-04));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.682_827e-03));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-7.373_329_2e-03));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.426_473_9e-02));
    // Beyond |x| = 3.9, erf(x) rounds to ±1 in f32; the rational form is 1e-7 off there,
    // which GELU's 1 + erf(x) would turn into a visible error for very negative x.
    let sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0));
    let unit = _mm256_or_ps(sign, _mm256_set1_ps(1.0));
    let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
    let big = _mm256_cmp_ps(abs, _mm256_set1_ps(3.9), _CMP_GT_OQ);
    _mm256_blendv_ps(_mm256_div_ps(p, q), unit, big)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hmax(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let s = _mm_max_ps(lo, hi);
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// `y = gelu(x)`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gelu(x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let body = n - n % LANES;
    let half = _mm256_set1_ps(0.5);
    let one = _mm256_set1_ps(1.0);
    let c = _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2);
    for i in (0..body).step_by(LANES) {
        let v = _mm256_loadu_ps(x.as_ptr().add(i));
        let e = erf256(_mm256_mul_ps(v, c));
        let r = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e));
        _mm256_storeu_ps(y.as_mut_ptr().add(i), r);
    }
    scalar::gelu(&x[body..n], &mut y[body..n]);
}

/// `gx = gy * gelu'(x)`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gelu_backward(x: &[f32], gy: &[f32], gx: &mut [f32]) {
    let n = x.len().min(gy.len()).min(gx.len());
    let body = n - n % LANES;
    let half = _mm256_set1_ps(0.5);
    let neg_half = _mm256_set1_ps(-0.5);
    let one = _mm256_set1_ps(1.0);
    let c = _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2);
    let k = _mm256_set1_ps(0.398_942_3);
    for i in (0..body).step_by(LANES) {
        let v = _mm256_loadu_ps(x.as_ptr().add(i));
        let g = _mm256_loadu_ps(gy.as_ptr().add(i));
        let cdf = _mm256_mul_ps(half, _mm256_add_ps(one, erf256(_mm256_mul_ps(v, c))));
        let pdf = _mm256_mul_ps(exp256(_mm256_mul_ps(neg_half, _mm256_mul_ps(v, v))), k);
        let d = _mm256_fmadd_ps(v, pdf, cdf);
        _mm256_storeu_ps(gx.as_mut_ptr().add(i), _mm256_mul_ps(g, d));
    }
    scalar::gelu_backward(&x[body..n], &gy[body..n], &mut gx[body..n]);
}

/// `y = exp(x)`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn exp(x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let body = n - n % LANES;
    for i in (0..body).step_by(LANES) {
        let v = _mm256_loadu_ps(x.as_ptr().add(i));
        _mm256_storeu_ps(y.as_mut_ptr().add(i), exp256(v));
    }
    scalar::exp(&x[body..n], &mut y[body..n]);
}

#[target_feature(enable = "avx2,fma")]
unsafe fn row_max(x: &[f32]) -> f32 {
    let n = x.len();
    let body = n - n % LANES;
    let mut m = f32::NEG_INFINITY;
    if body > 0 {
        let mut acc = _mm256_set1_ps(f32::NEG_INFINITY);
        for i in (0..body).step_by(LANES) {
            acc = _mm256_max_ps(acc, _mm256_loadu_ps(x.as_ptr().add(i)));
        }
        m = hmax(acc);
    }
    x[body..].iter().fold(m, |a, &b| a.max(b))
}

/// Writes `exp(x - m)` to `y` and returns its sum.
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_shifted_sum(x: &[f32], m: f32, y: &mut [f32]) -> f32 {
    let n = x.len();
    let body = n - n % LANES;
    let mv = _mm256_set1_ps(m);
    let mut acc = _mm256_setzero_ps();
    for i in (0..body).step_by(LANES) {
        let e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x.as_ptr().add(i)), mv));
        _mm256_storeu_ps(y.as_mut_ptr().add(i), e);
        acc = _mm256_add_ps(acc, e);
    }
    let mut s = hsum(acc);
    for i in body..n {
        y[i] = (x[i] - m).exp();
        s += y[i];
    }
    s
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
    let mut s = hsum(acc);
    s += x[body..].iter().sum::<f32>();
    let mean = s / n as f32;
    let mv = _mm256_set1_ps(mean);
    let mut acc = _mm256_setzero_ps();
    for i in (0..body).step_by(LANES) {
        let d = _mm256_sub_ps(_mm256_loadu_ps(x.as_ptr().add(i)), mv);
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    let mut ss = hsum(acc);
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
