//! Elementwise kernels: unary maps, broadcast binary ops, masked fill.

use ndarray::{ArrayViewD, IxDyn, Zip};
use rayon::prelude::*;

use super::PAR_MIN;
use crate::backend::{BinaryOp, UnaryOp};
use crate::shape::numel;
use crate::{Element, Tensor};

const CHUNK: usize = 8192;

/// Runs `f(in_chunk, out_chunk)` over matching chunks, in parallel when large.
fn map_chunks<E: Element>(x: &[E], out: &mut [E], f: impl Fn(&[E], &mut [E]) + Sync) {
    if x.len() >= PAR_MIN {
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, i)| f(i, o));
    } else {
        f(x, out);
    }
}

fn scalar_fn<E: Element>(op: UnaryOp<E>) -> impl Fn(E) -> E + Sync {
    move |v: E| match op {
        UnaryOp::Neg => -v,
        UnaryOp::Exp => v.exp(),
        UnaryOp::Ln => v.ln(),
        UnaryOp::Sqrt => v.sqrt(),
        UnaryOp::Tanh => v.tanh(),
        UnaryOp::Erf => v.erf(),
        UnaryOp::Gelu => {
            E::from_f64(0.5)
                * v
                * (E::one() + (v * E::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf())
        }
        UnaryOp::Relu => v.max(E::zero()),
        UnaryOp::Recip => v.recip(),
        UnaryOp::Square => v * v,
        UnaryOp::Abs => v.abs(),
        UnaryOp::AddScalar(c) => v + c,
        UnaryOp::MulScalar(c) => v * c,
        UnaryOp::ClampMin(c) => v.max(c),
        UnaryOp::ClampMax(c) => v.min(c),
        UnaryOp::GtScalar(c) => {
            if v > c {
                E::one()
            } else {
                E::zero()
            }
        }
        UnaryOp::Powf(c) => v.powf(c),
    }
}

pub(super) fn unary<E: Element>(op: UnaryOp<E>, x: &Tensor<E>) -> Tensor<E> {
    let xs = x.as_slice();
    let mut out = vec![E::zero(); xs.len()];
    match op {
        // The hot ones go to the SIMD kernels.
        UnaryOp::Gelu => map_chunks(xs, &mut out, |i, o| E::gelu_slice(i, o)),
        UnaryOp::Exp => map_chunks(xs, &mut out, |i, o| E::exp_slice(i, o)),
        _ => {
            let f = scalar_fn(op);
            map_chunks(xs, &mut out, |i, o| {
                o.iter_mut().zip(i).for_each(|(o, &v)| *o = f(v))
            });
        }
    }
    Tensor::from_vec(out, x.shape())
}

pub(super) fn gelu_backward<E: Element>(x: &Tensor<E>, gy: &Tensor<E>) -> Tensor<E> {
    let (xs, gs) = (x.as_slice(), gy.as_slice());
    let mut out = vec![E::zero(); xs.len()];
    if xs.len() >= PAR_MIN {
        out.par_chunks_mut(CHUNK)
            .zip(xs.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK)))
            .for_each(|(o, (x, g))| E::gelu_backward_slice(x, g, o));
    } else {
        E::gelu_backward_slice(xs, gs, &mut out);
    }
    Tensor::from_vec(out, x.shape())
}

#[inline]
fn apply<E: Element>(op: BinaryOp, a: E, b: E) -> E {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
    }
}

pub(super) fn binary<E: Element>(
    op: BinaryOp,
    a: &Tensor<E>,
    b: &Tensor<E>,
    out_shape: &[usize],
) -> Tensor<E> {
    let (av, bv) = (a.as_slice(), b.as_slice());
    let n = numel(out_shape);
    let mut out = vec![E::zero(); n];
    if a.shape() == b.shape() {
        // Same shape: a straight zip.
        let f = |o: &mut [E], x: &[E], y: &[E]| {
            for i in 0..o.len() {
                o[i] = apply(op, x[i], y[i]);
            }
        };
        if n >= PAR_MIN {
            out.par_chunks_mut(CHUNK)
                .zip(av.par_chunks(CHUNK).zip(bv.par_chunks(CHUNK)))
                .for_each(|(o, (x, y))| f(o, x, y));
        } else {
            f(&mut out, av, bv);
        }
    } else if a.shape() == out_shape && out_shape.ends_with(b.shape()) {
        // `b` repeats along the leading axes (a bias row, a scalar): row by row.
        let m = bv.len().max(1);
        let f = |o: &mut [E], x: &[E]| {
            for (oc, xc) in o.chunks_mut(m).zip(x.chunks(m)) {
                for i in 0..oc.len() {
                    oc[i] = apply(op, xc[i], bv[i]);
                }
            }
        };
        let rows_per = (CHUNK / m).max(1) * m;
        if n >= PAR_MIN {
            out.par_chunks_mut(rows_per)
                .zip(av.par_chunks(rows_per))
                .for_each(|(o, x)| f(o, x));
        } else {
            f(&mut out, av);
        }
    } else {
        // General broadcasting through ndarray.
        let sh = IxDyn(out_shape);
        let aa = ArrayViewD::from_shape(a.shape(), av).expect("contiguous");
        let bb = ArrayViewD::from_shape(b.shape(), bv).expect("contiguous");
        let ab = aa.broadcast(sh.clone()).expect("broadcast checked");
        let bb = bb.broadcast(sh.clone()).expect("broadcast checked");
        let mut o = ndarray::ArrayViewMutD::from_shape(sh, &mut out).expect("contiguous");
        Zip::from(&mut o)
            .and(&ab)
            .and(&bb)
            .for_each(|o, &x, &y| *o = apply(op, x, y));
    }
    Tensor::from_vec(out, out_shape)
}

pub(super) fn masked_fill<E: Element>(x: &Tensor<E>, mask: &Tensor<E>, value: E) -> Tensor<E> {
    let mut out = x.as_slice().to_vec();
    let sh = IxDyn(x.shape());
    let m = ArrayViewD::from_shape(mask.shape(), mask.as_slice()).expect("contiguous");
    let m = m.broadcast(sh.clone()).expect("broadcast checked");
    let mut o = ndarray::ArrayViewMutD::from_shape(sh, &mut out).expect("contiguous");
    Zip::from(&mut o).and(&m).for_each(|o, &k| {
        if k != E::zero() {
            *o = value
        }
    });
    Tensor::from_vec(out, x.shape())
}
