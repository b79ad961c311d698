//! Cross-entropy over the scores `h W^T` without the score matrix's gradient: the next-item
//! loss over all 12,101 Beauty items, taken in blocks of items that stay in L2.
//!
//! Unfused, a batch of 256 rows writes its 256 x 12,101 scores (12 MB), reads them for the
//! softmax, writes the gradient (12 MB) and reads it twice for `dh = G W` and `dW = G^T h`:
//! the three products then ran at 90 GFLOP/s instead of the 230 they reach with the operands
//! in cache (`PERFORMANCE.md`). Here the items go in blocks of [`ITEMS`] and the rows in
//! chunks of at most [`ROWS`]; one block's scores (512 KB) are made and used while they are
//! in L2.
//!
//! * Forward: per block, the scores, each row's `(max, sum exp(s - max))` over the block,
//!   and the exponentials `exp(s - max)` themselves, kept for the backward; the pieces
//!   combine into each row's log-sum-exp `lse` in block order, and each (row, block) gets
//!   the factor `exp(max - lse)` that turns its exponentials into probabilities. The loss
//!   is `mean(lse - h_t . w_t)`.
//! * Backward: per block, `G = g/n (exponentials x factor - onehot)` while it is in L2,
//!   `dW_block = G^T h` written in place and `G W_block` into the block's own slot of
//!   `dh`'s partial sums, added in block order.
//!
//! Every block is computed the same way whatever the thread count, and partial sums are
//! added in a fixed order, so the results do not depend on the number of threads.
//!
//! Measured on the 2-core Xeon this was built on (`PERFORMANCE.md`): in session 7 the
//! backward made the scores again from `h` and `W` (keeping only `lse`) and was no faster
//! than the unfused ops inside a training step; keeping the exponentials instead (12 MB for
//! 256 rows, what the unfused ops keep in their gradient) saves that product and an `exp`
//! pass: 2.5 ms of a 30 ms SASRec batch, 5.8 ms of an MCLRec one (session 8).

use rayon::prelude::*;

use super::short_gemm;
use crate::{Element, Tensor};

/// Items per block: the block's scores for [`ROWS`] rows are 512 KB in `f32`.
const ITEMS: usize = 512;
/// Rows per chunk.
const ROWS: usize = 256;

/// Whether `E` is `f32` and the processor runs [`short_gemm`]: the block products then go
/// through it (A read in place, the AVX-512 tile); otherwise through `E::gemm`.
fn short<E: Element>() -> bool {
    std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>() && crate::kernels::simd_enabled()
}

/// `S = h[r0..r0+rows] W[c0..c0+items]^T` into `s` (row-major, `items` columns).
fn block_scores<E: Element>(
    h: &[E],
    w: &[E],
    d: usize,
    (r0, rows): (usize, usize),
    (c0, items): (usize, usize),
    s: &mut [E],
) {
    assert!(h.len() >= (r0 + rows) * d && w.len() >= (c0 + items) * d && s.len() >= rows * items);
    let (h, w, s) = (h[r0 * d..].as_ptr(), w[c0 * d..].as_ptr(), s.as_mut_ptr());
    // SAFETY: the assert above keeps every access inside h, w and s; s aliases neither. In
    // the short_gemm branch E is f32, so the casts only rename the type.
    unsafe {
        if short::<E>() && short_gemm::applies(d, items) {
            let panels = short_gemm::PanelB::new(w as *const f32, d, items, 1, d);
            short_gemm::rows(
                h as *const f32,
                d,
                &panels,
                items,
                None,
                s as *mut f32,
                0,
                rows,
            );
        } else {
            E::gemm(
                rows,
                d,
                items,
                E::one(),
                h,
                d as isize,
                1,
                w,
                1,
                d as isize,
                E::zero(),
                s,
                items as isize,
                1,
            );
        }
    }
}

/// `part = G W[c0..c0+items]` (`G`: `rows x items`, `part`: `rows x d`).
fn block_dh<E: Element>(g: &[E], w: &[E], d: usize, (c0, items): (usize, usize), part: &mut [E]) {
    let rows = part.len() / d;
    assert!(g.len() >= rows * items && w.len() >= (c0 + items) * d);
    let (g, w, part) = (g.as_ptr(), w[c0 * d..].as_ptr(), part.as_mut_ptr());
    // SAFETY: as in `block_scores`.
    unsafe {
        if short::<E>() && short_gemm::applies(items, d) {
            let panels = short_gemm::PanelB::new(w as *const f32, items, d, d, 1);
            short_gemm::rows(
                g as *const f32,
                items,
                &panels,
                d,
                None,
                part as *mut f32,
                0,
                rows,
            );
        } else {
            E::gemm(
                rows,
                items,
                d,
                E::one(),
                g,
                items as isize,
                1,
                w,
                d as isize,
                1,
                E::zero(),
                part,
                d as isize,
                1,
            );
        }
    }
}

