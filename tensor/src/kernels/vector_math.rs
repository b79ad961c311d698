//! `exp`, `1 + erf` and the kernels built on them, written once over [`Lanes`] and compiled
//! for AVX2 (`super::avx2`) and AVX-512 (`super::avx512`).
//!
//! `exp` is the Cephes polynomial (relative error about 1 ulp on [-87, 88]); `1 + erf` is
//! FreeBSD's `erff` vectorised (about 1 ulp, and exact in relative terms in the negative
//! tail). Accuracy matters here: a cheaper 5-ulp `erf` doubled the rank flips against the
//! official checkpoint's float32 evaluation.
//!
//! A slice's last `len % N` elements go through the scalar reference (libm's `exp` and
//! `erfc`, a little more accurate than the polynomials). Tried the other way, one partly
//! loaded vector through the polynomials: the softmax rows of attention (at most 50 keys)
//! then moved 16 users of the official checkpoint's test ranks by one place instead of 13
//! (near-ties, `tests/beauty_parity.rs`). So the AVX2 and AVX-512 builds give the same bits
//! on the first `len - len % 16` elements and on the last `len % 8`, and agree to about an
//! ulp on the elements between (the polynomial in one, libm in the other).
//!
//! Every function is `unsafe` and `#[inline(always)]`: it must be inlined into a function
//! compiled with the features `V` needs.
//! The slice loops are written out per kernel rather than through one `map` taking a
//! closure: a closure is a function of its own, compiled without the wrapper's features
//! unless it is inlined, and then every intrinsic in it would be a call.

#![allow(clippy::excessive_precision, clippy::missing_safety_doc)]

use super::lanes::Lanes;
use super::scalar;

/// `exp(x)` per lane (inputs clamped to the finite range of `f32`).
#[inline(always)]
pub unsafe fn exp<V: Lanes>(x: V) -> V {
    let x = x.max(V::splat(-87.336_54)).min(V::splat(88.376_26));
    // n = round(x / ln 2); r = x - n ln 2 in two parts for accuracy.
    let n = x.mul(V::splat(std::f32::consts::LOG2_E)).round();
    let r = n.neg_mul_add(V::splat(0.693_359_375), x);
    let r = n.neg_mul_add(V::splat(-2.121_944_4e-4), r);
    let p = poly(
        r,
        &[
            5.000_000_1e-1,
            1.666_666_5e-1,
            4.166_579_6e-2,
            8.333_451_9e-3,
            1.398_199_95e-3,
            1.987_569_15e-4,
        ],
    );
    let y = p.mul_add(r.mul(r), r).add(V::splat(1.0));
    y.scale_pow2(n)
}

/// `c[0] + c[1] x + c[2] x^2 + ...` by Horner's rule.
#[inline(always)]
unsafe fn poly<V: Lanes>(x: V, c: &[f32]) -> V {
    let mut p = V::splat(c[c.len() - 1]);
    for &k in c[..c.len() - 1].iter().rev() {
        p = p.mul_add(x, V::splat(k));
    }
    p
}

/// Horner's rule in `s` with per-lane coefficients: `far_c` where `far`, else `near`.
#[inline(always)]
unsafe fn horner_pick<V: Lanes>(s: V, far: V::Mask, near: &[f32], far_c: &[f32]) -> V {
    // No closures here: a closure would not inherit the caller's target features.
    let last = near.len() - 1;
    let mut p = V::select(far, V::splat(far_c[last]), V::splat(near[last]));
    for i in (0..last).rev() {
        p = p.mul_add(s, V::select(far, V::splat(far_c[i]), V::splat(near[i])));
    }
    p
}

