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

/// `out[o, i] = op over j of x[o, j, i]`, accumulating whole rows of `inner` at a time.
fn reduce_strided<E: Element>(
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
            let row = &xs[(o * len + j) * inner..(o * len + j + 1) * inner];
            match op {
                ReduceOp::Sum | ReduceOp::Mean => {
                    acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v)
                }
                ReduceOp::Max => acc.iter_mut().zip(row).for_each(|(a, &v)| *a = a.max(v)),
                ReduceOp::Min => acc.iter_mut().zip(row).for_each(|(a, &v)| *a = a.min(v)),
            }
        }
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
    let mut val = super::zeros(outer * inner);
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
    (Tensor::from_vec(val, &out_shape(x.shape(), axis)), idx)
}
