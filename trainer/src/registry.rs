//! The models by name: what [`ModelKind`] builds from a [`TrainConfig`], and each model's
//! paper defaults. This is the only place that names a model; everything else sees a
//! [`Recommender`].

use mclrec_models::{
    Bert4RecModel, Bert4RecSettings, BprModel, BprSettings, CaserModel, CaserSettings,
    Gru4RecModel, Gru4RecSettings, LossKind, MclrecModel, MclrecSettings, MclrecVariant,
    Recommender, S3RecModel, S3RecSettings, SasRecConfig,
};

use crate::config::{ModelKind, TrainConfig};
use crate::run::epoch_rng;

/// The settings a model's paper (or official code) gives, where they differ from the
/// shared ones (batch 256, lr 1e-3, hidden 64, max length 50, early stopping on MRR@10).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaperDefaults {
    /// Dropout.
    pub dropout: f64,
    /// The next-item loss.
    pub loss: LossKind,
    /// The longest input sequence (Caser's window `L`).
    pub max_len: usize,
}

/// The defaults of `kind`, with their sources.
pub fn paper_defaults(kind: ModelKind) -> PaperDefaults {
    let (dropout, loss) = match kind {
        ModelKind::Bpr => (0.0, BprSettings::default().loss),
        ModelKind::Gru4rec => (Gru4RecSettings::default().dropout, LossKind::Ce),
        ModelKind::Caser => (CaserSettings::default().dropout, LossKind::Ce),
        // RecBole's BERT4Rec.yaml: hidden and attention dropout 0.2.
        ModelKind::Bert4rec => (0.2, LossKind::Ce),
        // RecBole's S3Rec.yaml and MCLRec's official scripts: 0.5.
        ModelKind::S3recMip | ModelKind::Sasrec | ModelKind::Cl4srec | ModelKind::Mclrec => {
            (0.5, LossKind::Ce)
        }
    };
    let max_len = match kind {
        ModelKind::Caser => CaserSettings::default().max_len,
        _ => 50,
    };
    PaperDefaults {
        dropout,
        loss,
        max_len,
    }
}

/// The settings of SASRec, CL4SRec or MCLRec in `config` (`None` for another model).
pub fn mclrec_settings(config: &TrainConfig) -> Option<MclrecSettings> {
    let variant = match config.model {
        ModelKind::Sasrec => MclrecVariant::Sasrec,
        ModelKind::Cl4srec => MclrecVariant::Cl4srec,
        ModelKind::Mclrec => MclrecVariant::Mclrec,
        _ => return None,
    };
    Some(MclrecSettings {
        variant,
        schedule: config.schedule,
        lambda: config.lambda,
        beta: config.beta,
        no_cl2: config.no_cl2,
        no_reg: config.no_reg,
        shared_augmenter: config.shared_augmenter,
        lr_augmenter: config.lr_augmenter,
        loss: config.loss,
    })
}

/// The transformer of the SASRec-shaped models for `n_items` items.
pub fn transformer(config: &TrainConfig, n_items: usize) -> SasRecConfig {
    SasRecConfig {
        max_len: config.max_len,
        hidden_dropout: config.dropout,
        attn_dropout: config.dropout,
        ..SasRecConfig::for_items(n_items)
    }
}

/// Builds the model `config` describes for `n_users` users and `n_items` items,
/// initialised from the seed's epoch-0 stream.
pub fn build(config: &TrainConfig, n_users: usize, n_items: usize) -> Box<dyn Recommender<f32>> {
    let rng = &mut epoch_rng(config.seed, 0);
    if let Some(s) = mclrec_settings(config) {
        return Box::new(MclrecModel::new(transformer(config, n_items), s, rng));
    }
    match config.model {
        ModelKind::Bpr => {
            let s = BprSettings {
                loss: config.loss,
                ..Default::default()
            };
            Box::new(BprModel::new(&s, n_users, n_items, rng))
        }
        ModelKind::Gru4rec => {
            let s = Gru4RecSettings {
                dropout: config.dropout,
                max_len: config.max_len,
                loss: config.loss,
                ..Default::default()
            };
            Box::new(Gru4RecModel::new(&s, n_items, rng))
        }
        ModelKind::Caser => {
            let s = CaserSettings {
                dropout: config.dropout,
                max_len: config.max_len,
                loss: config.loss,
                ..Default::default()
            };
            Box::new(CaserModel::new(&s, n_users, n_items, rng))
        }
        ModelKind::Bert4rec => {
            let s = Bert4RecSettings {
                mask_ratio: config.mask_ratio,
                loss: config.loss,
            };
            Box::new(Bert4RecModel::new(transformer(config, n_items), &s, rng))
        }
        ModelKind::S3recMip => {
            let s = S3RecSettings {
                mask_ratio: config.mask_ratio,
                pretrain_epochs: if config.pretrained.is_empty() {
                    config.pretrain_epochs
                } else {
                    0
                },
                loss: config.loss,
            };
            Box::new(S3RecModel::new(transformer(config, n_items), &s, rng))
        }
        ModelKind::Sasrec | ModelKind::Cl4srec | ModelKind::Mclrec => {
            unreachable!("built above")
        }
    }
}
