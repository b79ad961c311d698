//! AVX2+FMA versions of the hot `f32` kernels (8 lanes), with scalar tails.
//!
//! `exp` is the Cephes polynomial (relative error about 1 ulp on [-87, 88]); `1 + erf` is
//! FreeBSD's `erff` vectorised (about 1 ulp, and exact in relative terms in the negative
//! tail). Accuracy matters here: a cheaper 5-ulp `erf` doubled the rank flips against the
//! official checkpoint's float32 evaluation.
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

/// `1 + erf(u)` for 8 lanes, to about 1 ulp: FreeBSD's `erff` (as in libm) vectorised with
/// blends, computing `erfc(|u|)` and returning `2 - erfc(|u|)` or `erfc(|u|)` by sign, so the
/// negative tail that GELU lives on has no cancellation. Branches no lane needs are skipped.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn one_plus_erf256(u: __m256) -> __m256 {
    let set = _mm256_set1_ps;
    let one = set(1.0);
    let abs_mask = set(-0.0);
    let a = _mm256_min_ps(_mm256_andnot_ps(abs_mask, u), set(9.0));
    let poly = |x: __m256, c: &[f32]| {
        let mut p = set(c[c.len() - 1]);
        for &k in c[..c.len() - 1].iter().rev() {
            p = _mm256_fmadd_ps(p, x, set(k));
        }
        p
    };
    let in_a = _mm256_cmp_ps(a, set(0.84375), _CMP_LT_OQ);
    let in_c = _mm256_cmp_ps(a, set(1.25), _CMP_GE_OQ);
    let mut c = set(0.0);
    // |u| < 0.84375: erf = a + a r(a^2)/s(a^2); erfc = 1 - erf.
    if _mm256_movemask_ps(in_a) != 0 {
        let z = _mm256_mul_ps(a, a);
        let r = poly(
            z,
            &[
                1.283_791_7e-1,
                -3.250_421e-1,
                -2.848_175e-2,
                -5.770_270_2e-3,
                -2.376_301_7e-5,
            ],
        );
        let q = poly(
            z,
            &[
                1.0,
                3.979_172e-1,
                6.502_225e-2,
                5.081_306e-3,
                1.324_947_4e-4,
                -3.960_228e-6,
            ],
        );
        let e = _mm256_fmadd_ps(a, _mm256_div_ps(r, q), a);
        c = _mm256_blendv_ps(c, _mm256_sub_ps(one, e), in_a);
    }
    // 0.84375 <= |u| < 1.25: erfc = (1 - erx) - P(s)/Q(s), s = a - 1.
    let in_b = _mm256_andnot_ps(
        _mm256_or_ps(in_a, in_c),
        _mm256_castsi256_ps(_mm256_set1_epi32(-1)),
    );
    if _mm256_movemask_ps(in_b) != 0 {
        let s = _mm256_sub_ps(a, one);
        let p = poly(
            s,
            &[
                -2.362_118_6e-3,
                4.148_561e-1,
                -3.722_078_8e-1,
                3.183_466_2e-1,
                -1.108_946_9e-1,
                3.547_830_5e-2,
                -2.166_375_5e-3,
            ],
        );
        let q = poly(
            s,
            &[
                1.0,
                1.064_208_8e-1,
                5.403_979_4e-1,
                7.182_865_6e-2,
                1.261_712_2e-1,
                1.363_708_4e-2,
                1.198_45e-2,
            ],
        );
        let e = _mm256_sub_ps(set(1.0 - 8.450_629e-1), _mm256_div_ps(p, q));
        c = _mm256_blendv_ps(c, e, in_b);
    }
    // |u| >= 1.25: erfc = exp(-z^2 - 0.5625) exp((z - a)(z + a) + R/S) / a, z = a truncated.
    if _mm256_movemask_ps(in_c) != 0 {
        let s = _mm256_div_ps(one, _mm256_mul_ps(a, a));
        let far = _mm256_cmp_ps(a, set(1.0 / 0.35), _CMP_GE_OQ);
        let pick = |near: &[f32], far_c: &[f32]| -> Vec<__m256> {
            near.iter()
                .zip(far_c)
                .map(|(&n, &f)| _mm256_blendv_ps(set(n), set(f), far))
                .collect()
        };
        let rc = pick(
            &[
                -9.864_944e-3,
                -6.938_586e-1,
                -1.055_862_6e1,
                -6.237_533e1,
                -1.623_966_7e2,
                -1.846_050_9e2,
                -8.128_744e1,
                -9.814_329,
            ],
            &[
                -9.864_943e-3,
                -7.992_833e-1,
                -1.775_795_6e1,
                -1.606_363_8e2,
                -6.375_665e2,
                -1.025_095_1e3,
                -4.835_192e2,
                0.0,
            ],
        );
        let sc = pick(
            &[
                1.0,
                1.965_127_2e1,
                1.376_577_6e2,
                4.345_658_9e2,
                6.453_873e2,
                4.290_081_5e2,
                1.086_35e2,
                6.570_25,
                -6.042_441_4e-2,
            ],
            &[
                1.0,
                3.033_806e1,
                3.257_925e2,
                1.536_729_6e3,
                3.199_858_2e3,
                2.553_050_3e3,
                4.745_285_3e2,
                -2.244_095_2e1,
                0.0,
            ],
        );
        let horner = |cs: &[__m256]| {
            let mut p = cs[cs.len() - 1];
            for &k in cs[..cs.len() - 1].iter().rev() {
                p = _mm256_fmadd_ps(p, s, k);
            }
            p
        };
        let ratio = _mm256_div_ps(horner(&rc), horner(&sc));
        let z = _mm256_and_ps(
            a,
            _mm256_castsi256_ps(_mm256_set1_epi32(0xffff_e000u32 as i32)),
        );
        let e1 = exp256(_mm256_sub_ps(
            _mm256_mul_ps(_mm256_sub_ps(set(0.0), z), z),
            set(0.5625),
        ));
        let e2 = exp256(_mm256_fmadd_ps(
            _mm256_sub_ps(z, a),
            _mm256_add_ps(z, a),
            ratio,
        ));
        let r = _mm256_div_ps(_mm256_mul_ps(e1, e2), a);
        c = _mm256_blendv_ps(c, r, in_c);
    }
    // 1 + erf(u) = 2 - erfc(|u|) for u >= 0, erfc(|u|) for u < 0.
    let neg = _mm256_cmp_ps(u, set(0.0), _CMP_LT_OQ);
    _mm256_blendv_ps(_mm256_sub_ps(set(2.0), c), c, neg)
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
    let c = _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2);
    for i in (0..body).step_by(LANES) {
        let v = _mm256_loadu_ps(x.as_ptr().add(i));
        let r = _mm256_mul_ps(_mm256_mul_ps(half, v), one_plus_erf256(_mm256_mul_ps(v, c)));
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
    let c = _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2);
    let k = _mm256_set1_ps(0.398_942_3);
    for i in (0..body).step_by(LANES) {
        let v = _mm256_loadu_ps(x.as_ptr().add(i));
        let g = _mm256_loadu_ps(gy.as_ptr().add(i));
        let cdf = _mm256_mul_ps(half, one_plus_erf256(_mm256_mul_ps(v, c)));
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

/// The largest element (`-inf` for an empty row).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn row_max(x: &[f32]) -> f32 {
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
pub unsafe fn exp_shifted_sum(x: &[f32], m: f32, y: &mut [f32]) -> f32 {
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
