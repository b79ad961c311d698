//! Gathers and their scatter-add adjoints, layout copies (broadcast, permute, narrow,
//! concat) and per-row top-k.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::elementwise::broadcast_strides;
use super::{buf, CudaBackend};
use crate::shape::{numel, split_at_axis};
use crate::{Element, Tensor};

/// `x` seen as `[outer, len, inner]` read at `[o, idx[j], i]` into `[outer, k, inner]`
/// (`per_elem`: one index per output element, as `torch.gather`).
#[allow(clippy::too_many_arguments)]
fn select<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    idx: &[usize],
    outer: usize,
    len: usize,
    k: usize,
    inner: usize,
    per_elem: bool,
    out_shape: &[usize],
) -> Tensor<E> {
    let mut y = b.alloc::<E>(outer * k * inner);
    launch_indexed(
        b,
        "index_select",
        x,
        idx,
        &mut y,
        [outer, len, k, inner],
        per_elem,
    );
    b.wrap(y, out_shape)
}

pub(super) fn index_select<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    axis: usize,
    idx: &[usize],
) -> Tensor<E> {
    let (outer, len, inner) = split_at_axis(x.shape(), axis);
    let mut shape = x.shape().to_vec();
    shape[axis] = idx.len();
    select(b, x, idx, outer, len, idx.len(), inner, false, &shape)
}

pub(super) fn gather<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    axis: usize,
    idx: &[usize],
    out_shape: &[usize],
) -> Tensor<E> {
    let (outer, len, inner) = split_at_axis(x.shape(), axis);
    select(
        b,
        x,
        idx,
        outer,
        len,
        out_shape[axis],
        inner,
        true,
        out_shape,
    )
}

/// Launches `index_select` or `index_add` (same arguments: source, indices, destination,
/// `outer, len, k, inner`, per-element indices) over the `outer * k * inner` indexed places.
fn launch_indexed<E: Element>(
    b: &CudaBackend,
    kernel: &str,
    src: &Tensor<E>,
    idx: &[usize],
    dst: &mut CudaSlice<E>,
    [outer, len, k, inner]: [usize; 4],
    per_elem: bool,
) {
    let Some(cfg) = CudaBackend::grid(outer * k * inner) else {
        return;
    };
    let d_idx = b.upload_idx(idx);
    let dims = [outer, len, k, inner].map(|v| v as u64);
    let pe = per_elem as i32;
    let f = b.func::<E>(kernel);
    let mut lb = b.stream.launch_builder(&f);
    lb.arg(buf(src))
        .arg(&d_idx)
        .arg(dst)
        .arg(&dims[0])
        .arg(&dims[1])
        .arg(&dims[2])
        .arg(&dims[3])
        .arg(&pe);
    // SAFETY: the indices are below len (checked by Tensor's gathers and scatters).
    b.check(kernel, unsafe { lb.launch(cfg) });
}

/// The adjoint of [`select`]: a zero tensor of `shape` with `src` added at the indexed
/// places along `axis` (atomics, since indices repeat; the order of the additions, and so
/// the last bits of f32 sums, may differ from the CPU's).
pub(super) fn index_add<E: Element>(
    b: &CudaBackend,
    src: &Tensor<E>,
    idx: &[usize],
    shape: &[usize],
    axis: usize,
    per_elem: bool,
) -> Tensor<E> {
    let (outer, len, inner) = split_at_axis(shape, axis);
    let k = src.shape()[axis];
    let mut out = b.zeros::<E>(numel(shape));
    launch_indexed(
        b,
        "index_add",
        src,
        idx,
        &mut out,
        [outer, len, k, inner],
        per_elem,
    );
    b.wrap(out, shape)
}

/// `dst[idx[i]] += src[i]` over rows, in place (atomics).
pub(super) fn add_rows<E: Element>(
    b: &CudaBackend,
    dst: &mut Tensor<E>,
    src: &Tensor<E>,
    idx: &[usize],
) {
    let (n_rows, cols) = (dst.shape()[0], dst.shape()[1]);
    launch_indexed(
        b,
        "index_add",
        src,
        idx,
        super::buf_mut(dst),
        [1, n_rows, idx.len(), cols],
        false,
    );
}

