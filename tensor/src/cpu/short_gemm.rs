//! `f32` GEMM for the encoder's products over thousands of positions: the linear layers
//! `x W^T` and their input gradients `dY W` (inner dimension 64 or 256), and their weight
//! gradients `dY^T X` (a short output, a long inner dimension).
//!
//! matrixmultiply packs both operands into panels before its micro-kernel runs; with
//! `k = 64` every element of the tall `A` is packed for only `2 n` flops, and the packing
//! took a third as long as the kernel itself (perf over a training step). Here `A` is read
//! in place: a 6 x 16 tile of `C` lives in 12 AVX registers while the kernel walks `k`,
//! broadcasting one element of each of the tile's 6 rows of `A` and loading one 16-wide row
//! of `B`. `B` (at most 512 x 1024) is read in place when its rows are contiguous and
//! otherwise packed once into 16-column panels, which stay in L2 for every row tile. For
//! `A^T B` both operands are read in place (a tile's 6 elements of `A` per step are
//! adjacent), `k` taken in blocks that fit L1.
//!
//! Each element of `C` is one FMA chain over `k` in order, whatever the thread count.
//!
//! On a processor with AVX-512 two neighbouring panels go through one `6 x 32` tile of 12
//! `zmm` accumulators instead ([`tile_wide`]): the same FMA chains, so the same bits, at
//! twice the width per instruction. Measured on a 2-core AVX-512 Xeon (`mclrec-cli bench`,
//! Beauty MCLRec, 2 threads, three A/B pairs): 102-114 s per epoch with the wide tile,
//! 135-143 s with the AVX2 tile alone, 128-142 s with matrixmultiply's AVX-512 kernel for
//! these products instead.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Tile height (rows of `A` / `C`) and width (columns of `B` / `C`).
pub(super) const MR: usize = 6;
const NR: usize = 16;

/// Whether `m x k @ k x n` with a row-major `A` goes through this kernel: `k` short enough
/// for `B` to stay in L2, and [`fits`] `n`.
pub(super) fn applies(k: usize, n: usize) -> bool {
    (1..=512).contains(&k) && fits(n)
}

/// `n` whole tile widths, at most 1,024 (the model's widths), on a processor with
/// AVX2+FMA.
fn fits(n: usize) -> bool {
    n.is_multiple_of(NR) && (NR..=1024).contains(&n) && crate::kernels::simd_enabled()
}

/// `B` as the kernel reads it: rows of `n` floats `ldb` apart.
pub(super) struct PanelB {
    /// The packed copy `ptr` points into, if `B` had to be packed (a pooled buffer).
    _packed: Option<super::Buffer<f32>>,
    ptr: *const f32,
    ldb: usize,
    /// Floats between consecutive 16-column panels.
    panel_stride: usize,
}

// SAFETY: read-only view of memory that outlives the product.
unsafe impl Send for PanelB {}
unsafe impl Sync for PanelB {}

impl PanelB {
    /// `B` (`k x n`, element `(i, j)` at `b[i rsb + j csb]`) in place when `csb == 1`,
    /// otherwise packed into panels of 16 columns.
    ///
    /// # Safety
    /// `b` with these strides must describe a valid `k x n` matrix.
    pub(super) unsafe fn new(b: *const f32, k: usize, n: usize, rsb: usize, csb: usize) -> Self {
        if csb == 1 {
            return PanelB {
                _packed: None,
                ptr: b,
                ldb: rsb,
                panel_stride: NR,
            };
        }
        // Every element is written below.
        let mut p = super::output::<f32>(k * n);
        for (panel, dst) in p.chunks_exact_mut(k * NR).enumerate() {
            for (i, row) in dst.chunks_exact_mut(NR).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = *b.add(i * rsb + (panel * NR + j) * csb);
                }
            }
        }
        let ptr = p.as_ptr();
        PanelB {
            _packed: Some(p),
            ptr,
            ldb: NR,
            panel_stride: k * NR,
        }
    }
}

