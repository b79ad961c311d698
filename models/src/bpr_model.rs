//! BPR-MF as a [`Recommender`]: a user table and an item table, trained to rank each
//! observed item above a sampled one.
//!
//! Its training pairs are the (user, target) of every training sample: each interaction of
//! a user's training part but the first (which is never a target here; RecBole's BPR also
//! trains on it). The input sequence is read only to keep the negatives outside it.

use mclrec_autograd::{GroupId, ParamStore};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::next_item::{draw_negatives, next_item_loss, LossKind};
use crate::recommender::{
    single_group, BatchLosses, GroupSpec, NonFiniteLoss, Optimisers, TrainBatch,
};
use crate::{Bound, Bpr, Recommender};

/// BPR's settings. Defaults: RecBole's `properties/model/BPR.yaml` (`embedding_size` 64)
/// and Rendle et al.'s loss with one uniform negative per pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BprSettings {
    /// Embedding width.
    pub dim: usize,
    /// The loss: [`LossKind::Bpr`] (its paper's), or a next-item preset over the user's
    /// scores.
    pub loss: LossKind,
}

impl Default for BprSettings {
    fn default() -> Self {
        BprSettings {
            dim: 64,
            loss: LossKind::Bpr,
        }
    }
}

/// BPR-MF and its parameters.
#[derive(Clone, Debug)]
pub struct BprModel<E: Element> {
    /// Every parameter (one group, `model`).
    pub store: ParamStore<E>,
    /// The two tables.
    pub net: Bpr,
    /// The settings.
    pub settings: BprSettings,
    group: GroupId,
    n_items: usize,
}

impl<E: Element> BprModel<E> {
    /// A fresh model of `n_users` users (rows `0..n_users`) and `n_items` real items.
    pub fn new(
        settings: &BprSettings,
        n_users: usize,
        n_items: usize,
        rng: &mut dyn RngCore,
    ) -> Self {
        let mut store = ParamStore::new();
        let group = store.group("model");
        let net = Bpr::new(&mut store, group, (n_users, n_items + 1), settings.dim, rng);
        BprModel {
            store,
            net,
            settings: *settings,
            group,
            n_items,
        }
    }
}

impl<E: Element> Recommender<E> for BprModel<E> {
    fn name(&self) -> &'static str {
        "bpr"
    }
    fn store(&self) -> &ParamStore<E> {
        &self.store
    }
    fn store_mut(&mut self) -> &mut ParamStore<E> {
        &mut self.store
    }
    fn groups(&self) -> Vec<GroupSpec> {
        vec![single_group(&self.store, self.group)]
    }
    /// BPR reads no sequence; the longest one the data pipeline cuts to.
    fn max_len(&self) -> usize {
        50
    }
    fn n_items(&self) -> usize {
        self.n_items
    }
    fn needs_known_user(&self) -> bool {
        true
    }

    fn train_batch(
        &mut self,
        batch: &TrainBatch<'_>,
        _epoch: usize,
        opt: &mut Optimisers<E>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss> {
        let kind = self.settings.loss;
        let negatives = kind
            .samples_negatives()
            .then(|| draw_negatives(batch.inputs, batch.targets, self.n_items, rng));
        let net = &self.net;
        opt.step(&mut self.store, &[self.group], "1 (model)", |p| {
            let loss = match (&negatives, kind) {
                (Some(negs), LossKind::Bpr) => net.loss(p, batch.users, (batch.targets, negs)),
                _ => {
                    let u = p.get(net.user_embedding).index_select(0, batch.users);
                    let items = p.get(net.item_embedding);
                    next_item_loss(kind, u, items, batch.targets, negatives.as_deref())
                }
            };
            BatchLosses::main_objective(loss)
        })
    }

    fn scores(&self, users: &[usize], _inputs: &[&[usize]]) -> Tensor<E> {
        let tape = mclrec_autograd::Tape::new();
        let p = Bound::new(&tape, &self.store, &[]);
        let items = p.get(self.net.item_embedding).narrow(0, 1, self.n_items);
        p.get(self.net.user_embedding)
            .index_select(0, users)
            .matmul_t(items, false, true)
            .value()
    }
}
