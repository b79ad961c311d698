//! Row-wise softmax, log-softmax and layer norm over the last axis, parallel over rows.

use rayon::prelude::*;

use super::PAR_MIN;
use crate::{Element, Tensor};

pub(super) fn softmax<E: Element>(x: &Tensor<E>, log: bool) -> Tensor<E> {
    let n = *x.shape().last().unwrap();
    let xs = x.as_slice();
    let mut out = vec![E::zero(); xs.len()];
    if n == 0 {
        return Tensor::from_vec(out, x.shape());
    }
    let row = |(o, i): (&mut [E], &[E])| {
        if log {
            E::log_softmax_row(i, o)
        } else {
            E::softmax_row(i, o)
        }
    };
    if xs.len() >= PAR_MIN {
        out.par_chunks_mut(n).zip(xs.par_chunks(n)).for_each(row);
    } else {
        out.chunks_mut(n).zip(xs.chunks(n)).for_each(row);
    }
    Tensor::from_vec(out, x.shape())
}

pub(super) fn layer_norm<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    beta: &Tensor<E>,
    eps: E,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let n = *x.shape().last().unwrap();
    let rows = x.numel() / n.max(1);
    let (xs, g, b) = (x.as_slice(), gamma.as_slice(), beta.as_slice());
    let mut out = vec![E::zero(); xs.len()];
    let mut stats = vec![(E::zero(), E::zero()); rows];
    let row = |o: &mut [E], i: &[E], s: &mut (E, E)| *s = E::layer_norm_row(i, g, b, eps, o);
    if xs.len() >= PAR_MIN {
        out.par_chunks_mut(n)
            .zip(xs.par_chunks(n))
            .zip(stats.par_iter_mut())
            .for_each(|((o, i), s)| row(o, i, s));
    } else {
        out.chunks_mut(n)
            .zip(xs.chunks(n))
            .zip(stats.iter_mut())
            .for_each(|((o, i), s)| row(o, i, s));
    }
    let sh = &x.shape()[..x.rank() - 1];
    let mean = Tensor::from_vec(stats.iter().map(|s| s.0).collect(), sh);
    let rstd = Tensor::from_vec(stats.iter().map(|s| s.1).collect(), sh);
    (Tensor::from_vec(out, x.shape()), mean, rstd)
}
