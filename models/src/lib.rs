//! # mclrec-models
//!
//! MCLRec and its family of sequential recommenders on [`mclrec_autograd`], each a
//! [`Recommender`] the trainer trains through one interface.
//! The MCLRec model: the SASRec encoder ([`SasRecEncoder`]), the
//! learnable augmenters ([`Augmenter`]), the losses ([`losses`]), and weights in
//! safetensors with the official parameter names ([`weights`]), also read from PyTorch
//! checkpoints ([`pytorch`]). Everything is generic over
//! the element type: `f32` for training, `f64` for the golden parity tests.

#![warn(missing_docs)]

mod attention;
pub mod augment;
mod augmenter;
mod bert4rec;
mod bert4rec_model;
mod bind;
mod bpr;
mod bpr_model;
mod caser;
mod caser_model;
pub mod cloze;
mod config;
mod duorec_model;
mod feed_forward;
mod gru;
mod gru4rec;
mod gru4rec_model;
mod layer_norm;
mod linear;
pub mod losses;
mod mclrec;
mod mclrec_model;
pub mod next_item;
pub mod pytorch;
pub mod recommender;
mod s3rec;
mod s3rec_model;
mod sasrec;
mod seq_batch;
pub mod weights;

pub use attention::{Dropouts, MultiHeadAttention};
pub use augmenter::Augmenter;
pub use bert4rec::Bert4Rec;
pub use bert4rec_model::{Bert4RecModel, Bert4RecSettings};
pub use bind::Bound;
pub use bpr::Bpr;
pub use bpr_model::{BprModel, BprSettings};
pub use caser::Caser;
pub use caser_model::{CaserModel, CaserSettings};
pub use config::SasRecConfig;
pub use duorec_model::{DuoRecModel, DuoRecSettings};
pub use feed_forward::FeedForward;
pub use gru::Gru;
pub use gru4rec::Gru4Rec;
pub use gru4rec_model::{Gru4RecModel, Gru4RecSettings};
pub use layer_norm::LayerNorm;
pub use linear::{Init, Linear};
pub use mclrec::{Mclrec, AUGMENTER_GROUP, ENCODER_GROUP};
pub use mclrec_model::{MclrecModel, MclrecSettings, MclrecVariant, Schedule};
pub use next_item::LossKind;
pub use recommender::{EpochRole, Recommender};
pub use s3rec::S3RecMip;
pub use s3rec_model::{S3RecModel, S3RecSettings};
pub use sasrec::{SasRecEncoder, TransformerLayer};
pub use seq_batch::SeqBatch;
