//! [`Tensor::conv_max_pool`] without unfolding: a sequence's windows of height `h` are its
//! `[l, d]` rows read with row stride `d` and length `h d` (overlapping rows of one
//! row-major matrix), so each sequence's convolution is one strided GEMM
//! `[l - h + 1, h d] x [h d, n]` into a scratch block, whose column maxima are the output.
//! The backward touches only the maximising windows. Parallel over sequences (forward and
//! `dx`) and over filters (`dw`, `dbias`); each output element is computed by one thread in
//! one order, so the numbers do not depend on the thread count.

use rayon::prelude::*;

use crate::conv_max_pool::conv_dims;
use crate::{Element, Tensor};

/// Below this many multiply-adds the op runs on one thread.
const PAR_FLOPS: usize = 1 << 18;

/// Sequences per parallel task: every thread a few blocks, each with its own scratch rows.
fn block_len(b: usize, work: usize) -> usize {
    let threads = rayon::current_num_threads();
    if work < PAR_FLOPS || threads == 1 {
        b.max(1)
    } else {
        b.div_ceil(threads * 4).max(1)
    }
}

pub(super) fn conv_max_pool<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    bias: &Tensor<E>,
) -> (Tensor<E>, Vec<usize>) {
    let (b, l, d, n, h) = conv_dims(x, w);
    let steps = l - h + 1;
    let (xv, wv, bv) = (x.as_slice(), w.as_slice(), bias.as_slice());
    let per = block_len(b, b * steps * h * d * n);
    // Every element of `out` and `at` is written below.
    let mut out = super::output::<E>(b * n);
    let mut at = vec![0usize; b * n];
    let mut scratch = super::output::<E>(b.div_ceil(per) * steps * n);
    out.par_chunks_mut(per * n)
        .zip(at.par_chunks_mut(per * n))
        .zip(scratch.par_chunks_mut(steps * n))
        .enumerate()
        .for_each(|(blk, ((out, at), y))| {
            for (i, (out, at)) in out.chunks_mut(n).zip(at.chunks_mut(n)).enumerate() {
                let s = blk * per + i;
                // SAFETY: sequence s's windows are rows t * d .. t * d + h d of its l * d
                // elements (t < steps, so t d + h d <= l d); w is [n, h d] row-major, i.e. the
                // h d x n matrix w^T with strides (1, h d); y holds steps * n.
                unsafe {
                    E::gemm(
                        steps,
                        h * d,
                        n,
                        E::one(),
                        xv.as_ptr().add(s * l * d),
                        d as isize,
                        1,
                        wv.as_ptr(),
                        1,
                        (h * d) as isize,
                        E::zero(),
                        y.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                };
                for f in 0..n {
                    // The first maximum, as `max_axis`.
                    let (mut best, mut t_best) = (y[f], 0);
                    for t in 1..steps {
                        if y[t * n + f] > best {
                            (best, t_best) = (y[t * n + f], t);
                        }
                    }
                    out[f] = best + bv[f];
                    at[f] = t_best;
                }
            }
        });
    (Tensor::from_buffer(out, &[b, n]), at)
}

pub(super) fn conv_max_pool_backward<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    at: &[usize],
    g: &Tensor<E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let (b, l, d, n, h) = conv_dims(x, w);
    let (xv, wv, gv) = (x.as_slice(), w.as_slice(), g.as_slice());
    let hd = h * d;
    let per = block_len(b, b * n * hd);
    // dx: each sequence's rows gather the filters of the windows that won there.
    let mut dx = super::zeros::<E>(b * l * d);
    dx.par_chunks_mut(per * l * d)
        .enumerate()
        .for_each(|(blk, dx)| {
            for (i, dx) in dx.chunks_mut(l * d).enumerate() {
                let s = blk * per + i;
                for f in 0..n {
                    let gf = gv[s * n + f];
                    let t = at[s * n + f];
                    let win = &mut dx[t * d..t * d + hd];
                    for (o, &wf) in win.iter_mut().zip(&wv[f * hd..(f + 1) * hd]) {
                        *o += gf * wf;
                    }
                }
            }
        });
    // dw and dbias: each filter sums its winning windows over the sequences, in order.
    let mut dw = super::zeros::<E>(n * hd);
    let mut db = super::output::<E>(n);
    dw.par_chunks_mut(hd)
        .zip(db.par_chunks_mut(1))
        .enumerate()
        .with_min_len(if b * n * hd < PAR_FLOPS { n.max(1) } else { 1 })
        .for_each(|(f, (dw, db))| {
            let mut sum = E::zero();
            for s in 0..b {
                let gf = gv[s * n + f];
                sum += gf;
                let t = at[s * n + f];
                let win = &xv[(s * l + t) * d..(s * l + t) * d + hd];
                for (o, &xv) in dw.iter_mut().zip(win) {
                    *o += gf * xv;
                }
            }
            db[0] = sum;
        });
    (
        Tensor::from_buffer(dx, &[b, l, d]),
        Tensor::from_buffer(dw, &[n, h, d]),
        Tensor::from_buffer(db, &[n]),
    )
}
