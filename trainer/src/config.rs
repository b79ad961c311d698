//! Everything a training run is configured by: the models, the protocols, the presets,
//! and the table of settings ([`SETTINGS`]), each declared once with its default (its
//! source where it is a paper's), its check and whom it belongs to (see
//! [`crate::settings`]).

use serde::{Deserialize, Serialize};

use crate::settings::{declare_settings, line_of, DefaultsFor, Scope, SettingValue};

pub use mclrec_models::{LossKind, Schedule};

/// Which model the trainer trains: the paper's Table 3 family. Each is built by
/// [`crate::registry`]; the trainer sees only its [`mclrec_models::Recommender`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// BPR-MF (Rendle et al., UAI'09).
    Bpr,
    /// GRU4Rec (Hidasi et al., ICLR'16).
    Gru4rec,
    /// Caser (Tang and Wang, WSDM'18).
    Caser,
    /// SASRec: `lambda = beta = 0`, one step per batch, no views.
    Sasrec,
    /// BERT4Rec (Sun et al., CIKM'19): the Cloze task.
    Bert4rec,
    /// S3-Rec (Zhou et al., CIKM'20) with masked item prediction only: pre-training, then
    /// fine-tuning.
    S3recMip,
    /// CL4SRec: `beta = 0`, one encoder step per batch on `L_rec + lambda L_cl1`.
    Cl4srec,
    /// MCLRec: the meta-optimisation schedule.
    Mclrec,
    /// DuoRec (Qiu et al., WSDM'22): dropout views and same-target positives.
    Duorec,
}

impl ModelKind {
    /// Every model, in the order of the paper's Table 3.
    pub const ALL: [ModelKind; 9] = [
        ModelKind::Bpr,
        ModelKind::Gru4rec,
        ModelKind::Caser,
        ModelKind::Sasrec,
        ModelKind::Bert4rec,
        ModelKind::S3recMip,
        ModelKind::Cl4srec,
        ModelKind::Duorec,
        ModelKind::Mclrec,
    ];

    /// The model's name (`bpr`, `gru4rec`, `caser`, `sasrec`, `bert4rec`, `s3rec-mip`,
    /// `cl4srec`, `duorec`, `mclrec`).
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Bpr => "bpr",
            ModelKind::Gru4rec => "gru4rec",
            ModelKind::Caser => "caser",
            ModelKind::Sasrec => "sasrec",
            ModelKind::Bert4rec => "bert4rec",
            ModelKind::S3recMip => "s3rec-mip",
            ModelKind::Cl4srec => "cl4srec",
            ModelKind::Mclrec => "mclrec",
            ModelKind::Duorec => "duorec",
        }
    }

    /// Whether it is SASRec, CL4SRec or MCLRec (the encoder with the augmenters).
    pub fn is_mclrec_family(self) -> bool {
        matches!(
            self,
            ModelKind::Sasrec | ModelKind::Cl4srec | ModelKind::Mclrec
        )
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let names: Vec<&str> = ModelKind::ALL.iter().map(|m| m.name()).collect();
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("`{s}` is not a model ({})", names.join(", ")))
    }
}

/// How validation and test rank the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvalProtocol {
    /// Among all items (the paper's protocol).
    #[default]
    Full,
    /// Among 100 negatives drawn uniformly from the items the user never interacted with.
    Uni100,
    /// Among 100 negatives drawn by popularity (interaction count) from those items.
    Pop100,
}

impl std::str::FromStr for EvalProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            EvalProtocol::Full,
            EvalProtocol::Uni100,
            EvalProtocol::Pop100,
        ]
        .into_iter()
        .find(|k| k.name() == s)
        .ok_or_else(|| format!("`{s}` is not an evaluation protocol (full, uni100, pop100)"))
    }
}

impl EvalProtocol {
    /// `full`, `uni100` or `pop100`.
    pub fn name(self) -> &'static str {
        match self {
            EvalProtocol::Full => "full",
            EvalProtocol::Uni100 => "uni100",
            EvalProtocol::Pop100 => "pop100",
        }
    }
}

