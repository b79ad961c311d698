//! [`Lanes`]: one `f32` vector register as a type, so that a kernel is written once and
//! compiled for AVX2 (8 lanes, [`F32x8`]) and AVX-512 (16 lanes, [`F32x16`]).
//!
//! Each method is one or two instructions and `#[inline(always)]`. A generic kernel
//! (`super::vector_math`) is also `#[inline(always)]` and is called from a
//! `#[target_feature]` wrapper in `super::avx2` or `super::avx512`: everything is inlined
//! into the wrapper, whose features allow the intrinsics. Called anywhere else these
//! methods are undefined behaviour on a CPU without the features, hence `unsafe`.
//!
//! The arithmetic is the same per lane in both types (the same IEEE operations in the same
//! order, FMA where the kernel says FMA), so a lane-wise kernel gives the same bits with 8
//! or 16 lanes; only reductions across lanes ([`Lanes::sum`]) differ in order.

#![allow(clippy::missing_safety_doc)]

use std::arch::x86_64::*;

/// One vector of `f32` lanes and the operations the kernels need.
pub trait Lanes: Copy {
    /// Lanes per vector.
    const N: usize;
    /// A per-lane condition.
    type Mask: Copy;
    /// Every lane `x`.
    unsafe fn splat(x: f32) -> Self;
    /// `N` lanes from `p` (unaligned).
    unsafe fn load(p: *const f32) -> Self;
    /// The first `n < N` lanes from `p`, the others `fill` (nothing read past `p + n`).
    unsafe fn load_first(p: *const f32, n: usize, fill: f32) -> Self;
    /// Writes all lanes to `p`.
    unsafe fn store(self, p: *mut f32);
    /// `self + b`.
    unsafe fn add(self, b: Self) -> Self;
    /// `self - b`.
    unsafe fn sub(self, b: Self) -> Self;
    /// `self * b`.
    unsafe fn mul(self, b: Self) -> Self;
    /// `self / b`.
    unsafe fn div(self, b: Self) -> Self;
    /// `self * b + c`, one rounding.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// `c - self * b`, one rounding.
    unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self;
    /// Lane-wise minimum.
    unsafe fn min(self, b: Self) -> Self;
    /// Lane-wise maximum.
    unsafe fn max(self, b: Self) -> Self;
    /// `|self|`.
    unsafe fn abs(self) -> Self;
    /// Rounded to the nearest integer (ties to even).
    unsafe fn round(self) -> Self;
    /// The bits of each lane and `mask`.
    unsafe fn and_bits(self, mask: u32) -> Self;
    /// `self * 2^n` for integral `n` in [-252, 254], as two exponent-field multiplies so
    /// both factors stay finite.
    unsafe fn scale_pow2(self, n: Self) -> Self;
    /// `self < b`.
    unsafe fn lt(self, b: Self) -> Self::Mask;
    /// `self >= b`.
    unsafe fn ge(self, b: Self) -> Self::Mask;
    /// Lanes in neither `a` nor `b`.
    unsafe fn neither(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// True when some lane is set.
    unsafe fn any(m: Self::Mask) -> bool;
    /// `if m { t } else { f }` per lane.
    unsafe fn select(m: Self::Mask, t: Self, f: Self) -> Self;
    /// The sum of the lanes.
    unsafe fn sum(self) -> f32;
    /// The largest lane.
    unsafe fn max_lane(self) -> f32;
}

/// Eight `f32` lanes in an AVX2 `ymm` register.
#[derive(Clone, Copy)]
pub struct F32x8(pub __m256);

/// Sixteen `f32` lanes in an AVX-512 `zmm` register.
#[derive(Clone, Copy)]
pub struct F32x16(pub __m512);

/// `-1` in the first `n` lanes of 8, for AVX2's masked loads.
#[inline(always)]
unsafe fn first_lanes8(n: usize) -> __m256i {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx)
}

