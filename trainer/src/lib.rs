//! # mclrec-trainer
//!
//! Everything around the model: reading interaction data ([`Dataset`]), the leave-one-out
//! split ([`split`]), augmentation ([`augment`]), length-bucketed batches
//! ([`LengthBucketSampler`]), the models by name ([`registry`]) and their optimisers
//! ([`train_step`]), the epoch loop with
//! early stopping and checkpoints ([`run()`]), and full-ranking evaluation
//! ([`evaluate()`]) with its [`Metrics`].

#![warn(missing_docs)]

pub use mclrec_models::augment;
pub mod bench;
pub mod checkpoint;
mod config;
mod dataset;
pub mod evaluate;
pub mod fault;
mod metrics;
pub mod noise;
pub mod prepare;
pub mod registry;
pub mod run;
pub mod run_dir;
pub mod same_target;
pub mod sampled_eval;
mod sampler;
pub mod settings;
pub mod split;
pub mod train_step;

pub use config::{
    EvalProtocol, LossKind, ModelKind, PartialConfig, Preset, Schedule, TrainConfig, SETTINGS,
};
pub use dataset::{token_map_tsv, DataError, Dataset, Format, MIN_INTERACTIONS};
pub use evaluate::{evaluate, EvalOptions, EvalResult};
pub use metrics::{Metrics, KS};
pub use run::{run, RunError, RunMode, RunObserver, RunResult};
pub use run_dir::RunDir;
pub use sampler::LengthBucketSampler;
pub use settings::{DefaultsFor, Scope, Setting, SettingValue};
pub use split::{eval_cases, train_samples, EvalCase, Split, TrainSample};
