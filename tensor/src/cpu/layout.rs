//! Copies that change layout: permute, concat, narrow, index-select, broadcast (through
//! ndarray views, written into pooled output buffers).

use ndarray::{ArrayViewD, ArrayViewMutD, Axis, Slice};

use crate::shape::numel;
use crate::{Element, Tensor};

fn view<E: Element>(x: &Tensor<E>) -> ArrayViewD<'_, E> {
    ArrayViewD::from_shape(x.shape(), x.as_slice()).expect("contiguous row-major")
}

/// A tensor of `shape` whose every element `fill` writes through a row-major view.
fn written<E: Element>(shape: &[usize], fill: impl FnOnce(ArrayViewMutD<'_, E>)) -> Tensor<E> {
    let mut out = super::output(numel(shape));
    fill(ArrayViewMutD::from_shape(shape, &mut out[..]).expect("contiguous row-major"));
    Tensor::from_buffer(out, shape)
}

pub(super) fn permute<E: Element>(x: &Tensor<E>, perm: &[usize]) -> Tensor<E> {
    let v = view(x).permuted_axes(perm);
    let shape = v.shape().to_vec();
    written(&shape, |mut o| o.assign(&v))
}

pub(super) fn concat<E: Element>(xs: &[&Tensor<E>], axis: usize) -> Tensor<E> {
    let mut shape = xs[0].shape().to_vec();
    shape[axis] = xs.iter().map(|x| x.shape()[axis]).sum();
    written(&shape, |mut o| {
        let mut start = 0;
        for x in xs {
            let len = x.shape()[axis];
            o.slice_axis_mut(Axis(axis), Slice::from(start..start + len))
                .assign(&view(x));
            start += len;
        }
    })
}

pub(super) fn narrow<E: Element>(
    x: &Tensor<E>,
    axis: usize,
    start: usize,
    len: usize,
) -> Tensor<E> {
    let v = view(x);
    let s = v.slice_axis(Axis(axis), Slice::from(start..start + len));
    written(s.shape(), |mut o| o.assign(&s))
}

pub(super) fn index_select<E: Element>(x: &Tensor<E>, axis: usize, idx: &[usize]) -> Tensor<E> {
    let v = view(x);
    let mut shape = x.shape().to_vec();
    shape[axis] = idx.len();
    written(&shape, |mut o| {
        for (p, &j) in idx.iter().enumerate() {
            o.index_axis_mut(Axis(axis), p)
                .assign(&v.index_axis(Axis(axis), j));
        }
    })
}

pub(super) fn broadcast_to<E: Element>(x: &Tensor<E>, shape: &[usize]) -> Tensor<E> {
    let v = view(x);
    let b = v.broadcast(shape).expect("broadcast checked");
    written(shape, |mut o| o.assign(&b))
}
