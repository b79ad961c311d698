//! One batch through the training schedule: the encoder step, the augmenter step, and the
//! encoder step again (ARCHITECTURE.md section 4).

use mclrec_autograd::{Adam, Optimizer, Tape};
use mclrec_models::losses::{bce_loss, rec_loss, MclrecLosses};
use mclrec_models::{Bound, Mclrec, SeqBatch};
use mclrec_tensor::{Device, DeviceError};
use rand::RngCore;

use crate::augment::two_views;
use crate::config::{LossKind, ModelKind, Schedule, TrainConfig};
use crate::TrainSample;

/// The loss terms of a batch's first encoder step (what the epoch log averages).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLosses {
    /// `L_rec`.
    pub rec: f64,
    /// `L_cl1` (0 when not computed).
    pub cl1: f64,
    /// `L_cl2` (0 when not computed).
    pub cl2: f64,
    /// `R` (0 when not computed).
    pub reg: f64,
}

/// A non-finite loss: which step of which batch.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFiniteLoss {
    /// `1 (encoder)`, `2 (augmenters)` or `3 (encoder)`.
    pub step: &'static str,
    /// The loss value.
    pub value: f64,
}

/// The model, its two optimisers and the settings of the schedule.
pub struct Learner {
    /// The model and its parameters.
    pub model: Mclrec<f32>,
    /// Adam over the encoder.
    pub encoder_opt: Adam<f32>,
    /// Adam over the augmenters.
    pub augmenter_opt: Adam<f32>,
    config: TrainConfig,
}

/// The padded batch of the samples `idx`, their targets, and (when `views`) two augmented
/// views of every sequence drawn from `rng`.
pub fn make_batch(
    samples: &[TrainSample],
    idx: &[usize],
    views: bool,
    rng: &mut impl rand::Rng,
) -> (SeqBatch, Vec<usize>, Option<Views>) {
    let inputs: Vec<&[usize]> = idx.iter().map(|&i| samples[i].input.as_slice()).collect();
    let targets = idx.iter().map(|&i| samples[i].target).collect();
    let views = views.then(|| {
        let (a, b): (Vec<Vec<usize>>, Vec<Vec<usize>>) =
            inputs.iter().map(|s| two_views(s, &mut *rng)).unzip();
        Views {
            first: SeqBatch::new(&a),
            second: SeqBatch::new(&b),
        }
    });
    (SeqBatch::new(&inputs), targets, views)
}

/// The two augmented views of a batch.
pub struct Views {
    /// View 1 of every sequence.
    pub first: SeqBatch,
    /// View 2 of every sequence.
    pub second: SeqBatch,
}

impl Learner {
    /// Wraps a model with fresh optimisers.
    pub fn new(model: Mclrec<f32>, config: &TrainConfig) -> Self {
        let encoder_opt = Adam::new(model.encoder_group, config.lr);
        let augmenter_opt = Adam::new(model.augmenter_group, config.lr_augmenter);
        Learner {
            model,
            encoder_opt,
            augmenter_opt,
            config: config.clone(),
        }
    }

    /// Moves the parameters and the optimisers' moments to `device` (a learner is built on
    /// the CPU; a resumed one is loaded there first).
    pub fn to_device(&mut self, device: Device) -> Result<(), DeviceError> {
        self.model.store.to_device(device)?;
        self.encoder_opt.to_device(device)?;
        self.augmenter_opt.to_device(device)
    }

