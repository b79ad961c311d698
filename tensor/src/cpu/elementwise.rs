//! Elementwise kernels: unary maps, broadcast binary ops, masked fill.

use ndarray::{ArrayViewD, IxDyn, Zip};
use rayon::prelude::*;

use super::{Buffer, PAR_MIN};
use crate::backend::{BinaryOp, UnaryOp};
use crate::binary_op::BinaryKernel;
use crate::dropout_mask::DropoutMask;
use crate::shape::numel;
use crate::unary_op::UnaryKernel;
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

/// `f` over every element, written into a (pooled) output buffer, in parallel when large.
/// Generic over `f`, so each op's loop is compiled (and vectorised) on its own instead of
/// matching on the op per element.
fn map<E: Element>(xs: &[E], f: impl Fn(E) -> E + Sync + Send) -> Buffer<E> {
    let mut out = super::output(xs.len());
    map_chunks(xs, &mut out, |x, o| {
        o.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
    });
    out
}

/// A [`UnaryKernel`] that maps a slice into a pooled buffer: each op's loop compiled on
/// its own.
struct MapSlice<'a, E>(&'a [E]);

impl<E: Element> UnaryKernel<E> for MapSlice<'_, E> {
    type Output = Buffer<E>;
    fn run<F: Fn(E) -> E + Copy + Send + Sync>(self, f: F) -> Buffer<E> {
        map(self.0, f)
    }
}

pub(super) fn unary<E: Element>(op: UnaryOp<E>, x: &Tensor<E>) -> Tensor<E> {
    let xs = x.as_slice();
    let out = match op {
        // The hot ones go to the SIMD slice kernels (tested against `UnaryOp::apply`).
        UnaryOp::Gelu | UnaryOp::Exp => {
            let mut out = super::output(xs.len());
            let kernel = if op == UnaryOp::Gelu {
                E::gelu_slice
            } else {
                E::exp_slice
            };
            map_chunks(xs, &mut out, kernel);
            out
        }
        _ => op.visit(MapSlice(xs)),
    };
    Tensor::from_buffer(out, x.shape())
}

pub(super) fn unary_backward<E: Element>(
    op: UnaryOp<E>,
    x: &Tensor<E>,
    y: &Tensor<E>,
    gy: &Tensor<E>,
) -> Tensor<E> {
    let (xs, ys, gs) = (x.as_slice(), y.as_slice(), gy.as_slice());
    let mut out = super::output(xs.len());
    // GELU's derivative is the hot one (every transformer layer): its SIMD kernel.
    let chunk = |o: &mut [E], x: &[E], y: &[E], g: &[E]| {
        if op == UnaryOp::Gelu {
            E::gelu_backward_slice(x, g, o);
        } else {
            for (((o, &x), &y), &g) in o.iter_mut().zip(x).zip(y).zip(g) {
                *o = g * op.derivative(x, y);
            }
        }
    };
    if xs.len() >= PAR_MIN {
        out.par_chunks_mut(CHUNK)
            .zip(xs.par_chunks(CHUNK))
            .zip(ys.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK)))
            .for_each(|((o, x), (y, g))| chunk(o, x, y, g));
    } else {
        chunk(&mut out, xs, ys, gs);
    }
    Tensor::from_buffer(out, x.shape())
}

pub(super) fn binary<E: Element>(
    op: BinaryOp,
    a: &Tensor<E>,
    b: &Tensor<E>,
    out_shape: &[usize],
) -> Tensor<E> {
    op.visit(Broadcast { a, b, out_shape })
}

/// A [`BinaryKernel`] over two broadcast operands.
struct Broadcast<'a, E: Element> {
    a: &'a Tensor<E>,
    b: &'a Tensor<E>,
    out_shape: &'a [usize],
}

impl<E: Element> BinaryKernel<E> for Broadcast<'_, E> {
    type Output = Tensor<E>;
    fn run<F: Fn(E, E) -> E + Copy + Send + Sync>(self, f: F) -> Tensor<E> {
        binary_with(f, self.a, self.b, self.out_shape)
    }
}

