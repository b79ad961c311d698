//! Reductions along one axis, with and without the index of the extreme element.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::{buf, CudaBackend};
use crate::backend::{ReduceOp, UnaryOp};
use crate::shape::split_at_axis;
use crate::{Element, Tensor};

/// `shape` without `axis`.
fn out_shape(shape: &[usize], axis: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s.remove(axis);
    s
}

/// Rows per chunk of the two-pass reduction.
const CHUNK: usize = 64;

/// Reduces the middle axis of `x` seen as `[outer, len, inner]` (op codes of `reduce` in
/// `kernels.cu`: 0 sum, 1 mean, 2 max, 3 min) into `outer * inner` values. With few outputs
/// and a long axis (a bias gradient) a one-thread-per-output loop would leave the GPU idle,
/// so the axis is first cut into chunks of [`CHUNK`] rows summed in parallel.
pub(super) fn reduce_buf<E: Element>(
    b: &CudaBackend,
    x: &CudaSlice<E>,
    outer: usize,
    len: usize,
    inner: usize,
    code: i32,
) -> CudaSlice<E> {
    let outputs = outer * inner;
    if outputs >= 1 << 16 || len <= 4 * CHUNK {
        return one_pass(b, x, outer, len, inner, code);
    }
    // Mean is a sum here, scaled at the end as the CPU does (sum * (1 / len)).
    let base = if code == 1 { 0 } else { code };
    let chunks = len.div_ceil(CHUNK);
    let mut part = b.alloc::<E>(outer * chunks * inner);
    if let Some(cfg) = CudaBackend::grid(outer * chunks * inner) {
        let (o, l, i, ch) = (outer as u64, len as u64, inner as u64, CHUNK as u64);
        let f = b.func::<E>("reduce_partial");
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(x)
            .arg(&mut part)
            .arg(&o)
            .arg(&l)
            .arg(&i)
            .arg(&ch)
            .arg(&base);
        // SAFETY: x holds outer * len * inner elements, part outer * chunks * inner.
        b.check("reduce_partial", unsafe { lb.launch(cfg) });
    }
    let y = one_pass(b, &part, outer, chunks, inner, base);
    if code != 1 {
        return y;
    }
    let mut scaled = b.alloc::<E>(outputs);
    if let Some(cfg) = CudaBackend::grid(outputs) {
        let scale = UnaryOp::MulScalar(E::one() / E::from_f64(len as f64));
        let (n, c) = (outputs as u64, scale.operand());
        let f = b.func::<E>(scale.kernel());
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(&y).arg(&mut scaled).arg(&n).arg(&c);
        // SAFETY: y and scaled hold `outputs` elements.
        b.check(scale.kernel(), unsafe { lb.launch(cfg) });
    }
    scaled
}

/// One thread per output, looping along the axis in the CPU's order.
fn one_pass<E: Element>(
    b: &CudaBackend,
    x: &CudaSlice<E>,
    outer: usize,
    len: usize,
    inner: usize,
    code: i32,
) -> CudaSlice<E> {
    let mut y = b.alloc::<E>(outer * inner);
    if let Some(cfg) = CudaBackend::grid(outer * inner) {
        let (o, l, i) = (outer as u64, len as u64, inner as u64);
        let f = b.func::<E>("reduce");
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(x).arg(&mut y).arg(&o).arg(&l).arg(&i).arg(&code);
        // SAFETY: x holds outer * len * inner elements, y outer * inner.
        b.check("reduce", unsafe { lb.launch(cfg) });
    }
    y
}

pub(super) fn reduce<E: Element>(
    b: &CudaBackend,
    op: ReduceOp,
    x: &Tensor<E>,
    axis: usize,
) -> Tensor<E> {
    let (outer, len, inner) = split_at_axis(x.shape(), axis);
    let code: i32 = match op {
        ReduceOp::Sum => 0,
        ReduceOp::Mean => 1,
        ReduceOp::Max => 2,
        ReduceOp::Min => 3,
    };
    let y = reduce_buf(b, buf(x), outer, len, inner, code);
    b.wrap(y, &out_shape(x.shape(), axis))
}

pub(super) fn arg_reduce<E: Element>(
    b: &CudaBackend,
    max: bool,
    x: &Tensor<E>,
    axis: usize,
) -> (Tensor<E>, Vec<usize>) {
    let (outer, len, inner) = split_at_axis(x.shape(), axis);
    assert!(len > 0, "max/min over an empty axis");
    let mut y = b.alloc::<E>(outer * inner);
    let mut idx = b.alloc::<u64>(outer * inner);
    if let Some(cfg) = CudaBackend::grid(outer * inner) {
        let (o, l, i, mx) = (outer as u64, len as u64, inner as u64, max as i32);
        let f = b.func::<E>("arg_reduce");
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(buf(x))
            .arg(&mut y)
            .arg(&mut idx)
            .arg(&o)
            .arg(&l)
            .arg(&i)
            .arg(&mx);
        // SAFETY: x holds outer * len * inner elements, y and idx outer * inner.
        b.check("arg_reduce", unsafe { lb.launch(cfg) });
    }
    // The trait returns host indices: this copy waits for the kernel.
    let idx = b.download_idx(&idx, outer * inner);
    (b.wrap(y, &out_shape(x.shape(), axis)), idx)
}
