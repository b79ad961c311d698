//! AVX-512 versions (16 lanes) of the `exp` and GELU kernels: [`super::vector_math`]
//! compiled for [`F32x16`]. Lane for lane the same operations as the AVX2 build, so the
//! same bits, except the order in which [`exp_shifted_sum`] adds its lanes.
//! Every function requires a CPU with AVX-512F, AVX2 and FMA: callers check with
//! [`super::avx512_enabled`].

#![allow(clippy::missing_safety_doc)]

use super::lanes::F32x16;
use super::vector_math;

/// `y = gelu(x)`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn gelu(x: &[f32], y: &mut [f32]) {
    vector_math::gelu::<F32x16>(x, y)
}

/// `gx = gy * gelu'(x)`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn gelu_backward(x: &[f32], gy: &[f32], gx: &mut [f32]) {
    vector_math::gelu_backward::<F32x16>(x, gy, gx)
}

/// `y = exp(x)`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn exp(x: &[f32], y: &mut [f32]) {
    vector_math::exp_slice::<F32x16>(x, y)
}

/// The largest element (`-inf` for an empty row).
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn row_max(x: &[f32]) -> f32 {
    vector_math::row_max::<F32x16>(x)
}

/// Writes `exp(x - m)` to `y` and returns its sum.
#[target_feature(enable = "avx512f,avx2,fma")]
pub unsafe fn exp_shifted_sum(x: &[f32], m: f32, y: &mut [f32]) -> f32 {
    vector_math::exp_shifted_sum::<F32x16>(x, m, y)
}
