//! GEMM through matrixmultiply, transposes as strides, parallel over batches or row blocks.

use rayon::prelude::*;

use crate::{Element, Tensor};

/// Below this many multiply-adds a product runs on one thread.
const PAR_FLOPS: usize = 1 << 18;

/// `C[m, n] = op(A) op(B)` for one matrix pair given by pointers and their storage shapes.
///
/// # Safety
/// `a` holds `m*k` and `b` holds `k*n` elements; `c` holds `m*n` and aliases neither.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_one<E: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: *const E,
    ta: bool,
    b: *const E,
    tb: bool,
    c: *mut E,
) {
    // A stored [m, k] (rsa = k, csa = 1) or, transposed, [k, m] (rsa = 1, csa = m).
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
    E::gemm(
        m,
        k,
        n,
        E::one(),
        a,
        rsa,
        csa,
        b,
        rsb,
        csb,
        E::zero(),
        c,
        n as isize,
        1,
    );
}

struct SendPtr<E>(*mut E);
unsafe impl<E> Send for SendPtr<E> {}
unsafe impl<E> Sync for SendPtr<E> {}

pub(super) fn matmul<E: Element>(a: &Tensor<E>, b: &Tensor<E>, ta: bool, tb: bool) -> Tensor<E> {
    let (ra, rb) = (a.rank(), b.rank());
    let (ar, ac) = (a.shape()[ra - 2], a.shape()[ra - 1]);
    let (br, bc) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let n = if tb { br } else { bc };
    let batch: usize = a.shape()[..ra - 2].iter().product();
    let b_shared = rb == 2;
    let mut shape = a.shape()[..ra - 2].to_vec();
    shape.extend([m, n]);
    let mut out = vec![E::zero(); batch * m * n];
    let (ap, bp) = (a.as_slice(), b.as_slice());
    let work = batch * m * n * k;
    if batch > 1 && work >= PAR_FLOPS {
        out.par_chunks_mut(m * n).enumerate().for_each(|(i, c)| {
            let bo = if b_shared { 0 } else { i * k * n };
            // SAFETY: the slices have the sizes computed above.
            unsafe {
                gemm_one(
                    m,
                    k,
                    n,
                    ap[i * m * k..].as_ptr(),
                    ta,
                    bp[bo..].as_ptr(),
                    tb,
                    c.as_mut_ptr(),
                )
            }
        });
    } else if batch == 1 && work >= PAR_FLOPS && m >= 64 && rayon::current_num_threads() > 1 {
        // One big product: split the rows of C across threads (deterministic: each row of C
        // is computed by one thread in the same order whatever the split).
        let threads = rayon::current_num_threads();
        let rows = m.div_ceil(threads * 2).max(16);
        let cp = SendPtr(out.as_mut_ptr());
        (0..m.div_ceil(rows)).into_par_iter().for_each(|blk| {
            let r0 = blk * rows;
            let mr = rows.min(m - r0);
            let cp = &cp;
            // Row block r0.. of op(A): untransposed it starts at row r0; transposed, at column r0.
            let a0 = if ta { r0 } else { r0 * k };
            let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
            let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
            // SAFETY: blocks write disjoint row ranges of C.
            unsafe {
                E::gemm(
                    mr,
                    k,
                    n,
                    E::one(),
                    ap.as_ptr().add(a0),
                    rsa,
                    csa,
                    bp.as_ptr(),
                    rsb,
                    csb,
                    E::zero(),
                    cp.0.add(r0 * n),
                    n as isize,
                    1,
                )
            }
        });
    } else {
        for i in 0..batch {
            let bo = if b_shared { 0 } else { i * k * n };
            // SAFETY: as above.
            unsafe {
                gemm_one(
                    m,
                    k,
                    n,
                    ap[i * m * k..].as_ptr(),
                    ta,
                    bp[bo..].as_ptr(),
                    tb,
                    out[i * m * n..].as_mut_ptr(),
                )
            }
        }
    }
    Tensor::from_vec(out, &shape)
}
