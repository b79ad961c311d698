//! GRU4Rec as a [`Recommender`]: the [`Gru4Rec`] network trained on next-item prediction.

use mclrec_autograd::{GroupId, ParamStore};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::next_item::{draw_negatives, next_item_loss, LossKind};
use crate::recommender::{
    dropouts, real_items, represent, single_group, BatchLosses, GroupSpec, NonFiniteLoss,
    Optimisers, TrainBatch,
};
use crate::{Dropouts, Gru4Rec, Recommender, SeqBatch};

/// GRU4Rec's settings. Defaults are RecBole's (`properties/model/GRU4Rec.yaml`:
/// `embedding_size` 64, `hidden_size` 128, one layer, `dropout_prob` 0.3, CE loss) with the
/// paper's shared maximum length 50.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gru4RecSettings {
    /// Item embedding width.
    pub dim: usize,
    /// GRU state width.
    pub hidden: usize,
    /// Dropout on the item embeddings.
    pub dropout: f64,
    /// Longest input sequence.
    pub max_len: usize,
    /// The next-item loss preset.
    pub loss: LossKind,
}

impl Default for Gru4RecSettings {
    fn default() -> Self {
        Gru4RecSettings {
            dim: 64,
            hidden: 128,
            dropout: 0.3,
            max_len: 50,
            loss: LossKind::Ce,
        }
    }
}

/// GRU4Rec and its parameters.
#[derive(Clone, Debug)]
pub struct Gru4RecModel<E: Element> {
    /// Every parameter (one group, `model`).
    pub store: ParamStore<E>,
    /// The network.
    pub net: Gru4Rec,
    /// The settings.
    pub settings: Gru4RecSettings,
    group: GroupId,
    n_items: usize,
}

impl<E: Element> Gru4RecModel<E> {
    /// A fresh GRU4Rec over `n_items` real items.
    pub fn new(settings: &Gru4RecSettings, n_items: usize, rng: &mut dyn RngCore) -> Self {
        let mut store = ParamStore::new();
        let group = store.group("model");
        let dims = (settings.dim, settings.hidden);
        let net = Gru4Rec::new(&mut store, group, n_items + 1, dims, rng);
        Gru4RecModel {
            store,
            net,
            settings: *settings,
            group,
            n_items,
        }
    }
}

impl<E: Element> Recommender<E> for Gru4RecModel<E> {
    fn name(&self) -> &'static str {
        "gru4rec"
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
    fn max_len(&self) -> usize {
        self.settings.max_len
    }
    fn n_items(&self) -> usize {
        self.n_items
    }

    /// One step on the next-item loss; every item row (padding included, as RecBole) is a
    /// class.
    fn train_batch(
        &mut self,
        batch: &TrainBatch<'_>,
        _epoch: usize,
        opt: &mut Optimisers<E>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss> {
        let s = self.settings;
        let seqs = SeqBatch::new(batch.inputs);
        let negatives = s
            .loss
            .samples_negatives()
            .then(|| draw_negatives(batch.inputs, batch.targets, self.n_items, rng));
        let net = &self.net;
        opt.step(&mut self.store, &[self.group], "1 (model)", |p| {
            let mut drop = dropouts(s.dropout, Some(rng));
            let h = net.forward(p, &seqs, &mut drop);
            let classes = p.get(net.item_embedding);
            let loss = next_item_loss(s.loss, h, classes, batch.targets, negatives.as_deref());
            BatchLosses::main_objective(loss)
        })
    }

    fn scores(&self, _users: &[usize], inputs: &[&[usize]]) -> Tensor<E> {
        represent(&self.store, inputs, |p, b| {
            self.net.forward(p, b, &mut Dropouts::off())
        })
        .matmul_t(
            &real_items(&self.store, self.net.item_embedding, self.n_items),
            false,
            true,
        )
    }
}