impl Lanes for F32x8 {
    const N: usize = 8;
    type Mask = __m256;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        F32x8(_mm256_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        F32x8(_mm256_loadu_ps(p))
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize, fill: f32) -> Self {
        let m = first_lanes8(n);
        let v = _mm256_maskload_ps(p, m);
        F32x8(_mm256_blendv_ps(
            _mm256_set1_ps(fill),
            v,
            _mm256_castsi256_ps(m),
        ))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm256_storeu_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        F32x8(_mm256_add_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        F32x8(_mm256_sub_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        F32x8(_mm256_mul_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        F32x8(_mm256_div_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        F32x8(_mm256_fmadd_ps(self.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self {
        F32x8(_mm256_fnmadd_ps(self.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn min(self, b: Self) -> Self {
        F32x8(_mm256_min_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn max(self, b: Self) -> Self {
        F32x8(_mm256_max_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        F32x8(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0))
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        F32x8(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(self.0))
    }
    #[inline(always)]
    unsafe fn and_bits(self, mask: u32) -> Self {
        F32x8(_mm256_and_ps(
            self.0,
            _mm256_castsi256_ps(_mm256_set1_epi32(mask as i32)),
        ))
    }
    #[inline(always)]
    unsafe fn scale_pow2(self, n: Self) -> Self {
        let ni = _mm256_cvtps_epi32(n.0);
        let half = _mm256_srai_epi32::<1>(ni);
        let rest = _mm256_sub_epi32(ni, half);
        let bias = _mm256_set1_epi32(127);
        let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(half, bias)));
        let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(rest, bias)));
        F32x8(_mm256_mul_ps(_mm256_mul_ps(self.0, s1), s2))
    }
    #[inline(always)]
    unsafe fn lt(self, b: Self) -> __m256 {
        _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, b.0)
    }
    #[inline(always)]
    unsafe fn ge(self, b: Self) -> __m256 {
        _mm256_cmp_ps::<_CMP_GE_OQ>(self.0, b.0)
    }
    #[inline(always)]
    unsafe fn neither(a: __m256, b: __m256) -> __m256 {
        _mm256_andnot_ps(
            _mm256_or_ps(a, b),
            _mm256_castsi256_ps(_mm256_set1_epi32(-1)),
        )
    }
    #[inline(always)]
    unsafe fn any(m: __m256) -> bool {
        _mm256_movemask_ps(m) != 0
    }
    #[inline(always)]
    unsafe fn select(m: __m256, t: Self, f: Self) -> Self {
        F32x8(_mm256_blendv_ps(f.0, t.0, m))
    }
    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        let lo = _mm256_castps256_ps128(self.0);
        let hi = _mm256_extractf128_ps::<1>(self.0);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        _mm_cvtss_f32(s)
    }
    #[inline(always)]
    unsafe fn max_lane(self) -> f32 {
        let lo = _mm256_castps256_ps128(self.0);
        let hi = _mm256_extractf128_ps::<1>(self.0);
        let s = _mm_max_ps(lo, hi);
        let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_max_ss(s, _mm_shuffle_ps::<1>(s, s));
        _mm_cvtss_f32(s)
    }
}

impl Lanes for F32x16 {
    const N: usize = 16;
    type Mask = __mmask16;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        F32x16(_mm512_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        F32x16(_mm512_loadu_ps(p))
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize, fill: f32) -> Self {
        F32x16(_mm512_mask_loadu_ps(
            _mm512_set1_ps(fill),
            ((1u32 << n) - 1) as u16,
            p,
        ))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        _mm512_storeu_ps(p, self.0)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        F32x16(_mm512_add_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn sub(self, b: Self) -> Self {
        F32x16(_mm512_sub_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        F32x16(_mm512_mul_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        F32x16(_mm512_div_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        F32x16(_mm512_fmadd_ps(self.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn neg_mul_add(self, b: Self, c: Self) -> Self {
        F32x16(_mm512_fnmadd_ps(self.0, b.0, c.0))
    }
    #[inline(always)]
    unsafe fn min(self, b: Self) -> Self {
        F32x16(_mm512_min_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn max(self, b: Self) -> Self {
        F32x16(_mm512_max_ps(self.0, b.0))
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        F32x16(_mm512_abs_ps(self.0))
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        F32x16(_mm512_roundscale_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(self.0))
    }
    #[inline(always)]
    unsafe fn and_bits(self, mask: u32) -> Self {
        F32x16(_mm512_castsi512_ps(_mm512_and_si512(
            _mm512_castps_si512(self.0),
            _mm512_set1_epi32(mask as i32),
        )))
    }
    #[inline(always)]
    unsafe fn scale_pow2(self, n: Self) -> Self {
        let ni = _mm512_cvtps_epi32(n.0);
        let half = _mm512_srai_epi32::<1>(ni);
        let rest = _mm512_sub_epi32(ni, half);
        let bias = _mm512_set1_epi32(127);
        let s1 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(half, bias)));
        let s2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(rest, bias)));
        F32x16(_mm512_mul_ps(_mm512_mul_ps(self.0, s1), s2))
    }
    #[inline(always)]
    unsafe fn lt(self, b: Self) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, b.0)
    }
    #[inline(always)]
    unsafe fn ge(self, b: Self) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_GE_OQ>(self.0, b.0)
    }
    #[inline(always)]
    unsafe fn neither(a: __mmask16, b: __mmask16) -> __mmask16 {
        !(a | b)
    }
    #[inline(always)]
    unsafe fn any(m: __mmask16) -> bool {
        m != 0
    }
    #[inline(always)]
    unsafe fn select(m: __mmask16, t: Self, f: Self) -> Self {
        F32x16(_mm512_mask_blend_ps(m, f.0, t.0))
    }
    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        _mm512_reduce_add_ps(self.0)
    }
    #[inline(always)]
    unsafe fn max_lane(self) -> f32 {
        _mm512_reduce_max_ps(self.0)
    }
}