fn binary_with<E: Element, F: Fn(E, E) -> E + Sync + Send + Copy>(
    f: F,
    a: &Tensor<E>,
    b: &Tensor<E>,
    out_shape: &[usize],
) -> Tensor<E> {
    let (av, bv) = (a.as_slice(), b.as_slice());
    let n = numel(out_shape);
    let mut out = super::output(n);
    if a.shape() == b.shape() {
        // Same shape: a straight zip.
        let zip = |(o, (x, y)): (&mut [E], (&[E], &[E]))| {
            for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                *o = f(x, y);
            }
        };
        if n >= PAR_MIN {
            out.par_chunks_mut(CHUNK)
                .zip(av.par_chunks(CHUNK).zip(bv.par_chunks(CHUNK)))
                .for_each(zip);
        } else {
            zip((&mut out, (av, bv)));
        }
        return Tensor::from_buffer(out, out_shape);
    }
    if a.shape() == out_shape && bv.len() == 1 {
        // `b` is one value (a rank-0 or all-ones shape): a straight map.
        let y = bv[0];
        let map = |(o, x): (&mut [E], &[E])| {
            for (o, &x) in o.iter_mut().zip(x) {
                *o = f(x, y);
            }
        };
        if n >= PAR_MIN {
            out.par_chunks_mut(CHUNK)
                .zip(av.par_chunks(CHUNK))
                .for_each(map);
        } else {
            map((&mut out, av));
        }
        return Tensor::from_buffer(out, out_shape);
    }
    if a.shape() == out_shape && out_shape.ends_with(b.shape()) {
        // `b` repeats along the leading axes (a bias row): row by row.
        let m = bv.len().max(1);
        let rows = |o: &mut [E], x: &[E]| {
            for (oc, xc) in o.chunks_mut(m).zip(x.chunks(m)) {
                for ((o, &x), &y) in oc.iter_mut().zip(xc).zip(bv) {
                    *o = f(x, y);
                }
            }
        };
        let rows_per = (CHUNK / m).max(1) * m;
        if n >= PAR_MIN {
            out.par_chunks_mut(rows_per)
                .zip(av.par_chunks(rows_per))
                .for_each(|(o, x)| rows(o, x));
        } else {
            rows(&mut out, av);
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
            .for_each(|o, &x, &y| *o = f(x, y));
    }
    Tensor::from_buffer(out, out_shape)
}

pub(super) fn masked_fill<E: Element>(x: &Tensor<E>, mask: &Tensor<E>, value: E) -> Tensor<E> {
    let mut out = super::output(x.numel());
    out.copy_from_slice(x.as_slice());
    let sh = IxDyn(x.shape());
    let m = ArrayViewD::from_shape(mask.shape(), mask.as_slice()).expect("contiguous");
    let m = m.broadcast(sh.clone()).expect("broadcast checked");
    let mut o = ndarray::ArrayViewMutD::from_shape(sh, &mut out).expect("contiguous");
    Zip::from(&mut o).and(&m).for_each(|o, &k| {
        if k != E::zero() {
            *o = value
        }
    });
    Tensor::from_buffer(out, x.shape())
}

/// Elements per parallel task of `dropout`.
const DROPOUT_CHUNK: usize = 1 << 14;

pub(super) fn dropout<E: Element>(x: &Tensor<E>, mask: &DropoutMask) -> Tensor<E> {
    let xs = x.as_slice();
    let mut out = super::output(xs.len());
    let chunk = |(c, (o, i)): (usize, (&mut [E], &[E]))| {
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::avx512_enabled() {
            // SAFETY: avx512_enabled() checked that the CPU has AVX-512F, AVX2 and FMA.
            return unsafe { dropout_chunk_avx512(mask, c * DROPOUT_CHUNK, i, o) };
        } else if crate::kernels::simd_enabled() {
            // SAFETY: simd_enabled() checked that the CPU has AVX2 and FMA.
            return unsafe { dropout_chunk_avx2(mask, c * DROPOUT_CHUNK, i, o) };
        }
        dropout_chunk(mask, c * DROPOUT_CHUNK, i, o)
    };
    if xs.len() >= PAR_MIN {
        out.par_chunks_mut(DROPOUT_CHUNK)
            .zip(xs.par_chunks(DROPOUT_CHUNK))
            .enumerate()
            .for_each(chunk);
    } else {
        out.chunks_mut(DROPOUT_CHUNK)
            .zip(xs.chunks(DROPOUT_CHUNK))
            .enumerate()
            .for_each(chunk);
    }
    Tensor::from_buffer(out, x.shape())
}

/// `out[k] = x[k] * factor(base + k)`.
#[inline(always)]
fn dropout_chunk<E: Element>(mask: &DropoutMask, base: usize, x: &[E], out: &mut [E]) {
    let scale = E::from_f64(mask.scale);
    for (k, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        *o = v * mask.factor(base + k, scale);
    }
}

/// `dropout_chunk` compiled for AVX2: the hash runs in 8 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dropout_chunk_avx2<E: Element>(mask: &DropoutMask, base: usize, x: &[E], out: &mut [E]) {
    dropout_chunk(mask, base, x, out)
}

/// `dropout_chunk` compiled for AVX-512: the hash runs in 16 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn dropout_chunk_avx512<E: Element>(
    mask: &DropoutMask,
    base: usize,
    x: &[E],
    out: &mut [E],
) {
    dropout_chunk(mask, base, x, out)
}