/// `dw_b (+)= G^T h[r0..r0+rows]` (`G`: `rows x items`, `dw_b`: `items x d`); the first
/// chunk of rows (`r0 == 0`) writes, later ones add.
fn block_dw<E: Element>(g: &[E], h: &[E], d: usize, (r0, rows): (usize, usize), dw_b: &mut [E]) {
    let items = dw_b.len() / d;
    assert!(g.len() >= rows * items && h.len() >= (r0 + rows) * d);
    let (g, h, dw_b) = (g.as_ptr(), h[r0 * d..].as_ptr(), dw_b.as_mut_ptr());
    // SAFETY: as in `block_scores`.
    unsafe {
        if short::<E>() && r0 == 0 && short_gemm::applies_transposed(items, d) {
            let (g, h, dw_b) = (g as *const f32, h as *const f32, dw_b as *mut f32);
            short_gemm::transposed_rows(g, items, rows, h, d, dw_b, 0, items);
        } else {
            let beta = if r0 == 0 { E::zero() } else { E::one() };
            E::gemm(
                items,
                rows,
                d,
                E::one(),
                g,
                1,
                items as isize,
                h,
                d as isize,
                1,
                beta,
                dw_b,
                d as isize,
                1,
            );
        }
    }
}

/// The mean cross-entropy of `h W^T` (`h`: `[n, d]`, `W`: `[c, d]`) against `targets`, and
/// what [`linear_cross_entropy_backward`] needs: each block's exponentials
/// `exp(s - m_block)` (block `b`'s `n x items` rows at offset `c0 n`) followed by the `n x
/// blocks` factors `exp(m_block - lse)` that turn them into probabilities, one tensor of
/// `n (c + blocks)` elements.
pub(super) fn linear_cross_entropy<E: Element>(
    h: &Tensor<E>,
    w: &Tensor<E>,
    targets: &[usize],
) -> (f64, Tensor<E>) {
    let (n, d, c) = (h.shape()[0], h.shape()[1], w.shape()[0]);
    let (hs, ws) = (h.as_slice(), w.as_slice());
    let blocks = c.div_ceil(ITEMS);
    // Every element is written below: the exponentials block by block, then the factors.
    let mut saved = super::output::<E>(n * (c + blocks));
    let (exps, factors) = saved.split_at_mut(n * c);
    let mut lse = vec![E::zero(); n];
    // Per block and row of a chunk: the block's maximum and sum of exp(s - max).
    let mut pieces = vec![(E::zero(), E::zero()); blocks * ROWS.min(n)];
    for r0 in (0..n).step_by(ROWS) {
        let rows = ROWS.min(n - r0);
        block_regions_mut(exps, n, c)
            .into_par_iter()
            .zip(pieces.par_chunks_mut(rows))
            .enumerate()
            .for_each(|(b, (region, piece))| {
                let (c0, items) = (b * ITEMS, ITEMS.min(c - b * ITEMS));
                let mut s = super::output::<E>(rows * items);
                block_scores(hs, ws, d, (r0, rows), (c0, items), &mut s);
                let e = &mut region[r0 * items..(r0 + rows) * items];
                for ((row, er), p) in s.chunks(items).zip(e.chunks_mut(items)).zip(piece) {
                    let m = E::row_max(row);
                    *p = (m, E::exp_shifted_sum(row, m, er));
                }
            });
        for (r, l) in lse[r0..r0 + rows].iter_mut().enumerate() {
            let m = (0..blocks)
                .map(|b| pieces[b * rows + r].0)
                .fold(E::neg_infinity(), E::max);
            let sum: f64 = (0..blocks)
                .map(|b| {
                    let (mb, sb) = pieces[b * rows + r];
                    sb.as_f64() * (mb - m).as_f64().exp()
                })
                .sum();
            *l = E::from_f64(m.as_f64() + sum.ln());
            let f = &mut factors[(r0 + r) * blocks..(r0 + r + 1) * blocks];
            for (b, f) in f.iter_mut().enumerate() {
                *f = E::from_f64((pieces[b * rows + r].0.as_f64() - l.as_f64()).exp());
            }
        }
    }
    let loss: f64 = (0..n)
        .map(|r| {
            let (hr, wt) = (
                &hs[r * d..(r + 1) * d],
                &ws[targets[r] * d..(targets[r] + 1) * d],
            );
            let st: f64 = hr
                .iter()
                .zip(wt)
                .map(|(a, b)| a.as_f64() * b.as_f64())
                .sum();
            lse[r].as_f64() - st
        })
        .sum();
    (
        loss / n as f64,
        Tensor::from_buffer(saved, &[n * (c + blocks)]),
    )
}