    /// Runs the schedule on one batch. `views` are drawn once per batch and shared by its
    /// steps; dropout masks are fresh at every forward pass. A non-finite loss skips its
    /// update and is returned as an error.
    pub fn train_batch(
        &mut self,
        batch: &SeqBatch,
        targets: &[usize],
        views: Option<&Views>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss> {
        let mclrec = self.config.model == ModelKind::Mclrec;
        let meta = self.config.uses_augmenters();
        let joint = mclrec && self.config.schedule == Schedule::Joint;
        // The sequences and their views go through the encoder as one packed batch.
        let with_views = views
            .filter(|_| self.config.needs_views())
            .map(|v| SeqBatch::concat(&[batch, &v.first, &v.second]));
        let all = with_views.as_ref().unwrap_or(batch);
        // BCE's negatives are drawn once per batch (both encoder steps score them).
        let negatives =
            (self.config.loss == LossKind::Bce).then(|| self.draw_negatives(batch, targets, rng));
        let negatives = negatives.as_deref();
        let first = self.encoder_step(all, targets, negatives, joint, "1 (encoder)", rng)?;
        if mclrec && meta && !joint {
            let views = views.expect("MCLRec needs views");
            self.augmenter_step(&SeqBatch::concat(&[&views.first, &views.second]), rng)?;
            if self.config.schedule == Schedule::ThreeStep {
                self.encoder_step(all, targets, negatives, false, "3 (encoder)", rng)?;
            }
        }
        Ok(first)
    }

    /// `L_rec + lambda L_cl1 + beta (L_cl2 + R)`, updating the encoder (and, with `joint`,
    /// the augmenters as well). The augmenters are bound as constants otherwise: gradients
    /// flow through them into the encoder but are not computed for them. `all` holds the
    /// batch's sequences, then (when the model uses them) their first and second views.
    fn encoder_step(
        &mut self,
        all: &SeqBatch,
        targets: &[usize],
        negatives: Option<&[usize]>,
        joint: bool,
        step: &'static str,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss> {
        // The tape holds clones of the parameters: it is dropped at the end of this block,
        // before the update, so that Adam writes the parameters in place instead of
        // copying every shared one first.
        let (out, grads) = {
            let c = &self.config;
            let m = &self.model;
            let tape = Tape::new();
            let groups = if joint {
                vec![m.encoder_group, m.augmenter_group]
            } else {
                vec![m.encoder_group]
            };
            let p = Bound::new(&tape, &m.store, &groups);
            let mut drop = m.encoder.dropouts(Some(rng));
            let b = targets.len();
            let encoded = m.encoder.forward(&p, all, &mut drop);
            let h = if all.len() == b {
                encoded
            } else {
                encoded.narrow(0, 0, b)
            };
            let classes = m.encoder.class_embeddings(&p);
            let rec = match negatives {
                Some(negs) => bce_loss(h, classes, targets, negs),
                None => rec_loss(h, classes, targets),
            };
            let mut out = BatchLosses {
                rec: rec.value().item() as f64,
                ..Default::default()
            };
            let mut loss = rec;
            if all.len() == 3 * b {
                let (h1, h2) = (encoded.narrow(0, b, b), encoded.narrow(0, 2 * b, b));
                if c.uses_augmenters() {
                    let z1 = m.aug_1.forward(&p, h1);
                    let z2 = m.second_augmenter().forward(&p, h2);
                    let terms = MclrecLosses::new(None, h1, h2, z1, z2);
                    out.cl1 = terms.cl1.value().item() as f64;
                    let (cl2, reg) = (terms.cl2(), terms.reg());
                    out.cl2 = cl2.value().item() as f64;
                    out.reg = reg.value().item() as f64;
                    // A zero weight (Beauty's lambda) adds nothing but a backward pass.
                    if c.lambda != 0.0 {
                        loss = loss.add(terms.cl1.mul_scalar(c.lambda as f32));
                    }
                    if !c.no_cl2 {
                        loss = loss.add(cl2.mul_scalar(c.beta as f32));
                    }
                    if !c.no_reg {
                        loss = loss.add(reg.mul_scalar(c.beta as f32));
                    }
                } else {
                    let cl1 = mclrec_models::losses::info_nce(h1, h2);
                    out.cl1 = cl1.value().item() as f64;
                    loss = loss.add(cl1.mul_scalar(c.lambda as f32));
                }
            }
            let value = loss.value().item() as f64;
            if !value.is_finite() {
                return Err(NonFiniteLoss { step, value });
            }
            (out, loss.backward())
        };
        apply_update(self, grads, joint);
        Ok(out)
    }

    /// One negative per target for the BCE loss: an item that is neither the target nor in
    /// the input sequence (SASRec's rule, over the sample's input rather than the user's
    /// whole history), uniformly.
    fn draw_negatives(
        &self,
        batch: &SeqBatch,
        targets: &[usize],
        rng: &mut dyn RngCore,
    ) -> Vec<usize> {
        use rand::Rng;
        let n = self.model.encoder.config.n_real_items();
        targets
            .iter()
            .enumerate()
            .map(|(s, &t)| {
                let seen = &batch.items[batch.layout.range(s)];
                // A bounded search: a sequence that holds nearly every item takes what it gets.
                let mut j = rng.gen_range(1..=n);
                for _ in 0..64 {
                    if j != t && !seen.contains(&j) {
                        break;
                    }
                    j = rng.gen_range(1..=n);
                }
                j
            })
            .collect()
    }

    /// `lambda L_cl1 + L_cl2 + R` recomputed with the current encoder, updating only the
    /// augmenters (the encoder is bound as constants, so no encoder backward runs).
    /// `views` holds the first views, then the second.
    fn augmenter_step(
        &mut self,
        views: &SeqBatch,
        rng: &mut dyn RngCore,
    ) -> Result<(), NonFiniteLoss> {
        // As in `encoder_step`: the tape is gone before the update.
        let grads = {
            let c = &self.config;
            let m = &self.model;
            let tape = Tape::new();
            let p = Bound::new(&tape, &m.store, &[m.augmenter_group]);
            let mut drop = m.encoder.dropouts(Some(rng));
            let b = views.len() / 2;
            let encoded = m.encoder.forward(&p, views, &mut drop);
            let (h1, h2) = (encoded.narrow(0, 0, b), encoded.narrow(0, b, b));
            let z1 = m.aug_1.forward(&p, h1);
            let z2 = m.second_augmenter().forward(&p, h2);
            let terms = MclrecLosses::new(None, h1, h2, z1, z2);
            let mut parts = Vec::new();
            if c.lambda != 0.0 {
                parts.push(terms.cl1.mul_scalar(c.lambda as f32));
            }
            if !c.no_cl2 {
                parts.push(terms.cl2());
            }
            if !c.no_reg {
                parts.push(terms.reg());
            }
            let Some(loss) = parts.into_iter().reduce(|a, b| a.add(b)) else {
                return Ok(()); // nothing to optimise (validated configs never get here)
            };
            let value = loss.value().item() as f64;
            if !value.is_finite() {
                return Err(NonFiniteLoss {
                    step: "2 (augmenters)",
                    value,
                });
            }
            loss.backward()
        };
        grads.accumulate_into(&mut self.model.store);
        self.augmenter_opt.step(&mut self.model.store);
        self.augmenter_opt.zero_grad(&mut self.model.store);
        Ok(())
    }
}

/// Applies a backward pass's gradients: the encoder's Adam, and with `joint` the
/// augmenters' too (one Adam per group is the same as one Adam over both: Adam is
/// per-parameter).
fn apply_update(l: &mut Learner, grads: mclrec_autograd::Gradients<f32>, joint: bool) {
    grads.accumulate_into(&mut l.model.store);
    l.encoder_opt.step(&mut l.model.store);
    l.encoder_opt.zero_grad(&mut l.model.store);
    if joint {
        l.augmenter_opt.step(&mut l.model.store);
        l.augmenter_opt.zero_grad(&mut l.model.store);
    }
}
