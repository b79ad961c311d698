//! Reductions along one axis, with and without indices.

use crate::backend::ReduceOp;
use crate::shape::split_at_axis;
use crate::{Element, Tensor};

fn out_shape(shape: &[usize], axis: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s.remove(axis);
    s
}

pub(super) fn reduce<E: Element>(op: ReduceOp, x: &Tensor<E>, axis: usize) -> Tensor<E> {
    let (outer, len, inner) = split_at_axis(x.shape(), axis);
    let xs = x.as_slice();
    let init = match op {
        ReduceOp::Sum | ReduceOp::Mean => E::zero(),
        ReduceOp::Max => E::neg_infinity(),
        ReduceOp::Min => E::infinity(),
    };
    let mut out = vec![init; outer * inner];
    if inner == 1 {
        // Reducing the last axis: one contiguous row per output.
        for (o, row) in out.iter_mut().zip(xs.chunks_exact(len.max(1))) {
            *o = match op {
                ReduceOp::Sum | ReduceOp::Mean => row.iter().copied().sum(),
                ReduceOp::Max => row.iter().copied().fold(init, E::max),
                ReduceOp::Min => row.iter().copied().fold(init, E::min),
            };
        }
    } else {
        reduce_strided(op, xs, &mut out, outer, len, inner);
    }
    if op == ReduceOp::Mean {
        let inv = E::one() / E::from_f64(len as f64);
        out.iter_mut().for_each(|v| *v *= inv);
    }
    Tensor::from_vec(out, &out_shape(x.shape(), axis))
}

/// Rows per partial result when a column reduction runs in parallel: fixed, so the result
/// does not depend on the number of threads.
const REDUCE_CHUNK_ROWS: usize = 256;

/// `out[o, i] = op over j of x[o, j, i]`, accumulating whole rows of `inner` at a time.
fn reduce_strided<E: Element>(
    op: ReduceOp,
    xs: &[E],
    out: &mut [E],
    outer: usize,
    len: usize,
    inner: usize,
) {
    if outer == 1 && xs.len() >= super::PAR_MIN {
        // A bias gradient ([rows, n] -> [n]): partial results over fixed chunks of rows in
        // parallel, combined in chunk order.
        use rayon::prelude::*;
        let parts: Vec<Vec<E>> = xs
            .par_chunks(REDUCE_CHUNK_ROWS * inner)
            .map(|chunk| {
                let mut acc = out.to_vec();
                let rows = chunk.len() / inner;
                reduce_serial(op, chunk, &mut acc, 1, rows, inner);
                acc
            })
            .collect();
        let mut first = true;
        for p in parts {
            if first {
                out.copy_from_slice(&p);
                first = false;
                continue;
            }
            accumulate(op, out, &p);
        }
        return;
    }
    reduce_serial(op, xs, out, outer, len, inner);
}

fn reduce_serial<E: Element>(
    op: ReduceOp,
    xs: &[E],
    out: &mut [E],
    outer: usize,
    len: usize,
    inner: usize,
) {
    for o in 0..outer {
        let acc = &mut out[o * inner..(o + 1) * inner];
        for j in 0..len {
            accumulate(
                op,
                acc,
                &xs[(o * len + j) * inner..(o * len + j + 1) * inner],
            );
        }
    }
}

/// `acc = op(acc, row)` elementwise.
fn accumulate<E: Element>(op: ReduceOp, acc: &mut [E], row: &[E]) {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v),
        ReduceOp::Max => acc.iter_mut().zip(row).for_each(|(a, &v)| *a = a.max(v)),
        ReduceOp::Min => acc.iter_mut().zip(row).for_each(|(a, &v)| *a = a.min(v)),
    }
}

pub(super) fn arg_reduce<E: Element>(
    max: bool,
    x: &Tensor<E>,
    axis: usize,
) -> (Tensor<E>, Vec<usize>) {
    let (outer, len, inner) = split_at_axis(x.shape(), axis);
    assert!(len > 0, "max/min over an empty axis");
    let xs = x.as_slice();
    let mut val = super::output(outer * inner);
    let mut idx = vec![0usize; outer * inner];
    for o in 0..outer {
        for i in 0..inner {
            let mut best = xs[o * len * inner + i];
            let mut bi = 0;
            for j in 1..len {
                let v = xs[(o * len + j) * inner + i];
                if (max && v > best) || (!max && v < best) {
                    best = v;
                    bi = j;
                }
            }
            val[o * inner + i] = best;
            idx[o * inner + i] = bi;
        }
    }
    (Tensor::from_buffer(val, &out_shape(x.shape(), axis)), idx)
}
