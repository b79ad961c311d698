//! SASRec, CL4SRec and MCLRec as one [`Recommender`]: the same encoder and augmenters,
//! with the loss weights and the per-batch schedule of each (ARCHITECTURE.md section 4).
//!
//! * SASRec (Kang and McAuley, ICDM'18, as RecBole): `L_rec` alone, one step per batch.
//! * CL4SRec (Xie et al., ICDE'22): `L_rec + lambda L_cl1` over two augmented views
//!   (crop / mask / reorder), one step per batch.
//! * MCLRec (Qin et al., SIGIR'23; the official `trainers.py`): the encoder step on
//!   `L_rec + lambda L_cl1 + beta (L_cl2 + R)`, the augmenter step on
//!   `lambda L_cl1 + L_cl2 + R`, and the encoder step again ([`Schedule::ThreeStep`]).

use mclrec_autograd::{GroupId, ParamStore};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::augment::two_views;
use crate::losses::{info_nce, MclrecLosses, MclrecWeights};
use crate::next_item::{draw_negatives, next_item_loss, LossKind};
use crate::recommender::{
    encoder_scores, scalar, BatchLosses, GroupSpec, NonFiniteLoss, Optimisers, TrainBatch,
};
use crate::{Mclrec, Recommender, SasRecConfig, SeqBatch};

/// Which member of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MclrecVariant {
    /// `L_rec` only, no views.
    Sasrec,
    /// `L_rec + lambda L_cl1`, one step.
    Cl4srec,
    /// The meta-optimisation schedule.
    Mclrec,
}

/// The per-batch schedule of MCLRec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The official code: encoder step, augmenter step, encoder step again.
    ThreeStep,
    /// The paper's Algorithm 1: encoder step, then augmenter step.
    TwoStage,
    /// MCLRec-J: everything updated together on the encoder-step loss.
    Joint,
}

impl Schedule {
    /// Every schedule.
    pub const ALL: [Schedule; 3] = [Schedule::ThreeStep, Schedule::TwoStage, Schedule::Joint];

    /// `three-step`, `two-stage` or `joint`.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::ThreeStep => "three-step",
            Schedule::TwoStage => "two-stage",
            Schedule::Joint => "joint",
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Schedule::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("`{s}` is not a schedule (three-step, two-stage, joint)"))
    }
}

/// The family's settings beyond the encoder's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MclrecSettings {
    /// The member.
    pub variant: MclrecVariant,
    /// MCLRec's schedule (ignored by the others).
    pub schedule: Schedule,
    /// Weight of `L_cl1` (Beauty 0, Sports 0.04, Yelp 0.03 for MCLRec; 0.1 for CL4SRec).
    pub lambda: f64,
    /// Weight of `L_cl2 + R` in the encoder steps (Beauty 0.05, Sports 0.4, Yelp 0.1).
    pub beta: f64,
    /// Ablation: drop `L_cl2`.
    pub no_cl2: bool,
    /// Ablation: drop `R`.
    pub no_reg: bool,
    /// Ablation: one augmenter for both views.
    pub shared_augmenter: bool,
    /// The learning rate of the augmenters' Adam.
    pub lr_augmenter: f64,
    /// The next-item loss preset.
    pub loss: LossKind,
}

impl MclrecSettings {
    /// Plain SASRec (CE loss; the augmenters' settings unused).
    pub fn sasrec() -> Self {
        MclrecSettings {
            variant: MclrecVariant::Sasrec,
            schedule: Schedule::ThreeStep,
            lambda: 0.0,
            beta: 0.0,
            no_cl2: false,
            no_reg: false,
            shared_augmenter: false,
            lr_augmenter: 1e-3,
            loss: LossKind::Ce,
        }
    }

    /// Whether the contrastive views are needed at all.
    pub fn needs_views(&self) -> bool {
        match self.variant {
            MclrecVariant::Sasrec => false,
            MclrecVariant::Cl4srec => self.lambda != 0.0,
            MclrecVariant::Mclrec => self.lambda != 0.0 || self.beta != 0.0,
        }
    }

    /// Whether the augmenters take part (MCLRec with meta terms).
    pub fn uses_augmenters(&self) -> bool {
        self.variant == MclrecVariant::Mclrec && self.beta != 0.0 && !(self.no_cl2 && self.no_reg)
    }

