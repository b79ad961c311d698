//! Matrix products through cuBLAS: one strided-batched GEMM per call, f32 (SGEMM) or f64
//! (DGEMM), transposes as operation flags rather than copies.
//!
//! cuBLAS is column-major and the tensors are row-major. A row-major `m x n` matrix is the
//! column-major `n x m` matrix of its transpose, so `C = op(A) op(B)` is computed as
//! `C^T = op(B)^T op(A)^T`: the operands swap places and keep their own transpose flags.
//! cuBLAS's default math mode is used, so f32 products are true FP32 (no TF32), as on the CPU.

use std::any::Any;

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{Gemm, GemmConfig, StridedBatchedConfig};
use cudarc::driver::CudaSlice;

use super::{buf, CudaBackend};
use crate::{Element, Tensor};

/// The cuBLAS call's shape, without the scalars (whose type depends on `E`).
struct Plan {
    ta: bool,
    tb: bool,
    m: i32,
    n: i32,
    k: i32,
    batch: i32,
    stride_a: i64,
    stride_b: i64,
    stride_c: i64,
}

pub(super) fn matmul<E: Element>(
    be: &CudaBackend,
    a: &Tensor<E>,
    b: &Tensor<E>,
    ta: bool,
    tb: bool,
) -> Tensor<E> {
    let (ra, rb) = (a.rank(), b.rank());
    let (ar, ac) = (a.shape()[ra - 2], a.shape()[ra - 1]);
    let (br, bc) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let n = if tb { br } else { bc };
    let batch: usize = a.shape()[..ra - 2].iter().product();
    let mut shape = a.shape()[..ra - 2].to_vec();
    shape.extend([m, n]);
    let total = batch * m * n;
    if k == 0 || total == 0 {
        // beta = 0 would leave an empty product unwritten: zeros, as on the CPU.
        return be.wrap(be.zeros::<E>(total), &shape);
    }
    let mut c = be.alloc::<E>(total);
    let plan = Plan {
        ta,
        tb,
        m: m as i32,
        n: n as i32,
        k: k as i32,
        batch: batch as i32,
        stride_a: (m * k) as i64,
        // A 2-d B is shared by every matrix of the batch.
        stride_b: if rb == 2 { 0 } else { (k * n) as i64 },
        stride_c: (m * n) as i64,
    };
    let (ab, bb) = (buf(a), buf(b));
    // cuBLAS's Gemm trait is implemented per concrete type: dispatch on E at run time.
    let done = gemm_as::<f32, E>(be, &plan, ab, bb, &mut c)
        || gemm_as::<f64, E>(be, &plan, ab, bb, &mut c);
    assert!(
        done,
        "CUDA matmul: no cuBLAS GEMM for element type {}",
        E::NAME
    );
    be.wrap(c, &shape)
}

/// Runs the GEMM when `E` is `T` (returns whether it was).
fn gemm_as<T, E>(
    be: &CudaBackend,
    p: &Plan,
    a: &CudaSlice<E>,
    b: &CudaSlice<E>,
    c: &mut CudaSlice<E>,
) -> bool
where
    T: Element,
    E: Element,
    cudarc::cublas::CudaBlas: Gemm<T>,
{
    let (Some(a), Some(b)) = (
        (a as &dyn Any).downcast_ref::<CudaSlice<T>>(),
        (b as &dyn Any).downcast_ref::<CudaSlice<T>>(),
    ) else {
        return false;
    };
    let Some(c) = (c as &mut dyn Any).downcast_mut::<CudaSlice<T>>() else {
        return false;
    };
    let op = |t: bool| {
        if t {
            cublasOperation_t::CUBLAS_OP_T
        } else {
            cublasOperation_t::CUBLAS_OP_N
        }
    };
    // Column-major view: C^T (n x m) = op(B)^T (n x k) @ op(A)^T (k x m). A row-major
    // untransposed B [k, n] is column-major [n, k] with leading dimension n; transposed it
    // is stored [n, k], leading dimension k. Likewise for A.
    let cfg = StridedBatchedConfig {
        gemm: GemmConfig {
            transa: op(p.tb),
            transb: op(p.ta),
            m: p.n,
            n: p.m,
            k: p.k,
            alpha: T::one(),
            lda: if p.tb { p.k } else { p.n },
            ldb: if p.ta { p.m } else { p.k },
            beta: T::zero(),
            ldc: p.n,
        },
        batch_size: p.batch,
        stride_a: p.stride_b,
        stride_b: p.stride_a,
        stride_c: p.stride_c,
    };
    // SAFETY: the strides and leading dimensions describe the row-major operands above,
    // whose buffers hold batch * m * k, (1 or batch) * k * n and batch * m * n elements.
    let r = unsafe { be.blas.gemm_strided_batched(cfg, b, a, c) };
    if let Err(e) = r {
        panic!("cuda:{}: cuBLAS GEMM failed: {e:?}", be.ordinal);
    }
    true
}
