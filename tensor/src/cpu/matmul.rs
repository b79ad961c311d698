//! GEMM through matrixmultiply, transposes as strides, parallel over batches or row blocks;
//! `f32` products with a short inner dimension and a row-major `A` go through
//! [`short_gemm`](super::short_gemm), which does not pack `A`.

use rayon::prelude::*;

use super::short_gemm;
use crate::{Element, Tensor};

/// Below this many multiply-adds a product runs on one thread.
const PAR_FLOPS: usize = 1 << 18;

/// A raw pointer that crosses into rayon's closures: each task writes a disjoint part.
pub(super) struct SendPtr<E>(pub(super) *mut E);
unsafe impl<E> Send for SendPtr<E> {}
unsafe impl<E> Sync for SendPtr<E> {}

/// `C = A B (+ bias)` through [`short_gemm`]: `A` row-major `m x k`, `B` `k x n` with
/// strides `(rsb, csb)`, `C` row-major `m x n`, in row blocks across the threads (each row
/// of `C` is computed by one thread in the same order whatever the split).
///
/// # Safety
/// `short_gemm::applies(k, n)`; the pointers describe valid matrices (`bias`: `n` floats).
unsafe fn short_rows(
    a: *const f32,
    (m, k, n): (usize, usize, usize),
    (b, rsb, csb): (*const f32, usize, usize),
    bias: Option<*const f32>,
    c: *mut f32,
) {
    let panels = short_gemm::PanelB::new(b, k, n, rsb, csb);
    let threads = rayon::current_num_threads();
    if m * n * k < PAR_FLOPS || threads == 1 {
        short_gemm::rows(a, k, &panels, n, bias, c, 0, m);
        return;
    }
    let (a, c, bias) = (
        SendPtr(a as *mut f32),
        SendPtr(c),
        bias.map(|b| SendPtr(b as *mut f32)),
    );
    let rows = m.div_ceil(threads * 4).next_multiple_of(short_gemm::MR);
    (0..m.div_ceil(rows)).into_par_iter().for_each(|blk| {
        let r0 = blk * rows;
        // Whole wrappers, not their fields: the closure must capture the Sync types.
        let (a, c, bias) = (&a, &c, &bias);
        let bias = bias.as_ref().map(|b| b.0 as *const f32);
        // SAFETY: row blocks write disjoint rows of C.
        unsafe { short_gemm::rows(a.0, k, &panels, n, bias, c.0, r0, rows.min(m - r0)) };
    });
}

/// `x w^T + bias` (`x`: `[m, k]`, `w`: `[n, k]`, `bias`: `[n]`), the bias added as each tile
/// of the product is stored when the product goes through [`short_gemm`]: the same bits as
/// the product followed by the broadcast addition, without a second pass over the output.
pub(super) fn linear<E: Element>(x: &Tensor<E>, w: &Tensor<E>, bias: &Tensor<E>) -> Tensor<E> {
    let (m, k, n) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let is_f32 = std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>();
    if !is_f32 || !short_gemm::applies(k, n) {
        return matmul(x, w, false, true).binary(crate::BinaryOp::Add, bias);
    }
    let mut out = super::output::<E>(m * n);
    let (xp, wp, bp) = (x.as_slice(), w.as_slice(), bias.as_slice());
    // SAFETY: E is f32 (checked above); w is n x k row-major, i.e. the k x n matrix w^T with
    // strides (1, k); bias holds n floats; out has room for m x n.
    unsafe {
        short_rows(
            xp.as_ptr() as *const f32,
            (m, k, n),
            (wp.as_ptr() as *const f32, 1, k),
            Some(bp.as_ptr() as *const f32),
            out.as_mut_ptr() as *mut f32,
        )
    }
    Tensor::from_buffer(out, &[m, n])
}

