//! BERT4Rec as a [`Recommender`]: the [`Bert4Rec`] network trained by the Cloze task
//! ([`crate::cloze`]); at evaluation a mask token is appended to the input and its output
//! scores the items.

use mclrec_autograd::{GroupId, ParamStore};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::cloze::{mask_items, whole_sequences, with_mask_appended};
use crate::next_item::{draw_negatives, next_item_loss, LossKind};
use crate::recommender::{
    represent, single_group, BatchLosses, GroupSpec, NonFiniteLoss, Optimisers, TrainBatch,
};
use crate::{Bert4Rec, Dropouts, Recommender, SasRecConfig};

/// BERT4Rec's settings beyond the transformer's. Defaults: RecBole's
/// `properties/model/BERT4Rec.yaml` (`mask_ratio` 0.2; the transformer 2 layers, 2 heads,
/// hidden 64, inner 256, dropout 0.2, GELU, `layer_norm_eps` 1e-12, init std 0.02).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bert4RecSettings {
    /// Probability that an item of a training sequence is masked.
    pub mask_ratio: f64,
    /// The loss at the masked positions: CE over every class with the output bias (its
    /// paper's and RecBole's default), or a sampled preset scoring `o . e` as RecBole's
    /// `loss_type = BPR` branch does (no bias).
    pub loss: LossKind,
}

impl Default for Bert4RecSettings {
    fn default() -> Self {
        Bert4RecSettings {
            mask_ratio: 0.2,
            loss: LossKind::Ce,
        }
    }
}

/// BERT4Rec and its parameters.
#[derive(Clone, Debug)]
pub struct Bert4RecModel<E: Element> {
    /// Every parameter (one group, `model`).
    pub store: ParamStore<E>,
    /// The network.
    pub net: Bert4Rec,
    /// The settings.
    pub settings: Bert4RecSettings,
    group: GroupId,
}

impl<E: Element> Bert4RecModel<E> {
    /// A fresh BERT4Rec with the transformer `config` (its `item_rows` and `n_classes` are
    /// set here: the real items, padding, and the mask token's row).
    pub fn new(config: SasRecConfig, settings: &Bert4RecSettings, rng: &mut dyn RngCore) -> Self {
        let mut store = ParamStore::new();
        let group = store.group("model");
        let net = Bert4Rec::new(&mut store, group, with_mask_row(config), rng);
        Bert4RecModel {
            store,
            net,
            settings: *settings,
            group,
        }
    }
}

/// `config` with one item row more than its classes (padding and real items): the mask
/// token's.
pub(crate) fn with_mask_row(config: SasRecConfig) -> SasRecConfig {
    SasRecConfig {
        item_rows: config.n_classes + 1,
        ..config
    }
}

impl<E: Element> Recommender<E> for Bert4RecModel<E> {
    fn name(&self) -> &'static str {
        "bert4rec"
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
        self.net.encoder.config.max_len
    }
    fn n_items(&self) -> usize {
        self.net.encoder.config.n_real_items()
    }

    /// The Cloze task on each sample's input and target: masked items predicted from both
    /// sides, cross-entropy over every class, averaged over the masked positions.
    fn train_batch(
        &mut self,
        batch: &TrainBatch<'_>,
        _epoch: usize,
        opt: &mut Optimisers<E>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss> {
        let net = &self.net;
        let seqs = whole_sequences(batch.inputs, batch.targets, self.max_len());
        let s = self.settings;
        let masked = mask_items(&seqs, s.mask_ratio, net.encoder.mask_token(), rng);
        let negatives = s.loss.samples_negatives().then(|| {
            let seq_of_row: Vec<&[usize]> = masked
                .sequence
                .iter()
                .map(|&k| seqs[k].as_slice())
                .collect();
            draw_negatives(
                &seq_of_row,
                &masked.items,
                net.encoder.config.n_real_items(),
                rng,
            )
        });
        opt.step(&mut self.store, &[self.group], "1 (model)", |p| {
            let mut drop = net.encoder.dropouts(Some(rng));
            let o = net.forward(p, &masked.batch, &masked.rows, &mut drop);
            let loss = match s.loss {
                LossKind::Ce => net.scores(p, o).cross_entropy(&masked.items),
                kind => {
                    let classes = net.encoder.class_embeddings(p);
                    next_item_loss(kind, o, classes, &masked.items, negatives.as_deref())
                }
            };
            BatchLosses::main_objective(loss)
        })
    }

    fn scores(&self, _users: &[usize], inputs: &[&[usize]]) -> Tensor<E> {
        let (max_len, mask) = (self.max_len(), self.net.encoder.mask_token());
        let with_mask: Vec<Vec<usize>> = inputs
            .iter()
            .map(|s| with_mask_appended(s, max_len, mask))
            .collect();
        let refs: Vec<&[usize]> = with_mask.iter().map(Vec::as_slice).collect();
        represent(&self.store, &refs, |p, b| {
            let last = b.layout.last_rows();
            let o = self.net.forward(p, b, &last, &mut Dropouts::off());
            // Column 0 is the padding class.
            self.net.scores(p, o).narrow(1, 1, self.n_items())
        })
    }
}
