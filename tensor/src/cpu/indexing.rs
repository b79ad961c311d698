//! Row gather / scatter-add, gather along an axis and its adjoint, per-row top-k.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::shape::split_at_axis;
use crate::{Element, Tensor};

pub(super) fn gather_rows<E: Element>(table: &Tensor<E>, idx: &[usize]) -> Tensor<E> {
    let cols = table.shape()[1];
    let t = table.as_slice();
    let mut out = super::output(idx.len() * cols);
    for (o, &i) in out.chunks_mut(cols.max(1)).zip(idx) {
        o.copy_from_slice(&t[i * cols..(i + 1) * cols]);
    }
    Tensor::from_buffer(out, &[idx.len(), cols])
}

pub(super) fn scatter_add_rows<E: Element>(
    src: &Tensor<E>,
    idx: &[usize],
    n_rows: usize,
) -> Tensor<E> {
    let cols = src.shape()[1];
    let s = src.as_slice();
    let mut out = super::zeros(n_rows * cols);
    for (r, &i) in idx.iter().enumerate() {
        let dst = &mut out[i * cols..(i + 1) * cols];
        dst.iter_mut()
            .zip(&s[r * cols..(r + 1) * cols])
            .for_each(|(d, &v)| *d += v);
    }
    Tensor::from_buffer(out, &[n_rows, cols])
}

/// `dst[idx[i]] += src[i]` in place, each distinct row's rows first summed in index order
/// (`(0 + r_1) + r_2 ...`, the scatter's order) and then added once: the bits of
/// `dst + scatter_add_rows(src, idx)`.
pub(super) fn add_rows<E: Element>(dst: &mut Tensor<E>, src: &Tensor<E>, idx: &[usize]) {
    let cols = src.shape()[1];
    let s = src.as_slice();
    // The positions by row, in index order within a row (a stable sort).
    let mut by_row: Vec<usize> = (0..idx.len()).collect();
    by_row.sort_by_key(|&k| idx[k]);
    let d = dst.as_mut_slice();
    let mut sum = vec![E::zero(); cols];
    for group in by_row.chunk_by(|&a, &b| idx[a] == idx[b]) {
        let row = &mut d[idx[group[0]] * cols..(idx[group[0]] + 1) * cols];
        if let [k] = group {
            // One lookup of the row: 0 + r = r exactly.
            for (o, &v) in row.iter_mut().zip(&s[k * cols..(k + 1) * cols]) {
                *o += v;
            }
            continue;
        }
        sum.fill(E::zero());
        for &k in group {
            for (a, &v) in sum.iter_mut().zip(&s[k * cols..(k + 1) * cols]) {
                *a += v;
            }
        }
        for (o, &v) in row.iter_mut().zip(&sum) {
            *o += v;
        }
    }
}

pub(super) fn gather<E: Element>(
    x: &Tensor<E>,
    axis: usize,
    idx: &[usize],
    out_shape: &[usize],
) -> Tensor<E> {
    let (outer, len, inner) = split_at_axis(x.shape(), axis);
    let k = out_shape[axis];
    let xs = x.as_slice();
    let mut out = super::output(idx.len());
    for o in 0..outer {
        for j in 0..k {
            for i in 0..inner {
                let p = (o * k + j) * inner + i;
                out[p] = xs[(o * len + idx[p]) * inner + i];
            }
        }
    }
    Tensor::from_buffer(out, out_shape)
}

pub(super) fn scatter_add<E: Element>(
    src: &Tensor<E>,
    axis: usize,
    idx: &[usize],
    shape: &[usize],
) -> Tensor<E> {
    let (outer, len, inner) = split_at_axis(shape, axis);
    let k = src.shape()[axis];
    let s = src.as_slice();
    let mut out = super::zeros(outer * len * inner);
    for o in 0..outer {
        for j in 0..k {
            for i in 0..inner {
                let p = (o * k + j) * inner + i;
                out[(o * len + idx[p]) * inner + i] += s[p];
            }
        }
    }
    Tensor::from_buffer(out, shape)
}

/// A heap entry ordered so that the heap's top is the worst of the kept `k`.
struct Entry<E>(E, usize);
impl<E: Element> PartialEq for Entry<E> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl<E: Element> Eq for Entry<E> {}
impl<E: Element> PartialOrd for Entry<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E: Element> Ord for Entry<E> {
    // "Greater" = worse: a lower value, or the same value at a higher index.
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.partial_cmp(&self.0)
            .unwrap_or(Ordering::Equal)
            .then(self.1.cmp(&o.1))
    }
}

pub(super) fn count_greater<E: Element>(x: &Tensor<E>, cols: &[usize]) -> Vec<usize> {
    let n = *x.shape().last().unwrap();
    x.as_slice()
        .par_chunks(n)
        .zip(cols.par_iter())
        .map(|(row, &c)| {
            let t = row[c];
            row.iter().filter(|&&v| v > t).count()
        })
        .collect()
}

/// The top `k` of one row, best first, into `vals` / `idx` (a size-k heap, O(n log k)).
pub(crate) fn topk_row<E: Element>(row: &[E], k: usize, vals: &mut [E], idx: &mut [usize]) {
    let mut heap: BinaryHeap<Entry<E>> = BinaryHeap::with_capacity(k + 1);
    for (j, &v) in row.iter().enumerate() {
        if heap.len() < k {
            heap.push(Entry(v, j));
        } else if let Some(top) = heap.peek() {
            if v > top.0 {
                heap.pop();
                heap.push(Entry(v, j));
            }
        }
    }
    let sorted = heap.into_sorted_vec();
    for (p, e) in sorted.into_iter().enumerate() {
        vals[p] = e.0;
        idx[p] = e.1;
    }
}

pub(super) fn topk_rows<E: Element>(x: &Tensor<E>, k: usize) -> (Tensor<E>, Vec<usize>) {
    let n = *x.shape().last().unwrap();
    let rows = x.numel().checked_div(n).unwrap_or(0);
    let mut vals = super::output(rows * k);
    let mut idx = vec![0usize; rows * k];
    if k > 0 && rows > 0 {
        vals.par_chunks_mut(k)
            .zip(idx.par_chunks_mut(k))
            .zip(x.as_slice().par_chunks(n))
            .for_each(|((v, i), r)| topk_row(r, k, v, i));
    }
    let mut shape = x.shape().to_vec();
    *shape.last_mut().unwrap() = k;
    (Tensor::from_buffer(vals, &shape), idx)
}
