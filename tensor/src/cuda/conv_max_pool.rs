//! Caser's horizontal convolution max-pooled over time ([`Tensor::conv_max_pool`]) and its
//! backward: `conv_max_pool` (one thread per output, the windows' maximum and where it
//! was), `conv_max_pool_dx` (one thread per input element, over the filters) and
//! `conv_max_pool_dw` (one thread per filter weight, over the sequences; `dbias` beside it).

use cudarc::driver::PushKernelArg;

use super::{buf, CudaBackend};
use crate::conv_max_pool::conv_dims;
use crate::{Element, Tensor};

pub(super) fn conv_max_pool<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    w: &Tensor<E>,
    bias: &Tensor<E>,
) -> (Tensor<E>, Vec<usize>) {
    let (bs, l, d, n, h) = conv_dims(x, w);
    let mut out = b.alloc::<E>(bs * n);
    let mut at = b.alloc::<u64>(bs * n);
    if let Some(cfg) = CudaBackend::grid(bs * n) {
        let dims = [bs, l, d, n, h].map(|v| v as u64);
        let f = b.func::<E>("conv_max_pool");
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(buf(x))
            .arg(buf(w))
            .arg(buf(bias))
            .arg(&mut out)
            .arg(&mut at);
        for v in &dims {
            lb.arg(v);
        }
        // SAFETY: x holds b l d elements, w n h d, bias n, out and at b n (conv_dims checked
        // the shapes).
        b.check("conv_max_pool", unsafe { lb.launch(cfg) });
    }
    // The trait returns host windows: this copy waits for the kernel.
    let at = b.download_idx(&at, bs * n);
    (b.wrap(out, &[bs, n]), at)
}

pub(super) fn conv_max_pool_backward<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    w: &Tensor<E>,
    at: &[usize],
    g: &Tensor<E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let (bs, l, d, n, h) = conv_dims(x, w);
    let dims = [bs, l, d, n, h].map(|v| v as u64);
    let at_d = b.upload_idx(at);
    let mut dx = b.alloc::<E>(bs * l * d);
    let mut dw = b.alloc::<E>(n * h * d);
    let mut db = b.alloc::<E>(n);
    if let Some(cfg) = CudaBackend::grid(bs * l * d) {
        let f = b.func::<E>("conv_max_pool_dx");
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(buf(w)).arg(&at_d).arg(buf(g)).arg(&mut dx);
        for v in &dims {
            lb.arg(v);
        }
        // SAFETY: w holds n h d elements, at and g b n, dx b l d; every window t has
        // t + h <= l (checked by Tensor::conv_max_pool_backward).
        b.check("conv_max_pool_dx", unsafe { lb.launch(cfg) });
    }
    if let Some(cfg) = CudaBackend::grid(n * h * d) {
        let f = b.func::<E>("conv_max_pool_dw");
        let mut lb = b.stream.launch_builder(&f);
        lb.arg(buf(x))
            .arg(&at_d)
            .arg(buf(g))
            .arg(&mut dw)
            .arg(&mut db);
        for v in &dims {
            lb.arg(v);
        }
        // SAFETY: x holds b l d elements, at and g b n, dw n h d, db n.
        b.check("conv_max_pool_dw", unsafe { lb.launch(cfg) });
    }
    (
        b.wrap(dx, &[bs, l, d]),
        b.wrap(dw, &[n, h, d]),
        b.wrap(db, &[n]),
    )
}