/// `y[i] = x[base + sum_d coord_d(i) * strides[d]]` over the output `dims`.
fn strided_copy<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    dims: &[usize],
    strides: &[u64],
    base: usize,
) -> Tensor<E> {
    let n = numel(dims);
    let mut y = b.alloc::<E>(n);
    if let Some(cfg) = CudaBackend::grid(n) {
        let mut meta: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        meta.extend_from_slice(strides);
        let meta = b.upload_u64(&meta);
        let (n64, rank, base) = (n as u64, dims.len() as i32, base as u64);
        let f = b.func::<E>("strided_copy");
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(buf(x))
            .arg(&mut y)
            .arg(&n64)
            .arg(&meta)
            .arg(&rank)
            .arg(&base);
        // SAFETY: the callers' strides keep every offset inside x.
        b.check("strided_copy", unsafe { lb.launch(cfg) });
    }
    b.wrap(y, dims)
}

/// Row-major strides of `shape`.
fn strides_of(shape: &[usize]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1] as u64;
    }
    s
}

pub(super) fn broadcast_to<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    shape: &[usize],
) -> Tensor<E> {
    strided_copy(b, x, shape, &broadcast_strides(x.shape(), shape), 0)
}

pub(super) fn permute<E: Element>(b: &CudaBackend, x: &Tensor<E>, perm: &[usize]) -> Tensor<E> {
    let s = strides_of(x.shape());
    let dims: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let strides: Vec<u64> = perm.iter().map(|&p| s[p]).collect();
    strided_copy(b, x, &dims, &strides, 0)
}

pub(super) fn narrow<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    axis: usize,
    start: usize,
    len: usize,
) -> Tensor<E> {
    let s = strides_of(x.shape());
    let mut dims = x.shape().to_vec();
    dims[axis] = len;
    strided_copy(b, x, &dims, &s, start * s[axis] as usize)
}

pub(super) fn concat<E: Element>(b: &CudaBackend, xs: &[&Tensor<E>], axis: usize) -> Tensor<E> {
    let mut shape = xs[0].shape().to_vec();
    shape[axis] = xs.iter().map(|x| x.shape()[axis]).sum();
    let (outer, total, inner) = split_at_axis(&shape, axis);
    let mut out = b.alloc::<E>(numel(&shape));
    let dst_row = (total * inner) as u64;
    let mut off = 0u64;
    let f = b.func::<E>("concat_block");
    for x in xs {
        let src_row = (x.shape()[axis] * inner) as u64;
        if let Some(cfg) = CudaBackend::grid(outer * src_row as usize) {
            let o = outer as u64;
            let mut lb = b.stream.launch_builder(&f);
            lb.arg(buf(*x))
                .arg(&mut out)
                .arg(&o)
                .arg(&src_row)
                .arg(&dst_row)
                .arg(&off);
            // SAFETY: each input's block lies inside the output's rows.
            b.check("concat_block", unsafe { lb.launch(cfg) });
        }
        off += src_row;
    }
    b.wrap(out, &shape)
}

pub(super) fn topk_rows<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    k: usize,
) -> (Tensor<E>, Vec<usize>) {
    let n = *x.shape().last().expect("top-k over the last axis");
    let rows = x.numel().checked_div(n).unwrap_or(0);
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("rank >= 1") = k;
    let mut vals = b.zeros::<E>(rows * k);
    let mut idx = b.zeros::<u64>(rows * k);
    if let (Some(cfg), true) = (CudaBackend::rows_grid(rows), k > 0) {
        let (r, n, k) = (rows as u64, n as u64, k as u64);
        let f = b.func::<E>("topk_rows");
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(buf(x))
            .arg(&mut vals)
            .arg(&mut idx)
            .arg(&r)
            .arg(&n)
            .arg(&k);
        // SAFETY: x holds rows * n elements, vals and idx rows * k (k <= n, checked by Tensor).
        b.check("topk_rows", unsafe { lb.launch(cfg) });
    }
    // The trait returns host indices: this copy waits for the kernel.
    let idx = b.download_idx(&idx, rows * k);
    (b.wrap(vals, &shape), idx)
}

pub(super) fn count_greater<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    cols: &[usize],
) -> Vec<usize> {
    let n = *x.shape().last().expect("count over the last axis");
    let rows = cols.len();
    let mut counts = b.zeros::<u64>(rows);
    if let Some(cfg) = CudaBackend::rows_grid(rows) {
        let c = b.upload_idx(cols);
        let (r, n) = (rows as u64, n as u64);
        let f = b.func::<E>("count_greater");
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(buf(x)).arg(&c).arg(&mut counts).arg(&r).arg(&n);
        // SAFETY: x holds rows * n elements, c and counts one per row, every c[r] < n
        // (checked by Tensor::count_greater).
        b.check("count_greater", unsafe { lb.launch(cfg) });
    }
    b.download_idx(&counts, rows)
}
