//! What a sequential recommender is to the trainer: [`Recommender`].
//!
//! A model owns its parameters ([`ParamStore`]) in named groups, trains on a batch of
//! samples by running its own schedule of optimiser steps (SASRec: one step; MCLRec: an
//! encoder step, an augmenter step, an encoder step again; S3-Rec: pre-training epochs,
//! then fine-tuning epochs), and scores every item for a batch of users' sequences. The
//! trainer, evaluation, checkpoints and every command of the CLI see nothing else, so a new
//! model is one implementation of this trait and one name in the registry.
//!
//! Each optimiser step goes through [`Optimisers::step`]: bind the step's groups to a fresh
//! tape, build the loss, refuse a non-finite one, run the backward pass, drop the tape, and
//! update those groups with their Adam.
//!
//! ```
//! use mclrec_autograd::ParamStore;
//! use mclrec_models::recommender::{Optimisers, TrainBatch};
//! use mclrec_models::{Gru4RecModel, Gru4RecSettings, LossKind, Recommender};
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! let settings = Gru4RecSettings { dim: 8, hidden: 8, dropout: 0.0, max_len: 5, loss: LossKind::Ce };
//! let mut model = Gru4RecModel::<f64>::new(&settings, 6, &mut rng);
//! let mut opt = Optimisers::new(&model.groups(), 0.05);
//! let (users, targets) = (vec![1, 2], vec![3, 4]);
//! let inputs: Vec<&[usize]> = vec![&[1, 2], &[2, 3]];
//! let batch = TrainBatch { users: &users, inputs: &inputs, targets: &targets, same_target: None };
//! let first = model.train_batch(&batch, 1, &mut opt, &mut rng).unwrap().rec;
//! for _ in 0..30 {
//!     model.train_batch(&batch, 1, &mut opt, &mut rng).unwrap();
//! }
//! let last = model.train_batch(&batch, 1, &mut opt, &mut rng).unwrap().rec;
//! assert!(last < first / 2.0, "{first} -> {last}");
//! // Scores of every real item (6 of them) for each sequence.
//! assert_eq!(model.scores(&users, &inputs).shape(), &[2, 6]);
//! ```

use mclrec_autograd::{Adam, GroupId, Optimizer, ParamId, ParamStore, Tape, Var};
use mclrec_tensor::{Device, DeviceError, Element, Tensor};
use rand::RngCore;

use crate::{Bound, Dropouts, SeqBatch};

/// One training batch as the sampler draws it: for each sample its user (row of the user
/// table, 0-based), its input sequence (item ids, oldest first) and the item that follows.
#[derive(Clone, Copy, Debug)]
pub struct TrainBatch<'a> {
    /// The user of each sample.
    pub users: &'a [usize],
    /// The input sequence of each sample (at most the model's `max_len` items).
    pub inputs: &'a [&'a [usize]],
    /// The next item of each sample.
    pub targets: &'a [usize],
    /// For a model that [wants them](Recommender::wants_same_target): for each sample the
    /// input of another training sample with the same next item, drawn by the trainer
    /// (DuoRec's supervised positives); `None` otherwise.
    pub same_target: Option<&'a [&'a [usize]]>,
}

impl TrainBatch<'_> {
    /// Samples in the batch.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// The loss terms of a batch's first step (what the epoch log averages; a model without a
/// term leaves it 0).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLosses {
    /// The model's main objective: next-item prediction (`L_rec`), Cloze, MIP or BPR.
    pub rec: f64,
    /// `L_cl1`.
    pub cl1: f64,
    /// `L_cl2`.
    pub cl2: f64,
    /// `R` (MCLRec), or a weight regulariser (Caser).
    pub reg: f64,
}

impl BatchLosses {
    /// A step's loss that is its model's main objective alone, with the terms to log.
    pub fn main_objective<E: Element>(loss: Var<'_, E>) -> (Var<'_, E>, BatchLosses) {
        let terms = BatchLosses {
            rec: scalar(loss),
            ..Default::default()
        };
        (loss, terms)
    }
}

