//! Row-wise softmax, log-softmax and layer norm over the last axis, parallel over rows.

use rayon::prelude::*;

use super::PAR_MIN;
use crate::{Element, Tensor};

pub(super) fn softmax<E: Element>(x: &Tensor<E>, log: bool) -> Tensor<E> {
    let n = *x.shape().last().unwrap();
    let xs = x.as_slice();
    let mut out = super::output(xs.len());
    if n == 0 {
        return Tensor::from_buffer(out, x.shape());
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
    Tensor::from_buffer(out, x.shape())
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
    let mut out = super::output(xs.len());
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
    (Tensor::from_buffer(out, x.shape()), mean, rstd)
}

/// Rows per partial sum of `dgamma` / `dbeta`: fixed, so the sums do not depend on the
/// number of threads.
const LN_CHUNK_ROWS: usize = 128;

pub(super) fn layer_norm_backward<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    mean: &Tensor<E>,
    rstd: &Tensor<E>,
    g: &Tensor<E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let n = *x.shape().last().unwrap();
    let (xs, gs, gam) = (x.as_slice(), g.as_slice(), gamma.as_slice());
    let (mu, rs) = (mean.as_slice(), rstd.as_slice());
    let mut dx = super::output(xs.len());
    let inv_n = E::from_f64(1.0 / n as f64);
    let chunk = |(c, dx): (usize, &mut [E])| {
        // Partial (dgamma, dbeta) of this chunk's rows, side by side.
        let mut part = vec![E::zero(); 2 * n];
        let rows = dx.len() / n;
        for r in 0..rows {
            let row = c * LN_CHUNK_ROWS + r;
            let (xr, gr) = (&xs[row * n..][..n], &gs[row * n..][..n]);
            let (m, s) = (mu[row], rs[row]);
            let (mut mh, mut mhx) = (E::zero(), E::zero());
            for j in 0..n {
                let xh = (xr[j] - m) * s;
                let h = gr[j] * gam[j];
                mh += h;
                mhx += h * xh;
                part[j] += gr[j] * xh;
                part[n + j] += gr[j];
            }
            let (mh, mhx) = (mh * inv_n, mhx * inv_n);
            for (j, d) in dx[r * n..][..n].iter_mut().enumerate() {
                let xh = (xr[j] - m) * s;
                *d = s * (gr[j] * gam[j] - mh - xh * mhx);
            }
        }
        part
    };
    let parts: Vec<Vec<E>> = if xs.len() >= PAR_MIN {
        dx.par_chunks_mut(LN_CHUNK_ROWS * n)
            .enumerate()
            .map(chunk)
            .collect()
    } else {
        dx.chunks_mut(LN_CHUNK_ROWS * n)
            .enumerate()
            .map(chunk)
            .collect()
    };
    let mut sums = vec![E::zero(); 2 * n];
    for p in &parts {
        for (s, &v) in sums.iter_mut().zip(p) {
            *s += v;
        }
    }
    let dbeta = sums.split_off(n);
    (
        Tensor::from_buffer(dx, x.shape()),
        Tensor::from_vec(sums, &[n]),
        Tensor::from_vec(dbeta, &[n]),
    )
}

/// Mean cross-entropy of logits `x` (`[n, c]`) against `targets`, and its gradient
/// `(softmax(x) - onehot) / n`, one pass per row (the row stays in cache between the
/// softmax and the scaling).
pub(super) fn cross_entropy<E: Element>(x: &Tensor<E>, targets: &[usize]) -> (f64, Tensor<E>) {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let xs = x.as_slice();
    let mut grad = super::output(n * c);
    let inv_n = E::from_f64(1.0 / n as f64);
    let row = |(i, g): (usize, &mut [E])| -> f64 {
        let xr = &xs[i * c..(i + 1) * c];
        let t = targets[i];
        E::softmax_row(xr, g);
        let p_t = g[t].as_f64();
        // -ln p_t is exact enough unless p_t is (nearly) subnormal: then the log-softmax
        // of the row gives the loss without underflow.
        let loss = if p_t > 1e-30 {
            -p_t.ln()
        } else {
            E::log_softmax_row(xr, g);
            let l = -g[t].as_f64();
            E::softmax_row(xr, g);
            l
        };
        g.iter_mut().for_each(|v| *v *= inv_n);
        g[t] -= inv_n;
        loss
    };
    let losses: Vec<f64> = if xs.len() >= PAR_MIN {
        grad.par_chunks_mut(c).enumerate().map(row).collect()
    } else {
        grad.chunks_mut(c).enumerate().map(row).collect()
    };
    (
        losses.iter().sum::<f64>() / n as f64,
        Tensor::from_buffer(grad, &[n, c]),
    )
}
