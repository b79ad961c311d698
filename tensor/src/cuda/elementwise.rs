//! Elementwise kernels: unary maps and their backward products, broadcast binary ops, masked fill,
//! dropout and the fused Adam update.

use cudarc::driver::PushKernelArg;

use super::{buf, buf_mut, CudaBackend};
use crate::backend::{BinaryOp, UnaryOp};
use crate::dropout_mask::DropoutMask;
use crate::kernels::AdamParams;
use crate::shape::numel;
use crate::{Element, Tensor};

/// `op` at every element: the kernel `unary_<name>` of `kernels.cu`'s `UNARY_OPS`.
pub(super) fn unary<E: Element>(b: &CudaBackend, op: UnaryOp<E>, x: &Tensor<E>) -> Tensor<E> {
    let n = x.numel();
    let mut y = b.alloc::<E>(n);
    if let Some(cfg) = CudaBackend::grid(n) {
        let f = b.func::<E>(op.kernel());
        let (n64, c) = (n as u64, op.operand());
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(x)).arg(&mut y).arg(&n64).arg(&c);
        // SAFETY: x and y hold n elements; the kernel's signature matches these arguments.
        b.check(op.kernel(), unsafe { l.launch(cfg) });
    }
    b.wrap(y, x.shape())
}

/// `gy * op'(x)`: the kernel `unary_backward_<name>`.
pub(super) fn unary_backward<E: Element>(
    b: &CudaBackend,
    op: UnaryOp<E>,
    x: &Tensor<E>,
    y: &Tensor<E>,
    gy: &Tensor<E>,
) -> Tensor<E> {
    let n = x.numel();
    let mut gx = b.alloc::<E>(n);
    if let Some(cfg) = CudaBackend::grid(n) {
        let f = b.func::<E>(op.backward_kernel());
        let (n64, c) = (n as u64, op.operand());
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(x))
            .arg(buf(y))
            .arg(buf(gy))
            .arg(&mut gx)
            .arg(&n64)
            .arg(&c);
        // SAFETY: all four buffers hold n elements.
        b.check(op.backward_kernel(), unsafe { l.launch(cfg) });
    }
    b.wrap(gx, x.shape())
}

/// Row-major strides of `shape` seen broadcast to `out` (rank-aligned at the right; 0 along
/// broadcast and missing axes).
pub(super) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<u64> {
    let pad = out.len() - shape.len();
    let mut strides = vec![0u64; out.len()];
    let mut s = 1u64;
    for d in (0..shape.len()).rev() {
        if shape[d] != 1 {
            strides[pad + d] = s;
        }
        s *= shape[d] as u64;
    }
    strides
}

pub(super) fn binary<E: Element>(
    b: &CudaBackend,
    op: BinaryOp,
    x: &Tensor<E>,
    y: &Tensor<E>,
    out_shape: &[usize],
) -> Tensor<E> {
    let n = numel(out_shape);
    let mut out = b.alloc::<E>(n);
    let Some(cfg) = CudaBackend::grid(n) else {
        return b.wrap(out, out_shape);
    };
    // An operand that repeats along leading axes only (the same shape, a bias row, a scalar)
    // is indexed `i % len`; anything else goes through the shape metadata.
    let repeat = |s: &[usize]| -> u64 {
        if out_shape.ends_with(s) {
            numel(s).max(1) as u64
        } else {
            0
        }
    };
    let (la, lb) = (repeat(x.shape()), repeat(y.shape()));
    let rank = out_shape.len();
    let mut meta: Vec<u64> = out_shape.iter().map(|&d| d as u64).collect();
    meta.extend(broadcast_strides(x.shape(), out_shape));
    meta.extend(broadcast_strides(y.shape(), out_shape));
    let uploaded = (la == 0 || lb == 0).then(|| b.upload_u64(&meta));
    let meta = uploaded.as_ref().unwrap_or(&b.unused_meta);
    let (f, n64, rank) = (b.func::<E>(op.kernel()), n as u64, rank as i32);
    let mut l = b.stream.launch_builder(&f);
    l.arg(buf(x))
        .arg(buf(y))
        .arg(&mut out)
        .arg(&n64)
        .arg(&la)
        .arg(&lb)
        .arg(meta)
        .arg(&rank);
    // SAFETY: the operands broadcast to out_shape (checked by Tensor::binary), so every
    // computed offset is inside its buffer.
    b.check(op.kernel(), unsafe { l.launch(cfg) });
    b.wrap(out, out_shape)
}

