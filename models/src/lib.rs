//! # mclrec-models
//!
//! The MCLRec model on [`mclrec_autograd`]: the SASRec encoder ([`SasRecEncoder`]), the
//! learnable augmenters ([`Augmenter`]), the losses ([`losses`]), and weights in
//! safetensors with the official parameter names ([`weights`]), also read from PyTorch
//! checkpoints ([`pytorch`]). Everything is generic over
//! the element type: `f32` for training, `f64` for the golden parity tests.

#![warn(missing_docs)]

mod attention;
mod augmenter;
mod bert4rec;
mod bind;
mod bpr;
mod caser;
mod config;
mod feed_forward;
mod gru;
mod gru4rec;
mod layer_norm;
mod linear;
pub mod losses;
mod mclrec;
pub mod pytorch;
mod s3rec;
mod sasrec;
mod seq_batch;
pub mod weights;

pub use attention::{Dropouts, MultiHeadAttention};
pub use augmenter::Augmenter;
pub use bert4rec::Bert4Rec;
pub use bind::Bound;
pub use bpr::Bpr;
pub use caser::Caser;
pub use config::SasRecConfig;
pub use feed_forward::FeedForward;
pub use gru::Gru;
pub use gru4rec::Gru4Rec;
pub use layer_norm::LayerNorm;
pub use linear::{Init, Linear};
pub use mclrec::{Mclrec, AUGMENTER_GROUP, ENCODER_GROUP};
pub use s3rec::S3RecMip;
pub use sasrec::{SasRecEncoder, TransformerLayer};
pub use seq_batch::SeqBatch;
