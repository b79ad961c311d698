//! # mclrec-trainer
//!
//! Everything around the model: reading interaction data ([`Dataset`]), the leave-one-out
//! split ([`split`]), full-ranking evaluation ([`evaluate()`]) and its [`Metrics`].

#![warn(missing_docs)]

mod dataset;
pub mod evaluate;
mod metrics;
pub mod split;

pub use dataset::{DataError, Dataset, MIN_INTERACTIONS};
pub use evaluate::{evaluate, EvalOptions, EvalResult};
pub use metrics::{Metrics, KS};
pub use split::{eval_cases, train_samples, EvalCase, Split, TrainSample};