pub(super) fn masked_fill<E: Element>(
    b: &CudaBackend,
    x: &Tensor<E>,
    mask: &Tensor<E>,
    value: E,
) -> Tensor<E> {
    let n = x.numel();
    let mut out = b.alloc::<E>(n);
    if let Some(cfg) = CudaBackend::grid(n) {
        let mut meta: Vec<u64> = x.shape().iter().map(|&d| d as u64).collect();
        meta.extend(broadcast_strides(mask.shape(), x.shape()));
        let meta = b.upload_u64(&meta);
        let (f, n64, rank) = (b.func::<E>("masked_fill"), n as u64, x.rank() as i32);
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(x))
            .arg(buf(mask))
            .arg(&mut out)
            .arg(&n64)
            .arg(&meta)
            .arg(&rank)
            .arg(&value);
        // SAFETY: the mask broadcasts to x's shape (checked by Tensor::masked_fill).
        b.check("masked_fill", unsafe { l.launch(cfg) });
    }
    b.wrap(out, x.shape())
}

pub(super) fn dropout<E: Element>(b: &CudaBackend, x: &Tensor<E>, mask: &DropoutMask) -> Tensor<E> {
    let n = x.numel();
    let mut out = b.alloc::<E>(n);
    if let Some(cfg) = CudaBackend::grid(n) {
        let (seed, threshold) = mask.seed_threshold();
        let (lo, hi) = (seed as u32, (seed >> 32) as u32);
        let scale = E::from_f64(mask.scale);
        let (f, n64) = (b.func::<E>("dropout"), n as u64);
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(x))
            .arg(&mut out)
            .arg(&n64)
            .arg(&lo)
            .arg(&hi)
            .arg(&threshold)
            .arg(&scale);
        // SAFETY: x and out hold n elements.
        b.check("dropout", unsafe { l.launch(cfg) });
    }
    b.wrap(out, x.shape())
}

pub(super) fn adam_step<E: Element>(
    b: &CudaBackend,
    p: &mut Tensor<E>,
    g: &Tensor<E>,
    m: &mut Tensor<E>,
    v: &mut Tensor<E>,
    h: &AdamParams,
) {
    let n = p.numel();
    let Some(cfg) = CudaBackend::grid(n) else {
        return;
    };
    // The constants of kernels::scalar::adam, computed the same way on the host.
    let b1 = E::from_f64(h.beta1);
    let b2 = E::from_f64(h.beta2);
    let b1c = E::from_f64(1.0 - h.beta1);
    let b2c = E::from_f64(1.0 - h.beta2);
    let wd = E::from_f64(h.weight_decay);
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step as i32);
    let step_size = E::from_f64(h.lr / bc1);
    let inv_sqrt_bc2 = E::from_f64(1.0 / bc2.sqrt());
    let eps = E::from_f64(h.eps);
    let (f, n64) = (b.func::<E>("adam"), n as u64);
    let (pb, mb, vb) = (buf_mut(p), buf_mut(m), buf_mut(v));
    let mut l = b.stream.launch_builder(&f);
    l.arg(pb)
        .arg(buf(g))
        .arg(mb)
        .arg(vb)
        .arg(&n64)
        .arg(&b1)
        .arg(&b2)
        .arg(&b1c)
        .arg(&b2c)
        .arg(&wd)
        .arg(&step_size)
        .arg(&inv_sqrt_bc2)
        .arg(&eps);
    // SAFETY: p, g, m and v hold n elements (checked by Tensor::adam_step).
    b.check("adam", unsafe { l.launch(cfg) });
}