/// The paper's per-dataset settings: MCLRec's `lambda` and `beta` (Section 5.1.4 and the
/// official code's scripts); every other setting is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Amazon Beauty: `lambda` 0, `beta` 0.05.
    Beauty,
    /// Amazon Sports: `lambda` 0.04, `beta` 0.4.
    Sports,
    /// Yelp: `lambda` 0.03, `beta` 0.1.
    Yelp,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 3] = [Preset::Beauty, Preset::Sports, Preset::Yelp];

    /// The preset's name (`beauty`, `sports`, `yelp`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::Beauty => "beauty",
            Preset::Sports => "sports",
            Preset::Yelp => "yelp",
        }
    }

    /// The preset of a name.
    pub fn parse(name: &str) -> Option<Preset> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// `(lambda, beta)`.
    pub fn weights(self) -> (f64, f64) {
        match self {
            Preset::Beauty => (0.0, 0.05),
            Preset::Sports => (0.04, 0.4),
            Preset::Yelp => (0.03, 0.1),
        }
    }
}

/// The models with an input sequence: all but BPR, the first of [`ModelKind::ALL`].
const SEQUENTIAL: &[ModelKind] = ModelKind::ALL.split_at(1).1;

/// The models on SASRec's transformer encoder.
const TRANSFORMERS: &[ModelKind] = &[
    ModelKind::Sasrec,
    ModelKind::Bert4rec,
    ModelKind::S3recMip,
    ModelKind::Cl4srec,
    ModelKind::Duorec,
    ModelKind::Mclrec,
];

fn positive(v: &f64) -> Result<(), String> {
    if v.is_finite() && *v > 0.0 {
        Ok(())
    } else {
        Err(format!("must be a positive number, got {v}"))
    }
}

fn non_negative(v: &f64) -> Result<(), String> {
    if v.is_finite() && *v >= 0.0 {
        Ok(())
    } else {
        Err(format!("must be a number >= 0, got {v}"))
    }
}

fn at_least_one(v: &usize) -> Result<(), String> {
    if *v >= 1 {
        Ok(())
    } else {
        Err("must be at least 1".into())
    }
}

fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