/// Rows `r0 .. r0 + rows` of `C = A B (+ bias)` (`C` row-major with `n` columns, `A`
/// row-major with `k` columns, both pointers at row 0; `bias`, if given, `n` floats added to
/// every row as the tile is stored: the bits of the product followed by the addition).
///
/// # Safety
/// `applies(k, n)` held; `a`, `b`, `c` and `bias` describe valid matrices; no other thread
/// writes these rows of `C`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn rows(
    a: *const f32,
    k: usize,
    b: &PanelB,
    n: usize,
    bias: Option<*const f32>,
    c: *mut f32,
    r0: usize,
    rows: usize,
) {
    let mut i = r0;
    let end = r0 + rows;
    while i < end {
        let mr = MR.min(end - i);
        let tile = Tile {
            mr,
            k,
            a: a.add(i * k),
            rsa: k,
            csa: 1,
            accumulate: false,
            bias,
        };
        tile.across(b.ptr, b.ldb, b.panel_stride, n, c.add(i * n), n);
        i += mr;
    }
}

/// One `R x 16` tile of `C` (`R <= 6`): `C[r, 0..16] (+)= sum_i A[r, i] B[i, 0..16]`, with
/// `A[r, i]` at `t.a[r rsa + i csa]` and `B[i, j]` at `b[i ldb + j]`, then `bias[0..16]`
/// added if given. With `accumulate` the chain continues from `C`'s values, so a product
/// split along `k` into calls gives the same bits as one call.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const R: usize>(
    t: &Tile,
    b: *const f32,
    ldb: usize,
    bias: Option<*const f32>,
    c: *mut f32,
    ldc: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    if t.accumulate {
        for (r, acc) in acc.iter_mut().enumerate() {
            acc[0] = _mm256_loadu_ps(c.add(r * ldc));
            acc[1] = _mm256_loadu_ps(c.add(r * ldc + 8));
        }
    }
    for i in 0..t.k {
        let (ai, bi) = (t.a.add(i * t.csa), b.add(i * ldb));
        let (b0, b1) = (_mm256_loadu_ps(bi), _mm256_loadu_ps(bi.add(8)));
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm256_set1_ps(*ai.add(r * t.rsa));
            acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
            acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
        }
    }
    if let Some(bias) = bias {
        let (b0, b1) = (_mm256_loadu_ps(bias), _mm256_loadu_ps(bias.add(8)));
        for acc in acc.iter_mut() {
            acc[0] = _mm256_add_ps(acc[0], b0);
            acc[1] = _mm256_add_ps(acc[1], b1);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        _mm256_storeu_ps(c.add(r * ldc), acc[0]);
        _mm256_storeu_ps(c.add(r * ldc + 8), acc[1]);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile<const R: usize>(
    _t: &Tile,
    _b: *const f32,
    _ldb: usize,
    _bias: Option<*const f32>,
    _c: *mut f32,
    _ldc: usize,
) {
    unreachable!("applies() is false without AVX2")
}

/// [`tile`]'s signature: `(tile, B, ldb, bias, C, ldc)`.
type TileFn = unsafe fn(&Tile, *const f32, usize, Option<*const f32>, *mut f32, usize);
/// [`tile_wide`]'s: `(tile, B, distance to B's second panel, ldb, bias, C, ldc)`.
type WideTileFn = unsafe fn(&Tile, *const f32, usize, usize, Option<*const f32>, *mut f32, usize);

/// [`tile`] at the run-time height `mr <= 6`.
fn tile_of(mr: usize) -> TileFn {
    match mr {
        6 => tile::<6>,
        5 => tile::<5>,
        4 => tile::<4>,
        3 => tile::<3>,
        2 => tile::<2>,
        _ => tile::<1>,
    }
}

/// The `A` side of one row tile: `mr <= 6` rows, `A[r, i]` at `a[r rsa + i csa]`, `i < k`.
struct Tile {
    mr: usize,
    k: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    accumulate: bool,
    /// Added to each row of `C` as it is stored (`n` floats), if given.
    bias: Option<*const f32>,
}

impl Tile {
    /// `C[0..mr, 0..n] (+)= A B` for the `n / 16` panels of `B` (panel `p` at
    /// `b + p panel_stride`, its rows `ldb` apart): pairs of panels through [`tile_wide`]
    /// where the processor has AVX-512, the rest through [`tile`].
    unsafe fn across(
        &self,
        b: *const f32,
        ldb: usize,
        panel_stride: usize,
        n: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let panels = n / NR;
        let bias_at = |p: usize| self.bias.map(|bias| bias.add(p * NR));
        let mut p = 0;
        if crate::kernels::avx512_enabled() {
            while p + 2 <= panels {
                let b = b.add(p * panel_stride);
                tile_wide_of(self.mr)(self, b, panel_stride, ldb, bias_at(p), c.add(p * NR), ldc);
                p += 2;
            }
        }
        for p in p..panels {
            let b = b.add(p * panel_stride);
            tile_of(self.mr)(self, b, ldb, bias_at(p), c.add(p * NR), ldc);
        }
    }
}

/// Two neighbouring [`tile`]s in one pass with AVX-512: an `R x 32` tile of `C` in `2 R`
/// `zmm` registers, `B`'s second panel `next` floats after the first. Each element of `C`
/// is the same FMA chain as in [`tile`] (one rounding per step, `k` in order), so the two
/// give the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_wide<const R: usize>(
    t: &Tile,
    b: *const f32,
    next: usize,
    ldb: usize,
    bias: Option<*const f32>,
    c: *mut f32,
    ldc: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    if t.accumulate {
        for (r, acc) in acc.iter_mut().enumerate() {
            acc[0] = _mm512_loadu_ps(c.add(r * ldc));
            acc[1] = _mm512_loadu_ps(c.add(r * ldc + NR));
        }
    }
    for i in 0..t.k {
        let (ai, bi) = (t.a.add(i * t.csa), b.add(i * ldb));
        let (b0, b1) = (_mm512_loadu_ps(bi), _mm512_loadu_ps(bi.add(next)));
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*ai.add(r * t.rsa));
            acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
            acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
        }
    }
    if let Some(bias) = bias {
        let (b0, b1) = (_mm512_loadu_ps(bias), _mm512_loadu_ps(bias.add(NR)));
        for acc in acc.iter_mut() {
            acc[0] = _mm512_add_ps(acc[0], b0);
            acc[1] = _mm512_add_ps(acc[1], b1);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        _mm512_storeu_ps(c.add(r * ldc), acc[0]);
        _mm512_storeu_ps(c.add(r * ldc + NR), acc[1]);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile_wide<const R: usize>(
    _t: &Tile,
    _b: *const f32,
    _next: usize,
    _ldb: usize,
    _bias: Option<*const f32>,
    _c: *mut f32,
    _ldc: usize,
) {
    unreachable!("avx512_enabled() is false without AVX-512")
}

/// [`tile_wide`] at the run-time height `mr <= 6`.
fn tile_wide_of(mr: usize) -> WideTileFn {
    match mr {
        6 => tile_wide::<6>,
        5 => tile_wide::<5>,
        4 => tile_wide::<4>,
        3 => tile_wide::<3>,
        2 => tile_wide::<2>,
        _ => tile_wide::<1>,
    }
}

/// Rows of `A^T B` taken at a time along `k` (the positions of a batch): a tile's slice of
/// `A` and a panel of `B` (`KC` cache lines each) stay in L1 while it runs. Measured with
/// `cargo bench --bench matmul -- d_w` (GFLOP/s, 2 threads, `m = 64 / 256`): KC 256:
/// 97 / 81; 128: 93 / 112; 64: 113 / 111; matrixmultiply: 88 / 103.
const KC: usize = 64;

/// Whether `A^T B` (`A` row-major `k x m`, `B` row-major `k x n`) goes through
/// [`transposed_rows`]: the weight gradients `dY^T X` of the linear layers.
pub(super) fn applies_transposed(m: usize, n: usize) -> bool {
    (1..=1024).contains(&m) && fits(n)
}

/// Rows `r0 .. r0 + rows` of `C = A^T B` for row-major `A` (`k x m`) and `B` (`k x n`),
/// `C` row-major `m x n`.
///
/// # Safety
/// `applies_transposed(m, n)` held; the pointers describe valid matrices; no other thread
/// writes these rows of `C`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn transposed_rows(
    a: *const f32,
    m: usize,
    k: usize,
    b: *const f32,
    n: usize,
    c: *mut f32,
    r0: usize,
    rows: usize,
) {
    let mut i0 = 0;
    loop {
        let kc = KC.min(k - i0);
        let mut r = r0;
        while r < r0 + rows {
            let mr = MR.min(r0 + rows - r);
            let tile = Tile {
                mr,
                k: kc,
                a: a.add(i0 * m + r),
                rsa: 1,
                csa: m,
                accumulate: i0 > 0,
                bias: None,
            };
            tile.across(b.add(i0 * n), n, NR, n, c.add(r * n), n);
            r += mr;
        }
        i0 += kc;
        if i0 >= k {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn equals_the_naive_product(m in 1usize..20, k in 1usize..70, panels in 1usize..4, tb: bool, with_bias: bool, seed in 0u32..1000) {
            prop_assume!(crate::kernels::simd_enabled());
            let n = panels * NR;
            let val = |i: usize| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0;
            let a: Vec<f32> = (0..m * k).map(val).collect();
            let b: Vec<f32> = (0..k * n).map(|i| val(i + 7919)).collect();
            // B is k x n; stored transposed (n x k) when tb.
            let (rsb, csb) = if tb { (1, k) } else { (n, 1) };
            let at = |i: usize, j: usize| b[i * rsb + j * csb];
            let bias: Vec<f32> = (0..n).map(|j| if with_bias { val(j + 31) } else { 0.0 }).collect();
            let bias_ptr = with_bias.then_some(bias.as_ptr());
            let mut c = vec![f32::NAN; m * n];
            unsafe {
                let pb = PanelB::new(b.as_ptr(), k, n, rsb, csb);
                // Two row ranges, as two threads would run them.
                let half = m / 2;
                rows(a.as_ptr(), k, &pb, n, bias_ptr, c.as_mut_ptr(), 0, half);
                rows(a.as_ptr(), k, &pb, n, bias_ptr, c.as_mut_ptr(), half, m - half);
            }
            for r in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k).map(|i| a[r * k + i] as f64 * at(i, j) as f64).sum::<f64>() + bias[j] as f64;
                    prop_assert!((c[r * n + j] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()), "({r}, {j}): {} vs {want}", c[r * n + j]);
                }
            }
        }

        #[test]
        fn the_wide_tile_gives_the_bits_of_the_narrow_one(mr in 1usize..=MR, k in 1usize..300, panels in 1usize..6, accumulate: bool, with_bias: bool, seed in 0u32..1000) {
            prop_assume!(crate::kernels::avx512_enabled());
            let n = panels * NR;
            let val = |i: usize| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0;
            let a: Vec<f32> = (0..mr * k).map(val).collect();
            let b: Vec<f32> = (0..k * n).map(|i| val(i + 7919)).collect();
            let start: Vec<f32> = (0..mr * n).map(|i| val(i + 104_729)).collect();
            let (mut wide, mut narrow) = (start.clone(), start);
            let bias: Vec<f32> = (0..n).map(|j| val(j + 31)).collect();
            let bias = with_bias.then_some(bias.as_ptr());
            let tile = Tile { mr, k, a: a.as_ptr(), rsa: k, csa: 1, accumulate, bias };
            unsafe {
                tile.across(b.as_ptr(), n, NR, n, wide.as_mut_ptr(), n);
                for p in 0..panels {
                    let bias = bias.map(|v| v.add(p * NR));
                    tile_of(mr)(&tile, b.as_ptr().add(p * NR), n, bias, narrow.as_mut_ptr().add(p * NR), n);
                }
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&wide), bits(&narrow));
        }

        #[test]
        fn transposed_equals_the_naive_product(m in 1usize..20, k in 1usize..700, panels in 1usize..3, seed in 0u32..1000) {
            prop_assume!(crate::kernels::simd_enabled());
            let n = panels * NR;
            let val = |i: usize| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0;
            let a: Vec<f32> = (0..k * m).map(val).collect(); // k x m
            let b: Vec<f32> = (0..k * n).map(|i| val(i + 7919)).collect(); // k x n
            let mut c = vec![f32::NAN; m * n];
            unsafe {
                let half = m / 2;
                transposed_rows(a.as_ptr(), m, k, b.as_ptr(), n, c.as_mut_ptr(), 0, half);
                transposed_rows(a.as_ptr(), m, k, b.as_ptr(), n, c.as_mut_ptr(), half, m - half);
            }
            for r in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k).map(|i| a[i * m + r] as f64 * b[i * n + j] as f64).sum();
                    prop_assert!((c[r * n + j] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()), "({r}, {j}): {} vs {want}", c[r * n + j]);
                }
            }
        }
    }
}