/// A non-finite loss: which step. Its update was skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFiniteLoss {
    /// The step's name, e.g. `1 (encoder)`.
    pub step: &'static str,
    /// The loss value.
    pub value: f64,
}

/// What an epoch is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochRole {
    /// Pre-training (S3-Rec): one pass over each user's whole training sequence, no
    /// validation, no early stopping.
    Pretrain,
    /// Training towards the task: validated after the epoch.
    Train,
}

/// A parameter group and the learning rate of its Adam.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSpec {
    /// The group in the model's store.
    pub id: GroupId,
    /// Its name (the key of its optimiser state in a checkpoint).
    pub name: String,
    /// `Some(lr)`: its own learning rate; `None`: the run's.
    pub lr: Option<f64>,
}

/// A sequential recommender, as the trainer and every command see it.
///
/// Implemented by [`crate::MclrecModel`] (SASRec, CL4SRec and MCLRec with every schedule
/// and ablation), [`crate::BprModel`], [`crate::Gru4RecModel`], [`crate::CaserModel`],
/// [`crate::Bert4RecModel`], [`crate::S3RecModel`] and [`crate::DuoRecModel`].
pub trait Recommender<E: Element>: Send + Sync {
    /// The model's registry name (`mclrec`, `gru4rec`, ...).
    fn name(&self) -> &'static str;

    /// Every parameter.
    fn store(&self) -> &ParamStore<E>;

    /// Every parameter, to load or update.
    fn store_mut(&mut self) -> &mut ParamStore<E>;

    /// The optimiser groups, in a fixed order (one Adam each).
    fn groups(&self) -> Vec<GroupSpec>;

    /// The longest input sequence it reads (longer ones are cut to their last items).
    fn max_len(&self) -> usize;

    /// Real items (ids `1..=n_items`).
    fn n_items(&self) -> usize;

    /// Whether it scores a user by their row of a user table (BPR, Caser): then it knows
    /// only the users it was trained on, and cannot score a history alone.
    fn needs_known_user(&self) -> bool {
        false
    }

    /// Whether its batches need [`TrainBatch::same_target`] (DuoRec).
    fn wants_same_target(&self) -> bool {
        false
    }

    /// What epoch `epoch` (1-based) is for.
    fn epoch_role(&self, _epoch: usize) -> EpochRole {
        EpochRole::Train
    }

    /// Trains on one batch of epoch `epoch`: the model's schedule, each optimiser step
    /// through [`Optimisers::step`]; dropout masks and sampled items come from `rng`. A
    /// non-finite loss skips its update and ends the batch with the error.
    fn train_batch(
        &mut self,
        batch: &TrainBatch<'_>,
        epoch: usize,
        opt: &mut Optimisers<E>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss>;

    /// The scores `[n, n_items]` of every real item (column `j - 1` is item `j`) for each
    /// user's input sequence, in evaluation mode (no dropout, no masks drawn).
    fn scores(&self, users: &[usize], inputs: &[&[usize]]) -> Tensor<E>;
}

/// One Adam per parameter group, in the order of [`Recommender::groups`].
pub struct Optimisers<E: Element> {
    adams: Vec<(String, Adam<E>)>,
}

impl<E: Element> Optimisers<E> {
    /// Fresh Adams for `groups`; a group without its own learning rate gets `lr`.
    pub fn new(groups: &[GroupSpec], lr: f64) -> Self {
        Optimisers {
            adams: groups
                .iter()
                .map(|g| (g.name.clone(), Adam::new(g.id, g.lr.unwrap_or(lr))))
                .collect(),
        }
    }

    /// The optimisers by group name (what a checkpoint stores).
    pub fn named(&self) -> impl Iterator<Item = (&str, &Adam<E>)> {
        self.adams.iter().map(|(n, a)| (n.as_str(), a))
    }

    /// The optimisers by group name, to restore.
    pub fn named_mut(&mut self) -> impl Iterator<Item = (&str, &mut Adam<E>)> {
        self.adams.iter_mut().map(|(n, a)| (n.as_str(), a))
    }

