//! Copies that change layout: permute, concat, narrow, index-select (through ndarray).

use ndarray::{ArrayViewD, Axis, Slice};

use crate::{Element, Tensor};

fn view<E: Element>(x: &Tensor<E>) -> ArrayViewD<'_, E> {
    ArrayViewD::from_shape(x.shape(), x.as_slice()).expect("contiguous row-major")
}

pub(super) fn permute<E: Element>(x: &Tensor<E>, perm: &[usize]) -> Tensor<E> {
    Tensor::from_ndarray(
        view(x)
            .permuted_axes(perm)
            .as_standard_layout()
            .into_owned(),
    )
}

pub(super) fn concat<E: Element>(xs: &[&Tensor<E>], axis: usize) -> Tensor<E> {
    let views: Vec<_> = xs.iter().map(|x| view(x)).collect();
    Tensor::from_ndarray(ndarray::concatenate(Axis(axis), &views).expect("shapes checked"))
}

pub(super) fn narrow<E: Element>(
    x: &Tensor<E>,
    axis: usize,
    start: usize,
    len: usize,
) -> Tensor<E> {
    let v = view(x);
    let s = v.slice_axis(Axis(axis), Slice::from(start..start + len));
    Tensor::from_ndarray(s.as_standard_layout().into_owned())
}

pub(super) fn index_select<E: Element>(x: &Tensor<E>, axis: usize, idx: &[usize]) -> Tensor<E> {
    Tensor::from_ndarray(view(x).select(Axis(axis), idx))
}

pub(super) fn broadcast_to<E: Element>(x: &Tensor<E>, shape: &[usize]) -> Tensor<E> {
    let v = view(x);
    Tensor::from_ndarray(
        v.broadcast(shape)
            .expect("broadcast checked")
            .as_standard_layout()
            .into_owned(),
    )
}