/// The exponentials of the forward cut into each block's `n x items` rows.
fn block_regions_mut<E>(exps: &mut [E], n: usize, c: usize) -> Vec<&mut [E]> {
    let mut rest = exps;
    (0..c.div_ceil(ITEMS))
        .map(|b| {
            let items = ITEMS.min(c - b * ITEMS);
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(n * items);
            rest = tail;
            mine
        })
        .collect()
}

/// `(dh, dW)` of `g` times the loss of [`linear_cross_entropy`], given what it `saved`.
pub(super) fn linear_cross_entropy_backward<E: Element>(
    h: &Tensor<E>,
    w: &Tensor<E>,
    targets: &[usize],
    saved: &Tensor<E>,
    g: E,
) -> (Tensor<E>, Tensor<E>) {
    let (n, d, c) = (h.shape()[0], h.shape()[1], w.shape()[0]);
    let blocks = c.div_ceil(ITEMS);
    assert_eq!(
        saved.numel(),
        n * (c + blocks),
        "linear_cross_entropy_backward: saved"
    );
    let (hs, ws) = (h.as_slice(), w.as_slice());
    let (exps, factors) = saved.as_slice().split_at(n * c);
    let scale = g / E::from_f64(n as f64);
    let mut dh = super::output::<E>(n * d);
    let mut dw = super::output::<E>(c * d);
    // Per block: its share of dh for the rows of the chunk, summed in block order below.
    let mut partial = super::output::<E>(blocks * ROWS.min(n) * d);
    for r0 in (0..n).step_by(ROWS) {
        let rows = ROWS.min(n - r0);
        dw.par_chunks_mut(ITEMS * d)
            .zip(partial.par_chunks_mut(rows * d))
            .enumerate()
            .for_each(|(b, (dw_b, part))| {
                let (c0, items) = (b * ITEMS, ITEMS.min(c - b * ITEMS));
                let e = &exps[c0 * n + r0 * items..c0 * n + (r0 + rows) * items];
                // G = scale (softmax - onehot), the block's softmax = exponentials x factor.
                let mut s = super::output::<E>(rows * items);
                for (r, (row, er)) in s.chunks_mut(items).zip(e.chunks(items)).enumerate() {
                    let f = factors[(r0 + r) * blocks + b] * scale;
                    for (x, &p) in row.iter_mut().zip(er) {
                        *x = p * f;
                    }
                    let t = targets[r0 + r];
                    if (c0..c0 + items).contains(&t) {
                        row[t - c0] -= scale;
                    }
                }
                block_dw(&s, hs, d, (r0, rows), dw_b);
                block_dh(&s, ws, d, (c0, items), part);
            });
        let dh_chunk = &mut dh[r0 * d..(r0 + rows) * d];
        dh_chunk.copy_from_slice(&partial[..rows * d]);
        for part in partial[..blocks * rows * d].chunks(rows * d).skip(1) {
            dh_chunk.iter_mut().zip(part).for_each(|(a, &b)| *a += b);
        }
    }
    (
        Tensor::from_buffer(dh, &[n, d]),
        Tensor::from_buffer(dw, &[c, d]),
    )
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use rand::SeedableRng;

    fn inputs(n: usize, c: usize, d: usize, seed: u64) -> (Tensor<f64>, Tensor<f64>, Vec<usize>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let h = Tensor::uniform(&[n, d], -1.5, 1.5, &mut rng);
        let w = Tensor::uniform(&[c, d], -1.5, 1.5, &mut rng);
        let targets = (0..n).map(|r| (r * 7919 + seed as usize) % c).collect();
        (h, w, targets)
    }

    /// The unfused ops: the loss and `(G w, G^T h)` for `G = g (softmax - onehot) / n`.
    fn unfused(
        h: &Tensor<f64>,
        w: &Tensor<f64>,
        t: &[usize],
        g: f64,
    ) -> (f64, Tensor<f64>, Tensor<f64>) {
        let (loss, grad) = h.matmul_t(w, false, true).cross_entropy(t);
        let grad = grad.mul_scalar(g);
        (loss, grad.matmul(w), grad.matmul_t(h, true, false))
    }

    fn max_diff(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
        assert_eq!(a.shape(), b.shape());
        a.to_vec()
            .iter()
            .zip(b.to_vec())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn equals_the_unfused_ops_across_blocks_and_row_chunks() {
        // 300 rows = a full chunk and a part; 1,100 classes = two full blocks and a part.
        for (n, c, d) in [(300, 1100, 8), (5, 3, 4), (1, 512, 2), (256, 513, 3)] {
            let (h, w, t) = inputs(n, c, d, (n * c) as u64);
            let (loss, saved) = h.linear_cross_entropy(&w, &t);
            let (want, want_dh, want_dw) = unfused(&h, &w, &t, 0.75);
            assert!((loss - want).abs() < 1e-12, "{n}x{c}: {loss} vs {want}");
            let (dh, dw) = h.linear_cross_entropy_backward(&w, &t, &saved, 0.75);
            assert!(max_diff(&dh, &want_dh) < 1e-14, "{n}x{c} dh");
            assert!(max_diff(&dw, &want_dw) < 1e-14, "{n}x{c} dw");
        }
    }

    #[test]
    fn large_scores_do_not_overflow() {
        // Scores around 1e3: exp would overflow without the running maximum.
        let h = Tensor::<f32>::from_f64s(&[30.0, 40.0], &[1, 2]);
        let w = Tensor::from_f64s(&[30.0, 0.0, 0.0, 25.0, 1.0, 1.0], &[3, 2]);
        let (loss, saved) = h.linear_cross_entropy(&w, &[1]);
        // Scores 900, 1000, 70: loss = lse - 1000 = ln(1 + e^-100 + ...) ~ 0.
        assert!(loss.abs() < 1e-3, "{loss}");
        let (dh, dw) = h.linear_cross_entropy_backward(&w, &[1], &saved, 1.0);
        assert!(dh
            .to_vec()
            .iter()
            .chain(&dw.to_vec())
            .all(|v| v.is_finite()));
    }

    #[test]
    fn f32_blocks_agree_with_the_f64_unfused_ops() {
        // d = 64 and blocks of 512: the f32 products go through short_gemm (where the
        // processor has AVX2), the 76-item tail block through matrixmultiply.
        let (n, c, d) = (40, 1100, 64);
        let (h, w, t) = inputs(n, c, d, 3);
        let f32s = |x: &Tensor<f64>| Tensor::<f32>::from_f64s(&x.to_vec(), x.shape());
        let (h32, w32) = (f32s(&h), f32s(&w));
        let (h, w) = (
            Tensor::from_vec(h32.to_vec().iter().map(|&v| v as f64).collect(), &[n, d]),
            Tensor::from_vec(w32.to_vec().iter().map(|&v| v as f64).collect(), &[c, d]),
        );
        let (loss, saved) = h32.linear_cross_entropy(&w32, &t);
        let (want, want_dh, want_dw) = unfused(&h, &w, &t, 1.0);
        assert!((loss - want).abs() < 1e-4 * want.abs(), "{loss} vs {want}");
        let (dh, dw) = h32.linear_cross_entropy_backward(&w32, &t, &saved, 1.0);
        let widen = |x: &Tensor<f32>| {
            Tensor::from_vec(x.to_vec().iter().map(|&v| v as f64).collect(), x.shape())
        };
        // Gradients are O(1/n); f32 rounding over sums of 1,100 terms.
        assert!(
            max_diff(&widen(&dh), &want_dh) < 1e-5,
            "dh {}",
            max_diff(&widen(&dh), &want_dh)
        );
        assert!(
            max_diff(&widen(&dw), &want_dw) < 1e-5,
            "dw {}",
            max_diff(&widen(&dw), &want_dw)
        );
    }

    #[test]
    fn the_thread_count_does_not_change_the_bits() {
        let (h, w, t) = inputs(300, 1500, 16, 7);
        let f32s = |x: &Tensor<f64>| Tensor::<f32>::from_f64s(&x.to_vec(), x.shape());
        let (h, w) = (f32s(&h), f32s(&w));
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (loss, saved) = h.linear_cross_entropy(&w, &t);
                let (dh, dw) = h.linear_cross_entropy_backward(&w, &t, &saved, 1.0);
                let bits =
                    |x: &Tensor<f32>| x.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (loss.to_bits(), bits(&saved), bits(&dh), bits(&dw))
            })
        };
        assert_eq!(run(1), run(3));
    }
}
