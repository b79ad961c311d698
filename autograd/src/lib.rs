#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(test)]
mod agreement;
pub mod fused;
pub mod gradcheck;
pub mod ops;
pub mod optim;
mod params;
mod tape;

pub use mclrec_tensor::{Element, Tensor};
pub use optim::{Adam, AdamState, Optimizer, Sgd};
pub use params::{GroupId, Param, ParamId, ParamStore};
pub use tape::{Backward, GradSink, Gradients, NodeId, Tape, Var};
