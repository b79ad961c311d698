//! # mclrec
//!
//! MCLRec (SIGIR'23, "Meta-optimized Contrastive Learning for Sequential Recommendation")
//! in Rust, from a from-scratch tensor and autograd library up to a command-line tool.
//! This root package re-exports the workspace's crates and owns the end-to-end tests and
//! benchmarks.
//!
//! * [`tensor`]: dense `f32`/`f64` tensors, CPU backend with AVX2 kernels;
//! * [`autograd`]: the tape, parameters and optimisers;
//! * [`models`]: the SASRec encoder, the augmenters, the losses, safetensors weights;
//! * [`trainer`]: datasets, splits, evaluation and the training schedule.

pub use mclrec_autograd as autograd;
pub use mclrec_models as models;
pub use mclrec_tensor as tensor;
pub use mclrec_trainer as trainer;
