//! Hot elementwise kernels on contiguous slices, with explicit SIMD paths for `f32`.
//!
//! Each kernel has a portable scalar reference in [`scalar`] (generic over the element
//! type, used for `f64` and on processors without AVX2/FMA) and, on x86_64, an AVX2+FMA
//! version in `avx2`; the `exp` and GELU kernels are written once over a vector type
//! ([`lanes::Lanes`]) and also built for AVX-512 in `avx512`. The `*_f32` functions here
//! pick the path once per call from a cached run-time CPU check. [`force_scalar`] switches every dispatch to the scalar path, which
//! is how tests and benchmarks compare the two.
//!
//! Tolerances (checked in the tests below against the scalar reference computed in `f64`):
//! `exp` 2e-7 relative; softmax 1e-6 relative; `gelu` 2e-7 (1 + x^2) relative, which is
//! the conditioning of `erfc(-x/sqrt 2)` to the rounding of its argument, plus 1e-10
//! absolute; its derivative the same plus 1e-7 absolute (it crosses zero near x = -0.75,
//! where `cdf + x pdf` cancels); layer norm 1e-5; Adam 1e-6 relative.

pub mod scalar;

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "x86_64")]
pub mod lanes;
#[cfg(target_arch = "x86_64")]
pub mod vector_math;

use std::sync::atomic::{AtomicU8, Ordering};

/// Hyper-parameters of one Adam step, with the bias corrections of this step folded in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamParams {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment (PyTorch default 0.9).
    pub beta1: f64,
    /// Decay of the second moment (PyTorch default 0.999).
    pub beta2: f64,
    /// Added to the denominator (PyTorch default 1e-8).
    pub eps: f64,
    /// L2 penalty added to the gradient (`g + wd * p`, as `torch.optim.Adam`).
    pub weight_decay: f64,
    /// The step number, starting at 1 (for the bias corrections).
    pub step: u64,
}

const UNKNOWN: u8 = 0;
const SCALAR: u8 = 1;
const AVX2: u8 = 2;
static PATH: AtomicU8 = AtomicU8::new(UNKNOWN);
static FORCE_SCALAR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True when the AVX2+FMA kernels will be used for `f32`.
pub fn simd_enabled() -> bool {
    if FORCE_SCALAR.load(Ordering::Relaxed) {
        return false;
    }
    match PATH.load(Ordering::Relaxed) {
        AVX2 => true,
        SCALAR => false,
        _ => {
            let has = detect();
            PATH.store(if has { AVX2 } else { SCALAR }, Ordering::Relaxed);
            has
        }
    }
}

/// True when [`simd_enabled`] and the processor has AVX-512F: code compiled for it (the same
/// source, twice the vector width) may run.
pub fn avx512_enabled() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        simd_enabled() && *HAS.get_or_init(|| is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Makes every `*_f32` kernel use the portable scalar path (`true`) or the best one the
/// processor supports (`false`). Global: meant for benchmarks and tests.
pub fn force_scalar(on: bool) {
    FORCE_SCALAR.store(on, Ordering::Relaxed);
}

#[cfg(target_arch = "x86_64")]
fn detect() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}
#[cfg(not(target_arch = "x86_64"))]
fn detect() -> bool {
    false
}

macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)? => avx512, $simd:ident, $scalar:ident) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if avx512_enabled() {
                // SAFETY: avx512_enabled() checked that the CPU has AVX-512F, AVX2 and FMA.
                return unsafe { avx512::$simd($($arg),*) };
            }
            dispatch_avx2!($simd, $scalar, $($arg),*)
        }
    };
    ($(#[$doc:meta])* $name:ident ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)? => $simd:ident, $scalar:ident) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            dispatch_avx2!($simd, $scalar, $($arg),*)
        }
    };
}

macro_rules! dispatch_avx2 {
    ($simd:ident, $scalar:ident, $($arg:ident),*) => {
        {
            #[cfg(target_arch = "x86_64")]
            if simd_enabled() {
                // SAFETY: simd_enabled() checked that the CPU has AVX2 and FMA.
                return unsafe { avx2::$simd($($arg),*) };
            }
            scalar::$scalar($($arg),*)
        }
    };
}

dispatch!(
    /// `y = gelu(x)` (erf form), AVX-512 or AVX2 when available.
    gelu_f32(x: &[f32], y: &mut [f32]) => avx512, gelu, gelu);
dispatch!(
    /// `gx = gy * gelu'(x)`, AVX-512 or AVX2 when available.
    gelu_backward_f32(x: &[f32], gy: &[f32], gx: &mut [f32]) => avx512, gelu_backward, gelu_backward);
dispatch!(
    /// `y = exp(x)`, AVX-512 or AVX2 when available.
    exp_f32(x: &[f32], y: &mut [f32]) => avx512, exp, exp);
dispatch!(
    /// Softmax of one row, AVX2 when available.
    softmax_row_f32(x: &[f32], y: &mut [f32]) => softmax_row, softmax_row);