declare_settings! {
    /// The dataset: `beauty` or `sports` (built in), or a "user item item ..." or RecBole
    /// `.inter` file (item tokens of any kind get dense ids in order of first appearance),
    /// stored as its absolute path.
    dataset: String, Scope::Run, default |_| "beauty".into(), check any;
    /// The SHA-256 of the dataset's bytes (empty when unknown, as in runs from before it
    /// was stored): a resumed run refuses a dataset that changed.
    dataset_sha256: String, Scope::Stored, default |_| String::new(), check any;
    /// Weights the model starts from (a checkpoint of this project, official safetensors
    /// or a PyTorch `.pth`); empty: a fresh initialisation.
    init: String, Scope::Run, default |_| String::new(), check any;
    /// The model: bpr, gru4rec, caser, sasrec, bert4rec, s3rec-mip, cl4srec, duorec or mclrec.
    model: ModelKind, Scope::Run, default |_| ModelKind::Mclrec, check any;
    /// MCLRec's per-batch schedule: three-step (the official code), two-stage (the
    /// paper's Algorithm 1) or joint (MCLRec-J).
    schedule: Schedule, Scope::Models(&[ModelKind::Mclrec]),
        default |_| Schedule::ThreeStep, check any;
    /// Maximum epochs.
    epochs: usize, Scope::Run, default |_| 100, check at_least_one;
    /// Training batch size.
    batch_size: usize, Scope::Run, default |_| 256, check |b| if *b >= 2 {
        Ok(())
    } else {
        Err(format!("must be at least 2 (contrastive losses need pairs), got {b}"))
    };
    /// Adam learning rate of the model (MCLRec: of the encoder).
    lr: f64, Scope::Run, default |_| 1e-3, check positive;
    /// Adam learning rate of MCLRec's augmenters.
    lr_augmenter: f64, Scope::Models(&[ModelKind::Mclrec]), default |_| 1e-3, check positive;
    /// Weight of `L_cl1` (the paper's per-dataset value for MCLRec, Section 5.1.4; CL4SRec
    /// 0.1, as DuoRec's `cl4srec.py`; DuoRec: of its contrastive term, `lmd_sem` 0.1 in its
    /// `duorec.sh`).
    lambda: f64, Scope::Models(&[ModelKind::Cl4srec, ModelKind::Duorec, ModelKind::Mclrec]),
        default |d| match d.model {
            ModelKind::Cl4srec | ModelKind::Duorec => 0.1,
            ModelKind::Mclrec => d.preset.weights().0,
            _ => 0.0,
        },
        check non_negative;
    /// Weight of the meta terms `L_cl2 + R` in MCLRec's encoder steps (the paper's
    /// per-dataset value).
    beta: f64, Scope::Models(&[ModelKind::Mclrec]),
        default |d| if d.model == ModelKind::Mclrec { d.preset.weights().1 } else { 0.0 },
        check non_negative;
    /// Hidden and attention dropout (each model's paper or official code:
    /// [`crate::registry::paper_defaults`]).
    dropout: f64, Scope::Models(SEQUENTIAL),
        default |d| crate::registry::paper_defaults(d.model).dropout,
        check |v| if (0.0..1.0).contains(v) {
            Ok(())
        } else {
            Err(format!("must be in [0, 1), got {v}"))
        };
    /// Longest input sequence (Caser: its window `L`).
    max_len: usize, Scope::Models(&ModelKind::ALL),
        default |d| crate::registry::paper_defaults(d.model).max_len,
        check at_least_one;
    /// The embedding width `d` (every model's item table; the transformers' hidden size,
    /// their feed-forward width `4 d`). 64 for all: MCLRec's paper (Section 5.1.4) and
    /// RecBole's `embedding_size` / `hidden_size` of each baseline.
    hidden: usize, Scope::Models(&ModelKind::ALL),
        default |d| crate::registry::paper_defaults(d.model).hidden, check at_least_one;
    /// Transformer blocks (SASRec's `n_layers`: 2 in MCLRec's official scripts and
    /// RecBole's `BERT4Rec.yaml` / `S3Rec.yaml`).
    layers: usize, Scope::Models(TRANSFORMERS),
        default |_| mclrec_models::SasRecConfig::for_items(0).layers, check at_least_one;
    /// Attention heads per block (`n_heads`: 2, as `layers`); must divide `hidden`.
    heads: usize, Scope::Models(TRANSFORMERS),
        default |_| mclrec_models::SasRecConfig::for_items(0).heads, check at_least_one;
    /// GRU4Rec's state width (RecBole's `GRU4Rec.yaml` `hidden_size`: 128).
    gru_width: usize, Scope::Models(&[ModelKind::Gru4rec]),
        default |_| mclrec_models::Gru4RecSettings::default().hidden, check at_least_one;
    /// Caser's vertical filters (`nv`: 4, its paper and RecBole's `Caser.yaml`).
    n_v: usize, Scope::Models(&[ModelKind::Caser]),
        default |_| mclrec_models::CaserSettings::default().n_v, check at_least_one;
    /// Caser's horizontal filters per height (`nh`: 8, RecBole's `Caser.yaml`; its paper
    /// uses 16).
    n_h: usize, Scope::Models(&[ModelKind::Caser]),
        default |_| mclrec_models::CaserSettings::default().n_h, check at_least_one;
    /// Caser's weight of the norms of its weights in the loss (`reg_weight`: 1e-4,
    /// RecBole's `Caser.yaml`).
    reg_weight: f64, Scope::Models(&[ModelKind::Caser]),
        default |_| mclrec_models::CaserSettings::default().reg_weight, check non_negative;
    /// The seed of every random draw.
    seed: u64, Scope::Run, default |_| 2023, check any;
    /// Worker threads (0 = one per core).
    threads: usize, Scope::Run, default |_| 0, check any;
    /// `cpu`, or `cuda` / `cuda:N` where a CUDA build and GPU are present.
    device: String, Scope::Run, default |_| "cpu".into(), check any;
    /// The validation metric early stopping follows (`mrr@10`, `ndcg@20`, `hr@20`, ...).
    early_stop_metric: String, Scope::Run, default |_| "mrr@10".into(),
        check |m| if crate::Metrics::from_ranks(&[1]).get(m).is_some() {
            Ok(())
        } else {
            Err(format!("`{m}` is not one of hr@k, ndcg@k, mrr@k with k in 5, 10, 20, 50"))
        };
    /// Epochs without improvement before stopping.
    patience: usize, Scope::Run, default |_| 10, check |p| if *p >= 1 {
        Ok(())
    } else {
        Err("must be at least 1 (epochs without improvement before stopping)".into())
    };
    /// Ablation: MCLRec without `L_cl2`.
    no_cl2: bool, Scope::Models(&[ModelKind::Mclrec]), default |_| false, check any;
    /// Ablation: MCLRec without the regulariser `R`.
    no_reg: bool, Scope::Models(&[ModelKind::Mclrec]), default |_| false, check any;
    /// Ablation: one augmenter for both of MCLRec's views.
    shared_augmenter: bool, Scope::Models(&[ModelKind::Mclrec]), default |_| false, check any;
    /// The next-item loss: `ce` (softmax over all items), `bce` (one sampled negative per
    /// target) or `bpr` (pairwise, one sampled negative).
    loss: LossKind, Scope::Models(&ModelKind::ALL),
        default |d| crate::registry::paper_defaults(d.model).loss, check any;
    /// The ranking protocol of validation and test: `full` (all items), `uni100` / `pop100`
    /// (100 negatives drawn uniformly / by popularity, the same for every model).
    eval: EvalProtocol, Scope::Run, default |_| EvalProtocol::Full, check any;
    /// Users per evaluation chunk.
    eval_chunk: usize, Scope::Run, default |_| 128, check at_least_one;
    /// The probability that an item of a training sequence is masked (BERT4Rec's paper,
    /// RecBole's `BERT4Rec.yaml`; S3-Rec's official `run_pretrain.py`).
    mask_ratio: f64, Scope::Models(&[ModelKind::Bert4rec, ModelKind::S3recMip]),
        default |d| if d.model == ModelKind::S3recMip {
            mclrec_models::S3RecSettings::default().mask_ratio
        } else {
            mclrec_models::Bert4RecSettings::default().mask_ratio
        },
        check |v| if *v > 0.0 && *v < 1.0 {
            Ok(())
        } else {
            Err(format!("must be in (0, 1), got {v}"))
        };
    /// Pre-training epochs before the `epochs` of fine-tuning (S3-Rec's official
    /// `run_pretrain.py`).
    pretrain_epochs: usize, Scope::Models(&[ModelKind::S3recMip]),
        default |_| mclrec_models::S3RecSettings::default().pretrain_epochs, check any;
    /// The pre-training run whose last checkpoint is fine-tuned (then no pre-training
    /// epochs run); empty: pre-train first.
    pretrained: String, Scope::Models(&[ModelKind::S3recMip]),
        default |_| String::new(), check any;
}

