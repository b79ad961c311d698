//! # mclrec-tensor
//!
//! Dense, row-major `f32` / `f64` tensors for the MCLRec project, small enough to read in an
//! afternoon. One [`Tensor`] type whatever the [`Device`]; every op validates shapes and then
//! goes through the device's backend, so code above this crate never branches on device.
//! A backend is the 18 primitives of [`Backend`](backend::Backend) (elementwise maps,
//! broadcasting binary ops, matmul, reductions, gathers and scatters, layout, random
//! fills) plus the fused ops of [`FusedBackend`](backend::FusedBackend), whose defaults in
//! [`composed`] write each one out in the primitives; the elementwise ops are defined once,
//! in [`unary_op`] and [`binary_op`].
//!
//! The CPU backend stores a `Vec`, uses [ndarray] for layout changes, [matrixmultiply] for
//! every matrix product (transposes are strides, not copies), [rayon] across rows and
//! batches, and explicit AVX2 / AVX-512 kernels for GELU, `exp`/softmax, layer norm and the
//! Adam update, picked at run time with a portable fallback.
//!
//! ```
//! use mclrec_tensor::Tensor;
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let x = Tensor::<f32>::normal(&[4, 8], 0.0, 1.0, &mut rng);
//! let w = Tensor::<f32>::normal(&[3, 8], 0.0, 0.02, &mut rng);
//! let logits = x.matmul_t(&w, false, true);       // x @ w^T: [4, 3]
//! let p = logits.softmax();
//! assert_eq!(p.shape(), &[4, 3]);
//! let (top, cols) = logits.topk_rows(2);          // best 2 classes per row
//! assert_eq!(top.shape(), &[4, 2]);
//! assert!(cols.iter().all(|&c| c < 3));
//! ```

#![warn(missing_docs)]

pub mod attention;
pub mod backend;
pub mod binary_op;
pub mod composed;
mod contrastive;
mod conv_max_pool;
mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
mod device;
pub mod dropout_mask;
mod element;
pub mod gru;
// The SIMD kernels are unsafe building blocks of the CPU backend, public for the benches
// and their tests only: not part of the documented API.
#[doc(hidden)]
pub mod kernels;
pub mod shape;
mod tensor;
pub mod unary_op;

pub use backend::{BinaryOp, RandomFill, ReduceOp, UnaryOp};
pub use cpu::{denormals_flushed, flush_denormals, host_buffer_stats, CpuBackend, HostBufferStats};
pub use device::{Device, DeviceError};
pub use element::{DeviceElement, Element};
pub use kernels::AdamParams;
pub use tensor::Tensor;

/// Re-exported so that users seed the same generator the project uses.
pub use rand_chacha::ChaCha8Rng;