dispatch!(
    /// Log-softmax of one row, AVX2 when available.
    log_softmax_row_f32(x: &[f32], y: &mut [f32]) => log_softmax_row, log_softmax_row);
dispatch!(
    /// The largest element of a row (`-inf` when empty), AVX-512 or AVX2 when available.
    row_max_f32(x: &[f32]) -> f32 => avx512, row_max, row_max);
dispatch!(
    /// Writes `exp(x - m)` to `y` and returns its sum, AVX-512 or AVX2 when available.
    exp_shifted_sum_f32(x: &[f32], m: f32, y: &mut [f32]) -> f32 => avx512, exp_shifted_sum, exp_shifted_sum);
dispatch!(
    /// Layer norm of one row; returns `(mean, rstd)`. AVX2 when available.
    layer_norm_row_f32(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32]) -> (f32, f32)
        => layer_norm_row, layer_norm_row);
dispatch!(
    /// One fused Adam step, AVX2 when available.
    adam_f32(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: &AdamParams) => adam, adam);

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    //! The AVX2 kernels against the scalar reference evaluated in f64.
    use super::*;
    use proptest::prelude::*;

    fn have_avx2() -> bool {
        if !detect() {
            eprintln!("skipped: this CPU has no AVX2+FMA");
        }
        detect()
    }

    fn have_avx512() -> bool {
        if !avx512_enabled() {
            eprintln!("skipped: this CPU has no AVX-512F");
        }
        avx512_enabled()
    }

    fn close(a: f32, b: f64, rel: f64, abs: f64) -> bool {
        ((a as f64) - b).abs() <= abs + rel * b.abs()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn gelu_avx2_matches_reference(x in proptest::collection::vec(-12.0f32..12.0, 1..70)) {
            if !have_avx2() { return Ok(()); }
            let mut y = vec![0.0f32; x.len()];
            unsafe { avx2::gelu(&x, &mut y) };
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let mut yd = vec![0.0f64; x.len()];
            scalar::gelu(&xd, &mut yd);
            for i in 0..x.len() {
                prop_assert!(close(y[i], yd[i], 2e-7 * (1.0 + (x[i] * x[i]) as f64), 1e-10), "x={} avx2={} ref={}", x[i], y[i], yd[i]);
            }
        }

        #[test]
        fn gelu_backward_avx2_matches_reference(x in proptest::collection::vec(-12.0f32..12.0, 1..70)) {
            if !have_avx2() { return Ok(()); }
            let gy: Vec<f32> = x.iter().map(|v| 1.0 - 0.1 * v).collect();
            let mut gx = vec![0.0f32; x.len()];
            unsafe { avx2::gelu_backward(&x, &gy, &mut gx) };
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let gyd: Vec<f64> = gy.iter().map(|&v| v as f64).collect();
            let mut gxd = vec![0.0f64; x.len()];
            scalar::gelu_backward(&xd, &gyd, &mut gxd);
            for i in 0..x.len() {
                prop_assert!(close(gx[i], gxd[i], 2e-7 * (1.0 + (x[i] * x[i]) as f64), 1e-7), "x={} avx2={} ref={}", x[i], gx[i], gxd[i]);
            }
        }

        #[test]
        fn exp_avx2_matches_reference(x in proptest::collection::vec(-80.0f32..80.0, 1..70)) {
            if !have_avx2() { return Ok(()); }
            let mut y = vec![0.0f32; x.len()];
            unsafe { avx2::exp(&x, &mut y) };
            for i in 0..x.len() {
                let r = (x[i] as f64).exp();
                prop_assert!(close(y[i], r, 2e-7, 1e-37), "x={} avx2={} ref={}", x[i], y[i], r);
            }
        }

        #[test]
        fn softmax_avx2_matches_reference(x in proptest::collection::vec(-30.0f32..30.0, 1..90)) {
            if !have_avx2() { return Ok(()); }
            let mut y = vec![0.0f32; x.len()];
            let mut ly = vec![0.0f32; x.len()];
            unsafe { avx2::softmax_row(&x, &mut y) };
            unsafe { avx2::log_softmax_row(&x, &mut ly) };
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let mut yd = vec![0.0f64; x.len()];
            let mut lyd = vec![0.0f64; x.len()];
            scalar::softmax_row(&xd, &mut yd);
            scalar::log_softmax_row(&xd, &mut lyd);
            for i in 0..x.len() {
                prop_assert!(close(y[i], yd[i], 1e-6, 1e-12));
                prop_assert!(close(ly[i], lyd[i], 1e-6, 1e-5));
            }
        }

        #[test]
        fn row_max_and_exp_shifted_sum_avx2_match_reference(x in proptest::collection::vec(-30.0f32..30.0, 1..90), shift in -5.0f32..5.0) {
            if !have_avx2() { return Ok(()); }
            let m = unsafe { avx2::row_max(&x) };
            prop_assert_eq!(m, scalar::row_max(&x));
            let mut y = vec![0.0f32; x.len()];
            let s = unsafe { avx2::exp_shifted_sum(&x, m + shift, &mut y) };
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let mut yd = vec![0.0f64; x.len()];
            let sd = scalar::exp_shifted_sum(&xd, (m + shift) as f64, &mut yd);
            prop_assert!(close(s, sd, 4e-6, 0.0), "sum {} vs {}", s, sd);
            for i in 0..x.len() {
                prop_assert!(close(y[i], yd[i], 4e-6, 1e-37), "x={} avx2={} ref={}", x[i], y[i], yd[i]);
            }
        }

        #[test]
        fn layer_norm_avx2_matches_reference(x in proptest::collection::vec(-5.0f32..5.0, 2..80)) {
            if !have_avx2() { return Ok(()); }
            let n = x.len();
            let gamma: Vec<f32> = (0..n).map(|i| 1.0 + 0.01 * i as f32).collect();
            let beta: Vec<f32> = (0..n).map(|i| 0.1 - 0.003 * i as f32).collect();
            let mut y = vec![0.0f32; n];
            let (mean, rstd) = unsafe { avx2::layer_norm_row(&x, &gamma, &beta, 1e-12, &mut y) };
            let f = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
            let mut yd = vec![0.0f64; n];
            let (md, rd) = scalar::layer_norm_row(&f(&x), &f(&gamma), &f(&beta), 1e-12, &mut yd);
            prop_assert!(close(mean, md, 1e-5, 1e-6));
            prop_assert!(close(rstd, rd, 1e-5, 1e-6) || rd > 1e5);
            if rd < 1e4 {
                for i in 0..n {
                    prop_assert!(close(y[i], yd[i], 1e-5, 1e-5), "i={} {} {}", i, y[i], yd[i]);
                }
            }
        }

        #[test]
        fn avx512_gives_the_avx2_bits(x in proptest::collection::vec(-12.0f32..12.0, 0..100), m in -3.0f32..3.0) {
            if !have_avx512() { return Ok(()); }
            let n = x.len();
            let gy: Vec<f32> = x.iter().map(|v| 1.0 - 0.1 * v).collect();
            // Equal bits where both run the polynomial (the first n - n % 16) or both the
            // scalar tail (the last n % 8); about an ulp apart in between.
            let same = |a: &[f32], b: &[f32]| -> Result<(), TestCaseError> {
                for i in 0..n {
                    if i < n - n % 16 || i >= n - n % 8 {
                        prop_assert_eq!(a[i].to_bits(), b[i].to_bits(), "element {} of {}", i, n);
                    } else {
                        prop_assert!((a[i] - b[i]).abs() <= 4e-7 * (1.0 + x[i] * x[i]) * a[i].abs() + 1e-7, "element {} of {}: {} vs {}", i, n, a[i], b[i]);
                    }
                }
                Ok(())
            };
            let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
            unsafe { avx2::gelu(&x, &mut a); avx512::gelu(&x, &mut b) };
            same(&a, &b)?;
            unsafe { avx2::gelu_backward(&x, &gy, &mut a); avx512::gelu_backward(&x, &gy, &mut b) };
            same(&a, &b)?;
            unsafe { avx2::exp(&x, &mut a); avx512::exp(&x, &mut b) };
            same(&a, &b)?;
            prop_assert_eq!(unsafe { avx2::row_max(&x) }.to_bits(), unsafe { avx512::row_max(&x) }.to_bits());
            let sa = unsafe { avx2::exp_shifted_sum(&x, m, &mut a) };
            let sb = unsafe { avx512::exp_shifted_sum(&x, m, &mut b) };
            same(&a, &b)?;
            // The sums add the same terms in another order.
            prop_assert!((sa - sb).abs() <= 1e-6 * sa, "{} vs {}", sa, sb);
        }

        #[test]
        fn adam_avx2_matches_reference(g in proptest::collection::vec(-1.0f32..1.0, 1..50), step in 1u64..20) {
            if !have_avx2() { return Ok(()); }
            let n = g.len();
            let h = AdamParams { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, step };
            let p0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let m0: Vec<f32> = (0..n).map(|i| 0.01 * (i as f32).cos()).collect();
            let v0: Vec<f32> = (0..n).map(|i| 0.001 * (1.0 + (i as f32).sin())).collect();
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            unsafe { avx2::adam(&mut p, &g, &mut m, &mut v, &h) };
            let f = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
            let (mut pd, mut md, mut vd) = (f(&p0), f(&m0), f(&v0));
            scalar::adam(&mut pd, &f(&g), &mut md, &mut vd, &h);
            // Absolute slack: a few f32 ulps of the terms summed (|g| <= 1, so ~1e-8), which
            // matters where they cancel to near zero.
            for i in 0..n {
                prop_assert!(close(p[i], pd[i], 1e-6, 1e-8));
                prop_assert!(close(m[i], md[i], 1e-6, 1e-8));
                prop_assert!(close(v[i], vd[i], 1e-6, 1e-12));
            }
        }
    }
}
