//! [`Tensor::gru_recurrence`] and its backward on the CPU. The sequences (longest first)
//! are cut into blocks of about equal rows, one task each: a sequence's recurrence depends
//! on nothing outside it, so a block runs all its steps without waiting for the others.
//! Per step, the block's active prefix of the state goes through one GEMM with `W_hh`, then
//! the gates of each active row; the block's state and products stay in two scratch
//! buffers. Each row is computed by one task in one order, whatever the split.

use std::ops::Range;

use rayon::prelude::*;

use super::matmul::SendPtr;
use crate::attention::SeqLayout;
use crate::gru::{gru_dims, GruSchedule};
use crate::unary_op::sigmoid;
use crate::{Element, Tensor};

/// Below this many multiply-adds of `W_hh` products the op runs as one block.
const PAR_FLOPS: usize = 1 << 18;

/// Contiguous ranges of `order` with about `rows / threads` rows each.
fn blocks(order: &[usize], layout: &SeqLayout, h: usize) -> Vec<Range<usize>> {
    let threads = rayon::current_num_threads();
    let rows = layout.rows();
    if threads == 1 || rows * 3 * h * h < PAR_FLOPS {
        return std::iter::once(0..order.len()).collect();
    }
    let target = rows.div_ceil(threads);
    let (mut out, mut start, mut acc) = (Vec::with_capacity(threads), 0, 0);
    for (i, &s) in order.iter().enumerate() {
        acc += layout.range(s).len();
        if acc >= target {
            out.push(start..i + 1);
            (start, acc) = (i + 1, 0);
        }
    }
    if start < order.len() {
        out.push(start..order.len());
    }
    out
}

/// Each block with its rows of two per-sequence scratch buffers (`H` and `3H` wide).
type BlockPart<'a, E> = (Range<usize>, &'a mut [E], &'a mut [E]);

fn block_parts<'a, E>(
    blocks: &[Range<usize>],
    h: usize,
    mut narrow: &'a mut [E],
    mut wide: &'a mut [E],
) -> Vec<BlockPart<'a, E>> {
    let mut parts = Vec::with_capacity(blocks.len());
    for b in blocks {
        let (n0, n1) = std::mem::take(&mut narrow).split_at_mut(b.len() * h);
        let (w0, w1) = std::mem::take(&mut wide).split_at_mut(b.len() * 3 * h);
        parts.push((b.clone(), n0, w0));
        (narrow, wide) = (n1, w1);
    }
    parts
}

/// `C = A W^T` (`beta = 0`) or `C += A W` (`beta = 1`, `transpose` false) for the first
/// `m` rows of `a`: `A` `[m, k]`, `w` `[3H, H]`.
///
/// # Safety
/// `a` holds `m x k`, `c` `m x n` elements (row-major), `w` the `3H x H` weight.
unsafe fn product<E: Element>(
    m: usize,
    a: *const E,
    w: *const E,
    h: usize,
    transpose: bool,
    c: *mut E,
) {
    if transpose {
        // [m, H] x W^T [H, 3H]: W^T's (k, j) is w[j H + k].
        E::gemm(
            m,
            h,
            3 * h,
            E::one(),
            a,
            h as isize,
            1,
            w,
            1,
            h as isize,
            E::zero(),
            c,
            3 * h as isize,
            1,
        )
    } else {
        // [m, 3H] x W [3H, H], added to c.
        E::gemm(
            m,
            3 * h,
            h,
            E::one(),
            a,
            3 * h as isize,
            1,
            w,
            h as isize,
            1,
            E::one(),
            c,
            h as isize,
            1,
        )
    }
}

pub(super) fn gru_recurrence<E: Element>(
    gi: &Tensor<E>,
    w_hh: &Tensor<E>,
    b_hh: Option<&Tensor<E>>,
    layout: &SeqLayout,
) -> (Tensor<E>, Tensor<E>) {
    let (rows, h) = gru_dims(gi, w_hh, layout);
    let schedule = GruSchedule::new(layout);
    let order = &schedule.order;
    let (giv, wv) = (gi.as_slice(), w_hh.as_slice());
    let bv = b_hh.map(|b| b.as_slice());
    // Every row of both is written by the task of its sequence.
    let mut states = super::output::<E>(rows * h);
    let mut saved = super::output::<E>(rows * 4 * h);
    let (sp, vp) = (SendPtr(states.as_mut_ptr()), SendPtr(saved.as_mut_ptr()));
    // One state and one product buffer per block, cut from two pooled allocations.
    let mut state = super::zeros::<E>(order.len() * h);
    let mut gh = super::output::<E>(order.len() * 3 * h);
    block_parts(&blocks(order, layout, h), h, &mut state, &mut gh)
        .into_par_iter()
        .for_each(|(block, hs, gh)| {
            let (sp, vp) = (&sp, &vp);
            let seqs = &order[block];
            let longest = seqs.first().map_or(0, |&s| layout.range(s).len());
            let mut active = seqs.len();
            for t in 0..longest {
                while active > 0 && layout.range(seqs[active - 1]).len() <= t {
                    active -= 1;
                }
                // SAFETY: hs holds seqs.len() >= active rows of H, gh of 3H.
                unsafe { product(active, hs.as_ptr(), wv.as_ptr(), h, true, gh.as_mut_ptr()) };
                for (i, &s) in seqs[..active].iter().enumerate() {
                    let row = layout.range(s).start + t;
                    let g_in = &giv[row * 3 * h..(row + 1) * 3 * h];
                    let g_h = &gh[i * 3 * h..(i + 1) * 3 * h];
                    // SAFETY: `row` belongs to sequence s, which only this task computes.
                    let (out, keep) = unsafe {
                        (
                            std::slice::from_raw_parts_mut(sp.0.add(row * h), h),
                            std::slice::from_raw_parts_mut(vp.0.add(row * 4 * h), 4 * h),
                        )
                    };
                    let state = &mut hs[i * h..(i + 1) * h];
                    for j in 0..h {
                        let b = |k: usize| bv.map_or(E::zero(), |b| b[k * h + j]);
                        let r = sigmoid(g_in[j] + (g_h[j] + b(0)));
                        let z = sigmoid(g_in[h + j] + (g_h[h + j] + b(1)));
                        let gh_n = g_h[2 * h + j] + b(2);
                        let n = (g_in[2 * h + j] + r * gh_n).tanh();
                        let next = n + z * (state[j] - n);
                        state[j] = next;
                        out[j] = next;
                        (keep[j], keep[h + j], keep[2 * h + j], keep[3 * h + j]) = (r, z, n, gh_n);
                    }
                }
            }
        });
    (
        Tensor::from_buffer(states, &[rows, h]),
        Tensor::from_buffer(saved, &[rows, 4 * h]),
    )
}

