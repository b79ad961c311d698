//! The element types a [`Tensor`](crate::Tensor) can hold: `f32` for training, `f64` for
//! tight gradient checks.
//!
//! Besides arithmetic, an element type names the few hot kernels the CPU backend calls on
//! contiguous slices. `f32` routes them to the AVX2+FMA code in [`crate::kernels`] when the
//! processor has it; `f64` always uses the portable scalar reference.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use crate::kernels::{self, AdamParams};

/// What a CUDA buffer needs of its element type (`cudarc`'s `DeviceRepr` and
/// `ValidAsZeroBits`) when the `cuda` feature is on; nothing otherwise. A supertrait of
/// [`Element`] so that `Tensor<E>` can hold a `CudaSlice<E>` without a bound on every method.
#[cfg(feature = "cuda")]
pub trait DeviceElement: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits {}
#[cfg(feature = "cuda")]
impl<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits> DeviceElement for T {}

/// What a CUDA buffer needs of its element type; nothing in a build without `cuda`.
#[cfg(not(feature = "cuda"))]
pub trait DeviceElement {}
#[cfg(not(feature = "cuda"))]
impl<T> DeviceElement for T {}

/// A floating-point type the tensors can hold (`f32` or `f64`).
pub trait Element:
    num_traits::Float
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + DeviceElement
    + 'static
{
    /// `"f32"` or `"f64"`, as safetensors and error messages spell it.
    const NAME: &'static str;

    /// Converts from `f64`, rounding to the nearest value.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly (named apart from `num_traits::ToPrimitive::to_f64`).
    fn as_f64(self) -> f64;
    /// The error function (libm's `erf` / `erff`).
    fn erf(self) -> Self;
    /// The complementary error function `1 - erf(x)`, accurate where `erf(x)` is near 1.
    fn erfc(self) -> Self;

    /// `C = alpha * A B + beta * C` on raw strided memory (matrixmultiply's sgemm/dgemm).
    ///
    /// # Safety
    /// The pointers and strides must describe valid `m x k`, `k x n` and `m x n` matrices, and
    /// `c` must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );

    /// `y = gelu(x)` (erf form) elementwise.
    fn gelu_slice(x: &[Self], y: &mut [Self]) {
        kernels::scalar::gelu(x, y)
    }
    /// `gx = gy * gelu'(x)` elementwise.
    fn gelu_backward_slice(x: &[Self], gy: &[Self], gx: &mut [Self]) {
        kernels::scalar::gelu_backward(x, gy, gx)
    }
    /// `y = exp(x)` elementwise.
    fn exp_slice(x: &[Self], y: &mut [Self]) {
        kernels::scalar::exp(x, y)
    }
    /// Numerically stable softmax of one row.
    fn softmax_row(x: &[Self], y: &mut [Self]) {
        kernels::scalar::softmax_row(x, y)
    }
    /// Numerically stable log-softmax of one row.
    fn log_softmax_row(x: &[Self], y: &mut [Self]) {
        kernels::scalar::log_softmax_row(x, y)
    }
    /// The largest element of a row (`-inf` when empty).
    fn row_max(x: &[Self]) -> Self {
        kernels::scalar::row_max(x)
    }
    /// Writes `exp(x - m)` to `y` and returns its sum: a softmax's numerators, for
    /// the caller to normalise (or to combine with other pieces of the same row).
    fn exp_shifted_sum(x: &[Self], m: Self, y: &mut [Self]) -> Self {
        kernels::scalar::exp_shifted_sum(x, m, y)
    }
    /// Normalises one row: `y = (x - mean) * rstd * gamma + beta`; returns `(mean, rstd)`.
    fn layer_norm_row(
        x: &[Self],
        gamma: &[Self],
        beta: &[Self],
        eps: Self,
        y: &mut [Self],
    ) -> (Self, Self) {
        kernels::scalar::layer_norm_row(x, gamma, beta, eps, y)
    }
    /// One Adam step (PyTorch semantics) over a parameter slice, in place.
    fn adam_update(p: &mut [Self], g: &[Self], m: &mut [Self], v: &mut [Self], h: &AdamParams) {
        kernels::scalar::adam(p, g, m, v, h)
    }
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn erf(self) -> Self {
        libm::erff(self)
    }
    fn erfc(self) -> Self {
        libm::erfcf(self)
    }
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
    fn gelu_slice(x: &[Self], y: &mut [Self]) {
        kernels::gelu_f32(x, y)
    }
    fn gelu_backward_slice(x: &[Self], gy: &[Self], gx: &mut [Self]) {
        kernels::gelu_backward_f32(x, gy, gx)
    }
    fn exp_slice(x: &[Self], y: &mut [Self]) {
        kernels::exp_f32(x, y)
    }
    fn softmax_row(x: &[Self], y: &mut [Self]) {
        kernels::softmax_row_f32(x, y)
    }
    fn log_softmax_row(x: &[Self], y: &mut [Self]) {
        kernels::log_softmax_row_f32(x, y)
    }
    fn row_max(x: &[Self]) -> Self {
        kernels::row_max_f32(x)
    }
    fn exp_shifted_sum(x: &[Self], m: Self, y: &mut [Self]) -> Self {
        kernels::exp_shifted_sum_f32(x, m, y)
    }
    fn layer_norm_row(
        x: &[Self],
        gamma: &[Self],
        beta: &[Self],
        eps: Self,
        y: &mut [Self],
    ) -> (Self, Self) {
        kernels::layer_norm_row_f32(x, gamma, beta, eps, y)
    }
    fn adam_update(p: &mut [Self], g: &[Self], m: &mut [Self], v: &mut [Self], h: &AdamParams) {
        kernels::adam_f32(p, g, m, v, h)
    }
}

impl Element for f64 {
    const NAME: &'static str = "f64";
    fn from_f64(v: f64) -> Self {
        v
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn erfc(self) -> Self {
        libm::erfc(self)
    }
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}
