//! Reductions along one axis, with and without the index of the extreme element.

use cudarc::driver::PushKernelArg;

use super::{buf, CudaBackend};
use crate::backend::ReduceOp;
use crate::shape::split_at_axis;
use crate::{Element, Tensor};

/// `shape` without `axis`.
fn out_shape(shape: &[usize], axis: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s.remove(axis);
    s
}

pub(super) fn reduce<E: Element>(
    b: &CudaBackend,
    op: ReduceOp,
    x: &Tensor<E>,
    axis: usize,
) -> Tensor<E> {
    let (outer, len, inner) = split_at_axis(x.shape(), axis);
    let mut y = b.alloc::<E>(outer * inner);
    if let Some(cfg) = CudaBackend::grid(outer * inner) {
        let code: i32 = match op {
            ReduceOp::Sum => 0,
            ReduceOp::Mean => 1,
            ReduceOp::Max => 2,
            ReduceOp::Min => 3,
        };
        let (o, l, i) = (outer as u64, len as u64, inner as u64);
        let f = b.func::<E>("reduce");
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(buf(x))
            .arg(&mut y)
            .arg(&o)
            .arg(&l)
            .arg(&i)
            .arg(&code);
        // SAFETY: x holds outer * len * inner elements, y outer * inner.
        b.check("reduce", unsafe { lb.launch(cfg) });
    }
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
