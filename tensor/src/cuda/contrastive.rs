//! The fused MCLRec pair terms (`[InfoNCE, regulariser]` and both gradients) of one
//! similarity matrix, on the device: one block per row, then one ordered sum of the rows'
//! f64 terms (`contrastive_rows`, `contrastive_total` in `kernels.cu`).

use cudarc::driver::{LaunchConfig, PushKernelArg};

use super::{buf, CudaBackend};
use crate::{Element, Tensor};

pub(super) fn contrastive_pair<E: Element>(
    b: &CudaBackend,
    s: &Tensor<E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let m = s.shape()[0];
    // The CPU's constants: the mean over 2n rows, and over 2n (2n - 2) hinge entries.
    let (k1, k2) = (1.0 / m as f64, 1.0 / (m * (m - 2)) as f64);
    let mut d_nce = b.alloc::<E>(m * m);
    let mut d_reg = b.alloc::<E>(m * m);
    let mut terms = b.alloc::<f64>(3 * m);
    let mut values = b.alloc::<E>(2);
    let m64 = m as u64;
    if let Some(cfg) = CudaBackend::rows_grid(m) {
        let f = b.func::<E>("contrastive_rows");
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(s))
            .arg(&mut d_nce)
            .arg(&mut d_reg)
            .arg(&mut terms)
            .arg(&m64)
            .arg(&k1)
            .arg(&k2);
        // SAFETY: s, d_nce and d_reg hold m * m elements, terms 3 m (m >= 4, checked by
        // Tensor::contrastive_pair).
        b.check("contrastive_rows", unsafe { l.launch(cfg) });
        let f = b.func::<E>("contrastive_total");
        let mut l = b.stream.launch_builder(&f);
        l.arg(&terms).arg(&mut values).arg(&m64).arg(&k1).arg(&k2);
        let one = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (1, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: terms holds 3 m values, values 2.
        b.check("contrastive_total", unsafe { l.launch(one) });
    }
    (
        b.wrap(values, &[2]),
        b.wrap(d_nce, &[m, m]),
        b.wrap(d_reg, &[m, m]),
    )
}
