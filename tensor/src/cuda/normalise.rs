//! Softmax, log-softmax and layer norm (forward and backward) over the last axis, one
//! thread block per row.

use cudarc::driver::PushKernelArg;

use super::reduce::reduce_buf;
use super::{buf, CudaBackend};

/// Rows per thread in the first pass of the layer-norm parameter gradients.
const LN_CHUNK: usize = 64;
use crate::{Element, Tensor};

/// `(rows, n)` of a tensor normalised over its last axis.
fn rows_n<E: Element>(x: &Tensor<E>) -> (usize, usize) {
    let n = *x.shape().last().expect("normalised over the last axis");
    (x.numel().checked_div(n).unwrap_or(0), n)
}

pub(super) fn softmax<E: Element>(b: &CudaBackend, x: &Tensor<E>, log: bool) -> Tensor<E> {
    let (rows, n) = rows_n(x);
    let mut y = b.alloc::<E>(x.numel());
    if let (Some(cfg), true) = (CudaBackend::rows_grid(rows), n > 0) {
        let (r, n, lg) = (rows as u64, n as u64, log as i32);
        let f = b.func::<E>("softmax_rows");
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(x)).arg(&mut y).arg(&r).arg(&n).arg(&lg);
        // SAFETY: x and y hold rows * n elements.
        b.check("softmax_rows", unsafe { l.launch(cfg) });
    }
    b.wrap(y, x.shape())
}

pub(super) fn layer_norm<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    beta: &Tensor<E>,
    eps: E,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let (rows, n) = rows_n(x);
    let mut y = b.alloc::<E>(x.numel());
    let mut mean = b.alloc::<E>(rows);
    let mut rstd = b.alloc::<E>(rows);
    if let (Some(cfg), true) = (CudaBackend::rows_grid(rows), n > 0) {
        let (r, n) = (rows as u64, n as u64);
        let f = b.func::<E>("layer_norm");
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(x))
            .arg(buf(gamma))
            .arg(buf(beta))
            .arg(&mut y)
            .arg(&mut mean)
            .arg(&mut rstd)
            .arg(&r)
            .arg(&n)
            .arg(&eps);
        // SAFETY: x and y hold rows * n elements, gamma and beta n, mean and rstd rows.
        b.check("layer_norm", unsafe { l.launch(cfg) });
    }
    let sh = &x.shape()[..x.rank() - 1];
    (b.wrap(y, x.shape()), b.wrap(mean, sh), b.wrap(rstd, sh))
}

pub(super) fn layer_norm_backward<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    mean: &Tensor<E>,
    rstd: &Tensor<E>,
    g: &Tensor<E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let (rows, n) = rows_n(x);
    let mut dx = b.alloc::<E>(x.numel());
    // Zeros: with no rows the parameter gradients are zero, as on the CPU.
    let mut dgamma = b.zeros::<E>(n);
    let mut dbeta = b.zeros::<E>(n);
    let chunks = rows.div_ceil(LN_CHUNK);
    let (r, n64) = (rows as u64, n as u64);
    if let (Some(cfg), true) = (CudaBackend::rows_grid(rows), n > 0) {
        let f = b.func::<E>("layer_norm_bwd_dx");
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(x))
            .arg(buf(gamma))
            .arg(buf(mean))
            .arg(buf(rstd))
            .arg(buf(g))
            .arg(&mut dx)
            .arg(&r)
            .arg(&n64);
        // SAFETY: x, g and dx hold rows * n elements, gamma n, mean and rstd rows.
        b.check("layer_norm_bwd_dx", unsafe { l.launch(cfg) });
    }
    if let (Some(cfg), true) = (CudaBackend::grid(chunks * n), rows > 0) {
        let mut dg_part = b.alloc::<E>(chunks * n);
        let mut db_part = b.alloc::<E>(chunks * n);
        let ch = LN_CHUNK as u64;
        let f = b.func::<E>("layer_norm_bwd_params");
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(x))
            .arg(buf(mean))
            .arg(buf(rstd))
            .arg(buf(g))
            .arg(&mut dg_part)
            .arg(&mut db_part)
            .arg(&r)
            .arg(&n64)
            .arg(&ch);
        // SAFETY: as above; the partial buffers hold chunks * n elements.
        b.check("layer_norm_bwd_params", unsafe { l.launch(cfg) });
        // The chunks' partial sums, added in chunk order.
        dgamma = reduce_buf(b, &dg_part, 1, chunks, n, 0);
        dbeta = reduce_buf(b, &db_part, 1, chunks, n, 0);
    }
    (
        b.wrap(dx, x.shape()),
        b.wrap(dgamma, &[n]),
        b.wrap(dbeta, &[n]),
    )
}

/// Mean cross-entropy and its gradient `(softmax - onehot) / n`, composed from device ops:
/// the softmax kernel, a gather of the target probabilities (the only values read back:
/// `n` scalars for the logged loss), a scale, and a scatter-add of `-1/n` at the targets.
pub(super) fn cross_entropy<E: Element>(x: &Tensor<E>, targets: &[usize]) -> (f64, Tensor<E>) {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let flat: Vec<usize> = targets
        .iter()
        .enumerate()
        .map(|(i, &t)| i * c + t)
        .collect();
    let p = x.softmax();
    let picked = |t: &Tensor<E>| t.reshape(&[n * c, 1]).gather_rows(&flat).to_vec();
    let p_t = picked(&p);
    // As on the CPU: -ln p_t unless a target's probability underflows, then log-softmax.
    let total: f64 = if p_t.iter().all(|v| v.as_f64() > 1e-30) {
        p_t.iter().map(|v| -v.as_f64().ln()).sum()
    } else {
        picked(&x.log_softmax()).iter().map(|v| -v.as_f64()).sum()
    };
    let inv = E::from_f64(1.0 / n as f64);
    let fix = x
        .full_like(&[n, 1], -inv)
        .scatter_add_rows(&flat, n * c)
        .reshape(&[n, c]);
    (total / n as f64, p.mul_scalar(inv).add(&fix))
}
