//! The models by name: what [`ModelKind`] builds from a [`TrainConfig`], and each model's
//! paper defaults. This is the only place that names a model; everything else sees a
//! [`Recommender`].

use mclrec_models::{
    Bert4RecModel, Bert4RecSettings, BprModel, BprSettings, CaserModel, CaserSettings, DuoRecModel,
    DuoRecSettings, Gru4RecModel, Gru4RecSettings, LossKind, MclrecModel, MclrecSettings,
    MclrecVariant, Recommender, S3RecModel, S3RecSettings, SasRecConfig,
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
    /// The embedding width.
    pub hidden: usize,
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
        // DuoRec's duorec.sh: hidden and attention dropout 0.5.
        ModelKind::S3recMip
        | ModelKind::Sasrec
        | ModelKind::Cl4srec
        | ModelKind::Duorec
        | ModelKind::Mclrec => (0.5, LossKind::Ce),
    };
    let max_len = match kind {
        ModelKind::Caser => CaserSettings::default().max_len,
        _ => 50,
    };
    let hidden = match kind {
        ModelKind::Bpr => BprSettings::default().dim,
        ModelKind::Gru4rec => Gru4RecSettings::default().dim,
        ModelKind::Caser => CaserSettings::default().dim,
        _ => SasRecConfig::for_items(0).hidden,
    };
    PaperDefaults {
        dropout,
        loss,
        max_len,
        hidden,
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
        hidden: config.hidden,
        // The 4x of SASRec's and BERT's feed-forward block (256 at the paper's 64).
        inner: 4 * config.hidden,
        layers: config.layers,
        heads: config.heads,
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
                dim: config.hidden,
                loss: config.loss,
            };
            Box::new(BprModel::new(&s, n_users, n_items, rng))
        }
        ModelKind::Gru4rec => {
            let s = Gru4RecSettings {
                dim: config.hidden,
                hidden: config.gru_width,
                dropout: config.dropout,
                max_len: config.max_len,
                loss: config.loss,
            };
            Box::new(Gru4RecModel::new(&s, n_items, rng))
        }
        ModelKind::Caser => {
            let s = CaserSettings {
                dim: config.hidden,
                n_v: config.n_v,
                n_h: config.n_h,
                dropout: config.dropout,
                reg_weight: config.reg_weight,
                max_len: config.max_len,
                loss: config.loss,
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
        ModelKind::Duorec => {
            let s = DuoRecSettings {
                lambda: config.lambda,
                loss: config.loss,
            };
            Box::new(DuoRecModel::new(transformer(config, n_items), &s, rng))
        }
        ModelKind::Sasrec | ModelKind::Cl4srec | ModelKind::Mclrec => {
            unreachable!("built above")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PartialConfig;
    use crate::Preset;

    /// The shapes of `model`'s parameters built with `settings`, by name.
    fn shapes(model: ModelKind, settings: &[(&str, &str)]) -> Vec<(String, Vec<usize>)> {
        let mut partial = PartialConfig {
            model: Some(model),
            ..Default::default()
        };
        for (k, v) in settings {
            partial.set_text(k, v).unwrap();
        }
        let config = partial.resolve(Preset::Beauty).unwrap();
        let m = build(&config, 7, 20);
        m.store()
            .iter()
            .map(|(_, p)| (p.name.clone(), p.value.shape().to_vec()))
            .collect()
    }

    fn shape_of(all: &[(String, Vec<usize>)], name: &str) -> Vec<usize> {
        let found = all.iter().find(|(n, _)| n == name);
        found.unwrap_or_else(|| panic!("no {name}")).1.clone()
    }

    #[test]
    fn size_settings_reach_the_models() {
        let s = shapes(
            ModelKind::Sasrec,
            &[("hidden", "32"), ("layers", "1"), ("heads", "4")],
        );
        assert_eq!(shape_of(&s, "item_embedding.weight"), [21, 32]);
        // One block: its feed-forward 4 x 32 wide, no second block.
        let ff: Vec<_> = s
            .iter()
            .filter(|(n, _)| n.starts_with("trm_encoder") && n.ends_with("dense_1.weight"))
            .collect();
        assert_eq!((ff.len(), ff[0].1.clone()), (1, vec![128, 32]));
        let s = shapes(ModelKind::Gru4rec, &[("hidden", "16"), ("gru_width", "24")]);
        assert_eq!(shape_of(&s, "gru_layers.weight_hh_l0"), [72, 24]);
        assert_eq!(shape_of(&s, "gru_layers.weight_ih_l0"), [72, 16]);
        let s = shapes(ModelKind::Caser, &[("n_v", "2"), ("n_h", "3")]);
        assert_eq!(shape_of(&s, "conv_v.weight"), [2, 1, 5, 1]);
        assert_eq!(shape_of(&s, "conv_h.4.weight"), [3, 1, 5, 64]);
        let s = shapes(ModelKind::Bpr, &[("hidden", "8")]);
        assert!(s.iter().all(|(_, sh)| sh[1] == 8), "{s:?}");
    }

    #[test]
    fn heads_that_do_not_divide_the_width_are_refused() {
        let err = PartialConfig {
            model: Some(ModelKind::Bert4rec),
            heads: Some(3),
            ..Default::default()
        }
        .resolve(Preset::Beauty)
        .unwrap_err();
        assert!(err.contains("--heads 3: must divide --hidden 64"), "{err}");
    }
}
