//! Everything a training run is configured by, resolved to concrete values.

use serde::{Deserialize, Serialize};

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
}

impl ModelKind {
    /// Every model, in the order of the paper's Table 3.
    pub const ALL: [ModelKind; 8] = [
        ModelKind::Bpr,
        ModelKind::Gru4rec,
        ModelKind::Caser,
        ModelKind::Sasrec,
        ModelKind::Bert4rec,
        ModelKind::S3recMip,
        ModelKind::Cl4srec,
        ModelKind::Mclrec,
    ];

    /// The model's name (`bpr`, `gru4rec`, `caser`, `sasrec`, `bert4rec`, `s3rec-mip`,
    /// `cl4srec`, `mclrec`).
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

/// A fully resolved training configuration (written to the run's `config.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The dataset: `beauty` or `sports` (built in), or the file's absolute path.
    pub dataset: String,
    /// The SHA-256 of the dataset's bytes (empty when unknown, as in runs from before it was
    /// stored): a resumed run refuses a dataset that changed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dataset_sha256: String,
    /// Weights the encoder starts from (a checkpoint of this project, official safetensors
    /// or a PyTorch `.pth`); empty: a fresh initialisation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub init: String,
    /// The model.
    pub model: ModelKind,
    /// The schedule (MCLRec only).
    pub schedule: Schedule,
    /// Maximum epochs.
    pub epochs: usize,
    /// Training batch size.
    pub batch_size: usize,
    /// Adam learning rate of the encoder.
    pub lr: f64,
    /// Adam learning rate of the augmenters.
    pub lr_augmenter: f64,
    /// Weight of `L_cl1`.
    pub lambda: f64,
    /// Weight of the meta terms `L_cl2 + R` in the encoder steps.
    pub beta: f64,
    /// Hidden and attention dropout.
    pub dropout: f64,
    /// Longest input sequence.
    pub max_len: usize,
    /// The seed of every random draw.
    pub seed: u64,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// `cpu`, or `cuda` / `cuda:N` where a CUDA build and GPU are present.
    pub device: String,
    /// The validation metric early stopping follows (`mrr@10`, `ndcg@20`, `hr@20`, ...).
    pub early_stop_metric: String,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// Ablation: drop `L_cl2`.
    pub no_cl2: bool,
    /// Ablation: drop the regulariser `R`.
    pub no_reg: bool,
    /// Ablation: one augmenter for both views.
    pub shared_augmenter: bool,
    /// The loss of next-item prediction (`ce` unless said: runs from before it existed).
    #[serde(default)]
    pub loss: LossKind,
    /// The ranking protocol of validation and test (`full` unless said).
    #[serde(default)]
    pub eval: EvalProtocol,
    /// Users per evaluation chunk.
    pub eval_chunk: usize,
    /// BERT4Rec, S3-Rec: the probability that an item of a training sequence is masked.
    #[serde(default = "default_mask_ratio")]
    pub mask_ratio: f64,
    /// S3-Rec: pre-training epochs before the `epochs` of fine-tuning.
    #[serde(default = "default_pretrain_epochs")]
    pub pretrain_epochs: usize,
    /// S3-Rec: the pre-training run whose last checkpoint is fine-tuned (then no
    /// pre-training epochs run); empty: pre-train first.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pretrained: String,
}

fn default_mask_ratio() -> f64 {
    mclrec_models::Bert4RecSettings::default().mask_ratio
}

fn default_pretrain_epochs() -> usize {
    mclrec_models::S3RecSettings::default().pretrain_epochs
}

impl TrainConfig {
    /// The paper's settings for a dataset name: the [`Preset`] of that name (`sports`,
    /// `yelp`), else Beauty's.
    pub fn paper(dataset: &str) -> Self {
        Self::for_preset(dataset, Preset::parse(dataset).unwrap_or(Preset::Beauty))
    }

    /// The paper's settings of `preset` for `dataset`.
    pub fn for_preset(dataset: &str, preset: Preset) -> Self {
        let (lambda, beta) = preset.weights();
        TrainConfig {
            lambda,
            beta,
            ..Self::paper_beauty(dataset)
        }
    }

    /// The paper's Beauty settings for `dataset`.
    pub fn paper_beauty(dataset: &str) -> Self {
        TrainConfig {
            dataset: dataset.to_string(),
            dataset_sha256: String::new(),
            init: String::new(),
            model: ModelKind::Mclrec,
            schedule: Schedule::ThreeStep,
            epochs: 100,
            batch_size: 256,
            lr: 1e-3,
            lr_augmenter: 1e-3,
            lambda: 0.0,
            beta: 0.05,
            dropout: 0.5,
            max_len: 50,
            seed: 2023,
            threads: 0,
            device: "cpu".into(),
            early_stop_metric: "mrr@10".into(),
            patience: 10,
            no_cl2: false,
            no_reg: false,
            shared_augmenter: false,
            loss: LossKind::Ce,
            eval: EvalProtocol::Full,
            eval_chunk: 128,
            mask_ratio: default_mask_ratio(),
            pretrain_epochs: default_pretrain_epochs(),
            pretrained: String::new(),
        }
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
        let positive = |v: f64, name: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a positive number, got {v}"))
            }
        };
        positive(self.lr, "lr")?;
        positive(self.lr_augmenter, "lr-augmenter")?;
        for (v, name) in [(self.lambda, "lambda"), (self.beta, "beta")] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("{name} must be a number >= 0, got {v}"));
            }
        }
        if !(self.mask_ratio > 0.0 && self.mask_ratio < 1.0) {
            return Err(format!(
                "mask-ratio must be in (0, 1), got {}",
                self.mask_ratio
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.batch_size < 2 {
            return Err(format!(
                "batch-size must be at least 2 (contrastive losses need pairs), got {}",
                self.batch_size
            ));
        }
        if self.max_len == 0 {
            return Err("max-len must be at least 1".into());
        }
        if self.epochs == 0 {
            return Err("epochs must be at least 1".into());
        }
        if self.patience == 0 {
            return Err(
                "patience must be at least 1 (epochs without improvement before stopping)".into(),
            );
        }
        if self.eval_chunk == 0 {
            return Err("eval-chunk must be at least 1".into());
        }
        if crate::Metrics::from_ranks(&[1])
            .get(&self.early_stop_metric)
            .is_none()
        {
            return Err(format!(
                "early-stop-metric `{}` is not one of hr@k, ndcg@k, mrr@k with k in 5, 10, 20, 50",
                self.early_stop_metric
            ));
        }
        Ok(())
    }
}