pub(super) fn matmul<E: Element>(a: &Tensor<E>, b: &Tensor<E>, ta: bool, tb: bool) -> Tensor<E> {
    let (ra, rb) = (a.rank(), b.rank());
    let (ar, ac) = (a.shape()[ra - 2], a.shape()[ra - 1]);
    let (br, bc) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let n = if tb { br } else { bc };
    let mut batch: usize = a.shape()[..ra - 2].iter().product();
    let mut shape = a.shape()[..ra - 2].to_vec();
    shape.extend([m, n]);
    let total = batch * m * n;
    if k == 0 {
        return Tensor::from_vec(vec![E::zero(); total], &shape);
    }
    // A batch of untransposed A against one shared B is one tall product.
    let mut rows_m = m;
    if rb == 2 && !ta && batch > 1 {
        rows_m = batch * m;
        batch = 1;
    }
    let (ap, bp) = (a.as_slice(), b.as_slice());
    // The GEMM overwrites every element (beta = 0: C is not read), so the output is not
    // zeroed first: zeroing the 256 x 12,101 score matrix alone cost 8% of a training step.
    let mut out = super::output::<E>(total);
    let cp = SendPtr(out.as_mut_ptr());
    let work = total * k;
    let (rsa, csa) = if ta {
        (1, rows_m as isize)
    } else {
        (k as isize, 1)
    };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    // One (row block of one) product: rows r0..r0+mr of matrix i.
    let block = |i: usize, r0: usize, mr: usize| {
        let cp = &cp;
        let bo = if rb == 2 { 0 } else { i * k * n };
        // Row r0 of op(A): untransposed it starts at row r0, transposed at column r0.
        let a0 = i * rows_m * k + if ta { r0 } else { r0 * k };
        // SAFETY: the offsets stay inside A, B and the capacity of C; blocks write disjoint
        // ranges of C.
        unsafe {
            E::gemm(
                mr,
                k,
                n,
                E::one(),
                ap.as_ptr().add(a0),
                rsa,
                csa,
                bp.as_ptr().add(bo),
                rsb,
                csb,
                E::zero(),
                cp.0.add(i * rows_m * n + r0 * n),
                n as isize,
                1,
            )
        }
    };
    let threads = rayon::current_num_threads();
    let is_f32 = std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>();
    if is_f32 && batch == 1 && !ta && short_gemm::applies(k, n) {
        // SAFETY: E is f32 (checked above), so the casts only rename the element type; B's
        // strides describe the k x n matrix op(B); C has room for rows_m x n.
        unsafe {
            short_rows(
                ap.as_ptr() as *const f32,
                (rows_m, k, n),
                (bp.as_ptr() as *const f32, rsb as usize, csb as usize),
                None,
                cp.0 as *mut f32,
            )
        }
    } else if is_f32 && batch == 1 && ta && csb == 1 && short_gemm::applies_transposed(m, n) {
        // SAFETY: as above; A is k x m and B k x n, both row-major (ta, csb == 1).
        unsafe {
            let (a32, b32) = (
                SendPtr(ap.as_ptr() as *mut f32),
                SendPtr(bp.as_ptr() as *mut f32),
            );
            let c32 = SendPtr(cp.0 as *mut f32);
            if work < PAR_FLOPS || threads == 1 {
                short_gemm::transposed_rows(a32.0, m, k, b32.0, n, c32.0, 0, m);
            } else {
                // One row group per thread, each passing once over A and B in k blocks.
                let rows = m.div_ceil(threads);
                (0..m.div_ceil(rows)).into_par_iter().for_each(|g| {
                    let (a32, b32, c32) = (&a32, &b32, &c32);
                    let r0 = g * rows;
                    short_gemm::transposed_rows(a32.0, m, k, b32.0, n, c32.0, r0, rows.min(m - r0));
                });
            }
        }
    } else if work < PAR_FLOPS || threads == 1 {
        (0..batch).for_each(|i| block(i, 0, rows_m));
    } else if batch > 1 {
        (0..batch).into_par_iter().for_each(|i| block(i, 0, rows_m));
    } else if n > 4 * rows_m {
        // A wide product (the item scores, 256 x 12,101): split the columns of C, so that
        // each thread packs only its share of B (a row split would pack all of B once per
        // block). Deterministic: each element of C is computed by one thread, in the same
        // order whatever the split.
        let cols = n.div_ceil(threads * 2).next_multiple_of(16);
        (0..n.div_ceil(cols)).into_par_iter().for_each(|blk| {
            let cp = &cp;
            let c0 = blk * cols;
            let nc = cols.min(n - c0);
            let b0 = if tb { c0 * k } else { c0 };
            // SAFETY: as in `block`; column blocks write disjoint columns of C.
            unsafe {
                E::gemm(
                    rows_m,
                    k,
                    nc,
                    E::one(),
                    ap.as_ptr(),
                    rsa,
                    csa,
                    bp.as_ptr().add(b0),
                    rsb,
                    csb,
                    E::zero(),
                    cp.0.add(c0),
                    n as isize,
                    1,
                )
            }
        });
    } else {
        // One big product: split the rows of C across threads (deterministic: each row of C
        // is computed by one thread in the same order whatever the split).
        let rows = rows_m.div_ceil(threads * 2).max(16);
        (0..rows_m.div_ceil(rows)).into_par_iter().for_each(|blk| {
            let r0 = blk * rows;
            block(0, r0, rows.min(rows_m - r0))
        });
    }
    Tensor::from_buffer(out, &shape)
}