    fn weights(&self) -> MclrecWeights {
        MclrecWeights {
            lambda: self.lambda,
            beta: self.beta,
            cl2: !self.no_cl2,
            reg: !self.no_reg,
        }
    }
}

/// The network and its settings.
#[derive(Clone, Debug)]
pub struct MclrecModel<E: Element> {
    /// The encoder, the augmenters and their parameters.
    pub net: Mclrec<E>,
    /// Loss weights and schedule.
    pub settings: MclrecSettings,
}

impl<E: Element> MclrecModel<E> {
    /// A freshly initialised model (encoder, then augmenters, from `rng`).
    pub fn new(encoder: SasRecConfig, settings: MclrecSettings, rng: &mut dyn RngCore) -> Self {
        MclrecModel {
            net: Mclrec::new(encoder, settings.shared_augmenter, rng),
            settings,
        }
    }

    /// A SASRec model of SASRec-shaped encoder weights (the official checkpoint, a PyTorch
    /// `.pth` converted to safetensors, any checkpoint of the family), its configuration
    /// read from their shapes ([`crate::weights::load_encoder`]) for `n_items` items.
    pub fn from_encoder_weights(
        bytes: &[u8],
        label: &str,
        n_items: usize,
    ) -> Result<Self, crate::weights::WeightsError> {
        let (_, encoder) = crate::weights::load_encoder::<E>(bytes, label, n_items, 2)?;
        // The initialisation is overwritten: every encoder weight comes from `bytes`.
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        let mut model = Self::new(encoder.config, MclrecSettings::sasrec(), &mut rng);
        crate::weights::init_encoder_from(&mut model.net.store, bytes, label)?;
        Ok(model)
    }

    /// `L_rec + lambda L_cl1 + beta (L_cl2 + R)` (the terms the settings keep), updating
    /// the encoder (and, with `joint`, the augmenters as well). The augmenters are bound as
    /// constants otherwise: gradients flow through them into the encoder but are not
    /// computed for them. `all` holds the batch's sequences, then (when the model uses
    /// them) their first and second views.
    #[allow(clippy::too_many_arguments)]
    fn encoder_step(
        &mut self,
        opt: &mut Optimisers<E>,
        all: &SeqBatch,
        targets: &[usize],
        negatives: Option<&[usize]>,
        joint: bool,
        step: &'static str,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss> {
        let s = self.settings;
        let Mclrec {
            store,
            encoder,
            aug_1,
            aug_2,
            encoder_group,
            augmenter_group,
        } = &mut self.net;
        let groups: &[GroupId] = if joint {
            &[*encoder_group, *augmenter_group]
        } else {
            &[*encoder_group]
        };
        let aug_2 = aug_2.as_ref().unwrap_or(aug_1);
        opt.step(store, groups, step, |p| {
            let mut drop = encoder.dropouts(Some(rng));
            let b = targets.len();
            let encoded = encoder.forward(p, all, &mut drop);
            let h = if all.len() == b {
                encoded
            } else {
                encoded.narrow(0, 0, b)
            };
            let classes = encoder.class_embeddings(p);
            let rec = next_item_loss(s.loss, h, classes, targets, negatives);
            let mut out = BatchLosses {
                rec: scalar(rec),
                ..Default::default()
            };
            if all.len() != 3 * b {
                return (rec, out);
            }
            let (h1, h2) = (encoded.narrow(0, b, b), encoded.narrow(0, 2 * b, b));
            if s.uses_augmenters() {
                let (z1, z2) = (aug_1.forward(p, h1), aug_2.forward(p, h2));
                let terms = MclrecLosses::new(Some(rec), h1, h2, z1, z2);
                out.cl1 = scalar(terms.cl1);
                out.cl2 = scalar(terms.cl2());
                out.reg = scalar(terms.reg());
                (terms.encoder_objective(&s.weights()), out)
            } else {
                let cl1 = info_nce(h1, h2);
                out.cl1 = scalar(cl1);
                (rec.add(cl1.mul_scalar(E::from_f64(s.lambda))), out)
            }
        })
    }