/// The setting of `key`.
fn setting(key: &str) -> Option<&'static crate::settings::Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

impl PartialConfig {
    /// Reads a settings table in the `[model]` layout or the flat one (see
    /// [`crate::settings`]); an error names `label`, and the line where `text` (the
    /// table's source) is given.
    pub fn from_table(
        table: &toml::Table,
        text: Option<&str>,
        label: &str,
    ) -> Result<PartialConfig, String> {
        let at = |section: Option<&str>, key: &str, msg: String| match text
            .and_then(|t| line_of(t, section, key))
        {
            Some(line) => format!("{label}:{line}: {msg}"),
            None => format!("{label}: {msg}"),
        };
        let mut partial = PartialConfig::default();
        for (key, value) in table {
            match (key.as_str(), value) {
                ("model", toml::Value::Table(section)) => {
                    for (key, value) in section {
                        let in_model = |msg| at(Some("model"), key, msg);
                        let key = if key == "name" { "model" } else { key.as_str() };
                        match setting(key) {
                            Some(s) if matches!(s.scope, Scope::Models(_)) || key == "model" => {}
                            Some(_) => {
                                return Err(in_model(format!(
                                    "`{key}` is a setting of the run: it goes above [model]"
                                )))
                            }
                            None => {
                                return Err(in_model(format!("unknown setting `{key}` in [model]")))
                            }
                        }
                        partial
                            .set_toml(key, value)
                            .map_err(|e| in_model(format!("[model] {key}: {e}")))?;
                    }
                }
                (key, value) => {
                    if setting(key).is_none() {
                        return Err(at(None, key, format!("unknown setting `{key}`")));
                    }
                    partial
                        .set_toml(key, value)
                        .map_err(|e| at(None, key, format!("{key}: {e}")))?;
                }
            }
        }
        Ok(partial)
    }