/// `1 + erf(u)` per lane, to about 1 ulp: FreeBSD's `erff`, computing `erfc(|u|)` and
/// returning `2 - erfc(|u|)` or `erfc(|u|)` by sign, so the negative tail that GELU lives
/// on has no cancellation. Branches no lane needs are skipped.
#[inline(always)]
pub unsafe fn one_plus_erf<V: Lanes>(u: V) -> V {
    let one = V::splat(1.0);
    let a = u.abs().min(V::splat(9.0));
    let in_a = a.lt(V::splat(0.84375));
    let in_c = a.ge(V::splat(1.25));
    let mut c = V::splat(0.0);
    // |u| < 0.84375: erf = a + a r(a^2)/s(a^2); erfc = 1 - erf.
    if V::any(in_a) {
        let z = a.mul(a);
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
        let e = a.mul_add(r.div(q), a);
        c = V::select(in_a, one.sub(e), c);
    }
    // 0.84375 <= |u| < 1.25: erfc = (1 - erx) - P(s)/Q(s), s = a - 1.
    let in_b = V::neither(in_a, in_c);
    if V::any(in_b) {
        let s = a.sub(one);
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
        let e = V::splat(1.0 - 8.450_629e-1).sub(p.div(q));
        c = V::select(in_b, e, c);
    }
    // |u| >= 1.25: erfc = exp(-z^2 - 0.5625) exp((z - a)(z + a) + R/S) / a, z = a truncated.
    if V::any(in_c) {
        let s = one.div(a.mul(a));
        // Two coefficient sets, chosen per lane: below 1/0.35 and from there on.
        let far = a.ge(V::splat(1.0 / 0.35));
        let rc = horner_pick(
            s,
            far,
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
        let sc = horner_pick(
            s,
            far,
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
        let ratio = rc.div(sc);
        let z = a.and_bits(0xffff_e000);
        let e1 = exp(V::splat(0.0).sub(z).mul(z).sub(V::splat(0.5625)));
        let e2 = exp(z.sub(a).mul_add(z.add(a), ratio));
        c = V::select(in_c, e1.mul(e2).div(a), c);
    }
    // 1 + erf(u) = 2 - erfc(|u|) for u >= 0, erfc(|u|) for u < 0.
    V::select(u.lt(V::splat(0.0)), c, V::splat(2.0).sub(c))
}

/// `gelu(v)` per lane.
#[inline(always)]
unsafe fn gelu_lanes<V: Lanes>(v: V) -> V {
    let c = V::splat(std::f32::consts::FRAC_1_SQRT_2);
    V::splat(0.5).mul(v).mul(one_plus_erf(v.mul(c)))
}

/// `gelu'(v) = Phi(v) + v phi(v)` per lane.
#[inline(always)]
unsafe fn gelu_derivative_lanes<V: Lanes>(v: V) -> V {
    let c = V::splat(std::f32::consts::FRAC_1_SQRT_2);
    let cdf = V::splat(0.5).mul(one_plus_erf(v.mul(c)));
    let pdf = exp(V::splat(-0.5).mul(v.mul(v))).mul(V::splat(0.398_942_3));
    v.mul_add(pdf, cdf)
}

/// `y = gelu(x) = x/2 (1 + erf(x / sqrt 2))`.
#[inline(always)]
pub unsafe fn gelu<V: Lanes>(x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let body = n - n % V::N;
    for i in (0..body).step_by(V::N) {
        gelu_lanes(V::load(x.as_ptr().add(i))).store(y.as_mut_ptr().add(i));
    }
    scalar::gelu(&x[body..n], &mut y[body..n]);
}

/// `gx = gy * gelu'(x)`.
#[inline(always)]
pub unsafe fn gelu_backward<V: Lanes>(x: &[f32], gy: &[f32], gx: &mut [f32]) {
    let n = x.len().min(gy.len()).min(gx.len());
    let body = n - n % V::N;
    for i in (0..body).step_by(V::N) {
        let d = gelu_derivative_lanes(V::load(x.as_ptr().add(i)));
        V::load(gy.as_ptr().add(i))
            .mul(d)
            .store(gx.as_mut_ptr().add(i));
    }
    scalar::gelu_backward(&x[body..n], &gy[body..n], &mut gx[body..n]);
}

/// `y = exp(x)`.
#[inline(always)]
pub unsafe fn exp_slice<V: Lanes>(x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let body = n - n % V::N;
    for i in (0..body).step_by(V::N) {
        exp(V::load(x.as_ptr().add(i))).store(y.as_mut_ptr().add(i));
    }
    scalar::exp(&x[body..n], &mut y[body..n]);
}

/// The largest element (`-inf` for an empty row).
#[inline(always)]
pub unsafe fn row_max<V: Lanes>(x: &[f32]) -> f32 {
    let n = x.len();
    let body = n - n % V::N;
    let mut acc = V::splat(f32::NEG_INFINITY);
    for i in (0..body).step_by(V::N) {
        acc = acc.max(V::load(x.as_ptr().add(i)));
    }
    if body < n {
        acc = acc.max(V::load_first(
            x.as_ptr().add(body),
            n - body,
            f32::NEG_INFINITY,
        ));
    }
    acc.max_lane()
}

/// Writes `exp(x - m)` to `y` and returns its sum (accumulated per lane, then across the
/// lanes, then the tail: the order depends on `V::N`).
#[inline(always)]
pub unsafe fn exp_shifted_sum<V: Lanes>(x: &[f32], m: f32, y: &mut [f32]) -> f32 {
    let n = x.len().min(y.len());
    let body = n - n % V::N;
    let mv = V::splat(m);
    let mut acc = V::splat(0.0);
    for i in (0..body).step_by(V::N) {
        let e = exp(V::load(x.as_ptr().add(i)).sub(mv));
        e.store(y.as_mut_ptr().add(i));
        acc = acc.add(e);
    }
    let mut s = acc.sum();
    for i in body..n {
        y[i] = (x[i] - m).exp();
        s += y[i];
    }
    s
}