    /// `lambda L_cl1 + L_cl2 + R` recomputed with the current encoder, updating only the
    /// augmenters (the encoder is bound as constants, so no encoder backward runs).
    /// `views` holds the first views, then the second.
    fn augmenter_step(
        &mut self,
        opt: &mut Optimisers<E>,
        views: &SeqBatch,
        rng: &mut dyn RngCore,
    ) -> Result<(), NonFiniteLoss> {
        let w = self.settings.weights();
        let Mclrec {
            store,
            encoder,
            aug_1,
            aug_2,
            augmenter_group,
            ..
        } = &mut self.net;
        let aug_2 = aug_2.as_ref().unwrap_or(aug_1);
        opt.step(store, &[*augmenter_group], "2 (augmenters)", |p| {
            let mut drop = encoder.dropouts(Some(rng));
            let b = views.len() / 2;
            let encoded = encoder.forward(p, views, &mut drop);
            let (h1, h2) = (encoded.narrow(0, 0, b), encoded.narrow(0, b, b));
            let (z1, z2) = (aug_1.forward(p, h1), aug_2.forward(p, h2));
            let terms = MclrecLosses::new(None, h1, h2, z1, z2);
            let loss = terms
                .augmenter_objective(&w)
                .expect("the augmenters take part only with a term to minimise");
            (loss, ())
        })
    }
}

impl<E: Element> Recommender<E> for MclrecModel<E> {
    fn name(&self) -> &'static str {
        match self.settings.variant {
            MclrecVariant::Sasrec => "sasrec",
            MclrecVariant::Cl4srec => "cl4srec",
            MclrecVariant::Mclrec => "mclrec",
        }
    }

    fn store(&self) -> &ParamStore<E> {
        &self.net.store
    }

    fn store_mut(&mut self) -> &mut ParamStore<E> {
        &mut self.net.store
    }

    fn groups(&self) -> Vec<GroupSpec> {
        let store = &self.net.store;
        vec![
            GroupSpec {
                id: self.net.encoder_group,
                name: store.group_name(self.net.encoder_group).to_string(),
                lr: None,
            },
            GroupSpec {
                id: self.net.augmenter_group,
                name: store.group_name(self.net.augmenter_group).to_string(),
                lr: Some(self.settings.lr_augmenter),
            },
        ]
    }

    fn max_len(&self) -> usize {
        self.net.encoder.config.max_len
    }

    fn n_items(&self) -> usize {
        self.net.encoder.config.n_real_items()
    }

    /// The schedule on one batch. The views are drawn once per batch and shared by its
    /// steps, as are BCE's negatives; dropout masks are fresh at every forward pass.
    fn train_batch(
        &mut self,
        batch: &TrainBatch<'_>,
        _epoch: usize,
        opt: &mut Optimisers<E>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss> {
        let s = self.settings;
        let seqs = SeqBatch::new(batch.inputs);
        let views = s.needs_views().then(|| {
            let (a, b): (Vec<Vec<usize>>, Vec<Vec<usize>>) = batch
                .inputs
                .iter()
                .map(|seq| two_views(seq, &mut &mut *rng))
                .unzip();
            (SeqBatch::new(&a), SeqBatch::new(&b))
        });
        // The sequences and their views go through the encoder as one packed batch.
        let with_views = views
            .as_ref()
            .map(|(a, b)| SeqBatch::concat(&[&seqs, a, b]));
        let all = with_views.as_ref().unwrap_or(&seqs);
        let negatives = s
            .loss
            .samples_negatives()
            .then(|| draw_negatives(batch.inputs, batch.targets, self.n_items(), rng));
        let negatives = negatives.as_deref();
        let mclrec = s.variant == MclrecVariant::Mclrec;
        let joint = mclrec && s.schedule == Schedule::Joint;
        let first = self.encoder_step(
            opt,
            all,
            batch.targets,
            negatives,
            joint,
            "1 (encoder)",
            rng,
        )?;
        if s.uses_augmenters() && !joint {
            let (a, b) = views.as_ref().expect("MCLRec's meta terms need views");
            self.augmenter_step(opt, &SeqBatch::concat(&[a, b]), rng)?;
            if s.schedule == Schedule::ThreeStep {
                self.encoder_step(
                    opt,
                    all,
                    batch.targets,
                    negatives,
                    false,
                    "3 (encoder)",
                    rng,
                )?;
            }
        }
        Ok(first)
    }

    fn scores(&self, _users: &[usize], inputs: &[&[usize]]) -> Tensor<E> {
        encoder_scores(&self.net.store, &self.net.encoder, inputs)
    }
}