    /// The first setting given that `model` does not use, unless it holds the value it
    /// has anyway: its key and the message.
    pub fn check_used(
        &self,
        model: ModelKind,
        preset: Preset,
    ) -> Result<(), (&'static str, String)> {
        let defaults = DefaultsFor { model, preset };
        for (key, value) in self.given() {
            let s = setting(key).expect("a declared setting");
            if !s.scope.used_by(model) && value != (s.default)(defaults) {
                let users: Vec<&str> = s.models().iter().map(|m| m.name()).collect();
                return Err((
                    key,
                    format!(
                        "{} {}: {} does not use it (a setting of {})",
                        s.flag(),
                        crate::settings::display(&value),
                        model.name(),
                        users.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The configuration these settings give under `preset`: the model (MCLRec if none)
    /// and every setting not given at its default for that model and preset. A setting
    /// the model does not use is refused unless it holds the value it has anyway.
    pub fn resolve(self, preset: Preset) -> Result<TrainConfig, String> {
        let model = self.model.unwrap_or(ModelKind::Mclrec);
        self.check_used(model, preset).map_err(|(_, e)| e)?;
        let defaults = DefaultsFor { model, preset };
        let config = self.with_defaults(&defaults);
        config.validate()?;
        Ok(config)
    }
}

impl TrainConfig {
    /// The paper's settings for a dataset name: the [`Preset`] of that name (`sports`,
    /// `yelp`), else Beauty's.
    pub fn paper(dataset: &str) -> Self {
        Self::for_preset(dataset, Preset::parse(dataset).unwrap_or(Preset::Beauty))
    }

    /// The paper's MCLRec settings of `preset` for `dataset`.
    pub fn for_preset(dataset: &str, preset: Preset) -> Self {
        Self::for_model(dataset, ModelKind::Mclrec, preset)
    }

    /// The settings of `model` (its paper's where they differ from the shared ones) under
    /// `preset` for `dataset`.
    pub fn for_model(dataset: &str, model: ModelKind, preset: Preset) -> Self {
        PartialConfig {
            dataset: Some(dataset.to_string()),
            model: Some(model),
            ..Default::default()
        }
        .with_defaults(&DefaultsFor { model, preset })
    }

    /// The paper's Beauty settings for `dataset`.
    pub fn paper_beauty(dataset: &str) -> Self {
        Self::for_preset(dataset, Preset::Beauty)
    }

    /// Whether the contrastive views are needed at all.
    pub fn needs_views(&self) -> bool {
        crate::registry::mclrec_settings(self).is_some_and(|s| s.needs_views())
    }

    /// Whether the augmenters take part (MCLRec with meta terms).
    pub fn uses_augmenters(&self) -> bool {
        crate::registry::mclrec_settings(self).is_some_and(|s| s.uses_augmenters())
    }

    /// Checks the values; the message names the offending setting.
    pub fn validate(&self) -> Result<(), String> {
        self.check_each()?;
        if TRANSFORMERS.contains(&self.model) && !self.hidden.is_multiple_of(self.heads) {
            return Err(format!(
                "--heads {}: must divide --hidden {} (each head is hidden / heads wide)",
                self.heads, self.hidden
            ));
        }
        Ok(())
    }

    /// The `config.toml` table: the run's settings at the top level (empty paths left
    /// out), then `[model]` with the model's name and the settings it uses.
    pub fn to_table(&self) -> toml::Table {
        let (mut top, mut section) = (toml::Table::new(), toml::Table::new());
        section.insert("name".into(), self.model.to_toml());
        for ((key, value), s) in self.entries().into_iter().zip(SETTINGS) {
            if key == "model" || value.as_str() == Some("") {
                continue;
            }
            match s.scope {
                Scope::Models(_) if s.scope.used_by(self.model) => {
                    section.insert(key.into(), value);
                }
                Scope::Models(_) => {}
                Scope::Run | Scope::Stored => {
                    top.insert(key.into(), value);
                }
            }
        }
        top.insert("model".into(), toml::Value::Table(section));
        top
    }
}

impl Serialize for TrainConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_table().serialize(s)
    }
}

/// A stored configuration: every setting it lacks takes its default for its model (and
/// its dataset's preset, by name), as for runs written before the setting existed.
impl<'de> Deserialize<'de> for TrainConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let table = toml::Table::deserialize(d)?;
        let partial =
            PartialConfig::from_table(&table, None, "config").map_err(D::Error::custom)?;
        let Some(dataset) = partial.dataset.clone() else {
            return Err(D::Error::custom("config: no dataset"));
        };
        let defaults = DefaultsFor {
            model: partial.model.unwrap_or(ModelKind::Mclrec),
            preset: Preset::parse(&dataset).unwrap_or(Preset::Beauty),
        };
        Ok(partial.with_defaults(&defaults))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_models_config_reads_back_as_written() {
        for model in ModelKind::ALL {
            for preset in Preset::ALL {
                let c = TrainConfig::for_model("beauty", model, preset);
                let text = toml::to_string(&c).unwrap();
                let back: TrainConfig = toml::from_str(&text).unwrap();
                assert_eq!(back, c, "{model:?} {preset:?}:\n{text}");
                // The model's own settings sit in [model], and only those it uses.
                let table: toml::Table = toml::from_str(&text).unwrap();
                let section = table["model"].as_table().unwrap();
                assert_eq!(section["name"].as_str(), Some(model.name()));
                for ((_, value), s) in c.entries().into_iter().zip(SETTINGS) {
                    let in_section = section.contains_key(s.key);
                    // An empty path is left out.
                    let wanted = matches!(s.scope, Scope::Models(_))
                        && s.scope.used_by(model)
                        && value.as_str() != Some("");
                    assert_eq!(in_section, wanted, "{model:?}: {}", s.key);
                }
            }
        }
    }

    #[test]
    fn the_flat_layout_of_earlier_runs_reads_as_the_model_section() {
        let flat = "dataset = \"beauty\"\nmodel = \"cl4srec\"\nepochs = 7\nlambda = 0.2\nbeta = 0.0\nschedule = \"three-step\"\n";
        let sectioned =
            "dataset = \"beauty\"\nepochs = 7\n[model]\nname = \"cl4srec\"\nlambda = 0.2\n";
        let (a, b): (TrainConfig, TrainConfig) = (
            toml::from_str(flat).unwrap(),
            toml::from_str(sectioned).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!((a.model, a.epochs, a.lambda), (ModelKind::Cl4srec, 7, 0.2));
        // What the paper's Beauty CL4SRec run archived in results/ (the flat layout).
        let archived = include_str!("../../results/beauty-cl4srec/config.toml");
        let c: TrainConfig = toml::from_str(archived).unwrap();
        assert_eq!((c.model, c.lambda, c.beta), (ModelKind::Cl4srec, 0.1, 0.0));
    }

    #[test]
    fn a_setting_the_model_does_not_use_is_refused_unless_it_is_the_value_it_has() {
        let given = |model, key: &str, text: &str| {
            let mut p = PartialConfig {
                model: Some(model),
                ..Default::default()
            };
            p.set_text(key, text).unwrap();
            p.resolve(Preset::Beauty)
        };
        let e = given(ModelKind::Caser, "lambda", "0.3").unwrap_err();
        assert_eq!(
            e,
            "--lambda 0.3: caser does not use it (a setting of cl4srec, duorec, mclrec)"
        );
        assert!(given(ModelKind::Caser, "lambda", "0").is_ok());
        assert!(given(ModelKind::Bpr, "dropout", "0.2").is_err());
        assert_eq!(
            given(ModelKind::Mclrec, "lambda", "0.3").unwrap().lambda,
            0.3
        );
        // Each model's own defaults, and the preset's weights for MCLRec only.
        let sports = |model| {
            PartialConfig {
                model: Some(model),
                ..Default::default()
            }
            .resolve(Preset::Sports)
            .unwrap()
        };
        assert_eq!(
            (
                sports(ModelKind::Mclrec).lambda,
                sports(ModelKind::Mclrec).beta
            ),
            (0.04, 0.4)
        );
        assert_eq!(
            (
                sports(ModelKind::Cl4srec).lambda,
                sports(ModelKind::Cl4srec).beta
            ),
            (0.1, 0.0)
        );
        assert_eq!(
            (
                sports(ModelKind::Caser).max_len,
                sports(ModelKind::Caser).dropout
            ),
            (5, 0.4)
        );
        assert_eq!(sports(ModelKind::Bpr).loss, LossKind::Bpr);
    }

    #[test]
    fn a_bad_key_or_value_names_its_line() {
        let read = |text: &str| {
            let table: toml::Table = toml::from_str(text).unwrap();
            PartialConfig::from_table(&table, Some(text), "c.toml")
        };
        assert_eq!(
            read("epochs = 3\n\n[model]\nname = \"caser\"\nwindow = 5\n").unwrap_err(),
            "c.toml:5: unknown setting `window` in [model]"
        );
        assert_eq!(
            read("epochs = 3\n[model]\nepochs = 4\n").unwrap_err(),
            "c.toml:3: `epochs` is a setting of the run: it goes above [model]"
        );
        let e = read("lr = \"fast\"\n").unwrap_err();
        assert!(e.starts_with("c.toml:1: lr: "), "{e}");
        let e = read("[model]\nname = \"word2vec\"\n").unwrap_err();
        assert!(
            e.contains("c.toml:2:") && e.contains("`word2vec` is not a model"),
            "{e}"
        );
    }

    #[test]
    fn the_help_states_each_default_from_the_code() {
        let help = |key: &str| SETTINGS.iter().find(|s| s.key == key).unwrap().help();
        assert!(
            help("epochs").ends_with("[default: 100]"),
            "{}",
            help("epochs")
        );
        let caser = crate::registry::paper_defaults(ModelKind::Caser);
        assert!(help("max_len").contains(&format!("caser: {}", caser.max_len)));
        assert!(
            help("beta").contains("[models: mclrec]"),
            "{}",
            help("beta")
        );
        assert!(help("beta").contains("sports 0.4"), "{}", help("beta"));
        assert!(
            !help("no_reg").contains("default"),
            "a switch: {}",
            help("no_reg")
        );
    }
}