    /// Moves every optimiser's moments to `device`.
    pub fn to_device(&mut self, device: Device) -> Result<(), DeviceError> {
        self.adams
            .iter_mut()
            .try_for_each(|(_, a)| a.to_device(device))
    }

    /// One optimiser step of the groups `update`: binds `store` to a fresh tape (those
    /// groups as leaves, the rest as constants, so no gradient is computed for them), builds
    /// the loss with `loss`, and, when it is finite, runs the backward pass and lets each
    /// group's Adam update it. `loss` also returns what the caller logs.
    ///
    /// The tape holds clones of the parameters: it is dropped before the update, so that
    /// Adam writes the parameters in place instead of copying every shared one first.
    pub fn step<T>(
        &mut self,
        store: &mut ParamStore<E>,
        update: &[GroupId],
        name: &'static str,
        loss: impl for<'t> FnOnce(&Bound<'t, E>) -> (Var<'t, E>, T),
    ) -> Result<T, NonFiniteLoss> {
        let (grads, out) = {
            let tape = Tape::new();
            let p = Bound::new(&tape, store, update);
            let (loss, out) = loss(&p);
            let value = loss.value().item().as_f64();
            if !value.is_finite() {
                return Err(NonFiniteLoss { step: name, value });
            }
            (loss.backward(), out)
        };
        grads.accumulate_into(store);
        // One Adam per group is the same as one Adam over them all: Adam is per-parameter.
        for g in update {
            let (_, adam) = self
                .adams
                .iter_mut()
                .find(|(_, a)| a.group() == *g)
                .expect("every updated group has an optimiser");
            adam.step(store);
            adam.zero_grad(store);
        }
        Ok(out)
    }
}

/// A loss's value, to log (`f64`).
pub(crate) fn scalar<E: Element>(v: Var<'_, E>) -> f64 {
    v.value().item().as_f64()
}

/// The representations `[n, d]` that `represent` gives `inputs`, with no gradients kept.
pub(crate) fn represent<E: Element>(
    store: &ParamStore<E>,
    inputs: &[&[usize]],
    represent: impl for<'t> FnOnce(&Bound<'t, E>, &SeqBatch) -> Var<'t, E>,
) -> Tensor<E> {
    let tape = Tape::new();
    let p = Bound::new(&tape, store, &[]);
    represent(&p, &SeqBatch::new(inputs)).value()
}

/// The scores `[n, n_items]` of a causal encoder's models (SASRec, CL4SRec, MCLRec, S3-Rec
/// fine-tuned, DuoRec): each sequence's representation against every real item's row.
pub(crate) fn encoder_scores<E: Element>(
    store: &ParamStore<E>,
    enc: &crate::SasRecEncoder,
    inputs: &[&[usize]],
) -> Tensor<E> {
    represent(store, inputs, |p, b| {
        enc.forward(p, b, &mut enc.dropouts(None))
    })
    .matmul_t(
        &real_items(store, enc.item_embedding, enc.config.n_real_items()),
        false,
        true,
    )
}

/// The rows of the real items (`1..=n_items`) of an item table.
pub(crate) fn real_items<E: Element>(
    store: &ParamStore<E>,
    table: ParamId,
    n_items: usize,
) -> Tensor<E> {
    store.value(table).narrow(0, 1, n_items)
}

/// Dropout at `p` on hidden states only (the recurrent and convolutional models).
pub(crate) fn dropouts(p: f64, rng: Option<&mut dyn RngCore>) -> Dropouts<'_> {
    Dropouts {
        hidden: p,
        attn: 0.0,
        rng,
    }
}

/// The one optimiser group of a single-group model, at the run's learning rate.
pub(crate) fn single_group<E: Element>(store: &ParamStore<E>, group: GroupId) -> GroupSpec {
    GroupSpec {
        id: group,
        name: store.group_name(group).to_string(),
        lr: None,
    }
}