pub(super) fn gru_recurrence_backward<E: Element>(
    g: &Tensor<E>,
    w_hh: &Tensor<E>,
    states: &Tensor<E>,
    saved: &Tensor<E>,
    layout: &SeqLayout,
) -> (Tensor<E>, Tensor<E>) {
    let (rows, h) = (layout.rows(), w_hh.shape()[1]);
    let schedule = GruSchedule::new(layout);
    let order = &schedule.order;
    let (gv, wv, stv, svv) = (
        g.as_slice(),
        w_hh.as_slice(),
        states.as_slice(),
        saved.as_slice(),
    );
    let mut dgi = super::output::<E>(rows * 3 * h);
    let mut dgh = super::output::<E>(rows * 3 * h);
    let (ip, hp) = (SendPtr(dgi.as_mut_ptr()), SendPtr(dgh.as_mut_ptr()));
    // Per block: the state's gradient (prefix layout) and this step's dgh rows.
    let mut dstate = super::zeros::<E>(order.len() * h);
    let mut step = super::output::<E>(order.len() * 3 * h);
    let one = E::one();
    block_parts(&blocks(order, layout, h), h, &mut dstate, &mut step)
        .into_par_iter()
        .for_each(|(block, dh, dstep)| {
            let (ip, hp) = (&ip, &hp);
            let seqs = &order[block];
            let longest = seqs.first().map_or(0, |&s| layout.range(s).len());
            // Going back in time the active prefix only grows (sorted longest first).
            let mut active = 0;
            for t in (0..longest).rev() {
                while active < seqs.len() && layout.range(seqs[active]).len() > t {
                    active += 1;
                }
                for (i, &s) in seqs[..active].iter().enumerate() {
                    let row = layout.range(s).start + t;
                    let keep = &svv[row * 4 * h..(row + 1) * 4 * h];
                    // SAFETY: `row` belongs to sequence s, which only this task computes.
                    let (di, dg) = unsafe {
                        (
                            std::slice::from_raw_parts_mut(ip.0.add(row * 3 * h), 3 * h),
                            std::slice::from_raw_parts_mut(hp.0.add(row * 3 * h), 3 * h),
                        )
                    };
                    let ds = &mut dstep[i * 3 * h..(i + 1) * 3 * h];
                    let d_state = &mut dh[i * h..(i + 1) * h];
                    for j in 0..h {
                        let (r, z, n, gh_n) =
                            (keep[j], keep[h + j], keep[2 * h + j], keep[3 * h + j]);
                        let h_prev = if t == 0 {
                            E::zero()
                        } else {
                            stv[(row - 1) * h + j]
                        };
                        let d = d_state[j] + gv[row * h + j];
                        let dn = d * (one - z);
                        let dz = d * (h_prev - n);
                        let da_n = dn * (one - n * n);
                        let da_z = dz * z * (one - z);
                        let da_r = da_n * gh_n * r * (one - r);
                        (di[j], di[h + j], di[2 * h + j]) = (da_r, da_z, da_n);
                        (ds[j], ds[h + j], ds[2 * h + j]) = (da_r, da_z, da_n * r);
                        d_state[j] = d * z;
                    }
                    dg.copy_from_slice(ds);
                }
                // SAFETY: dstep holds active rows of 3H, dh of H.
                unsafe {
                    product(
                        active,
                        dstep.as_ptr(),
                        wv.as_ptr(),
                        h,
                        false,
                        dh.as_mut_ptr(),
                    )
                };
            }
        });
    (
        Tensor::from_buffer(dgi, &[rows, 3 * h]),
        Tensor::from_buffer(dgh, &[rows, 3 * h]),
    )
}
