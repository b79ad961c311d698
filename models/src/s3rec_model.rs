//! S3-Rec (MIP only) as a [`Recommender`] of two stages: pre-training epochs of masked item
//! prediction over each user's whole training sequence with bidirectional attention, then
//! fine-tuning epochs of causal next-item prediction over the same weights.

use mclrec_autograd::{GroupId, ParamStore};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::bert4rec_model::with_mask_row;
use crate::cloze::{mask_items, whole_sequences};
use crate::next_item::{draw_negatives, next_item_loss, LossKind};
use crate::recommender::{
    encoder_scores, single_group, BatchLosses, EpochRole, GroupSpec, NonFiniteLoss, Optimisers,
    TrainBatch,
};
use crate::{Recommender, S3RecMip, SasRecConfig, SasRecEncoder, SeqBatch};

/// S3-Rec's settings beyond the transformer's. Defaults: RecBole's
/// `properties/model/S3Rec.yaml` (`mask_ratio` 0.2, `mip_weight` 1, the other three
/// pre-training tasks off as the MCLRec paper's Table 3 runs it; the transformer 2 layers,
/// 2 heads, hidden 64, inner 256, dropout 0.5) and the official code's 300 pre-training
/// epochs (`run_pretrain.py`, `--pre_epochs`; RecBole's `pretrain_epochs` is 500).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct S3RecSettings {
    /// Probability that an item of a pre-training sequence is masked.
    pub mask_ratio: f64,
    /// Pre-training epochs before fine-tuning (0: fine-tune weights loaded from a
    /// pre-training run).
    pub pretrain_epochs: usize,
    /// The fine-tuning loss preset.
    pub loss: LossKind,
}

impl Default for S3RecSettings {
    fn default() -> Self {
        S3RecSettings {
            mask_ratio: 0.2,
            pretrain_epochs: 300,
            loss: LossKind::Ce,
        }
    }
}

/// S3-Rec and its parameters.
#[derive(Clone, Debug)]
pub struct S3RecModel<E: Element> {
    /// Every parameter (one group, `model`).
    pub store: ParamStore<E>,
    /// The network; its encoder bidirectional (pre-training).
    pub net: S3RecMip,
    /// The same encoder, causal (fine-tuning and scoring).
    pub causal: SasRecEncoder,
    /// The settings.
    pub settings: S3RecSettings,
    group: GroupId,
}

impl<E: Element> S3RecModel<E> {
    /// A fresh S3-Rec with the transformer `config` (its item table gets the mask row).
    pub fn new(config: SasRecConfig, settings: &S3RecSettings, rng: &mut dyn RngCore) -> Self {
        let mut store = ParamStore::new();
        let group = store.group("model");
        let net = S3RecMip::new(&mut store, group, with_mask_row(config), rng);
        let mut causal = net.encoder.clone();
        causal.set_causal(true);
        S3RecModel {
            store,
            net,
            causal,
            settings: *settings,
            group,
        }
    }
}

impl<E: Element> Recommender<E> for S3RecModel<E> {
    fn name(&self) -> &'static str {
        "s3rec-mip"
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
        self.causal.config.max_len
    }
    fn n_items(&self) -> usize {
        self.causal.config.n_real_items()
    }
    fn epoch_role(&self, epoch: usize) -> EpochRole {
        if epoch <= self.settings.pretrain_epochs {
            EpochRole::Pretrain
        } else {
            EpochRole::Train
        }
    }

    /// Pre-training: MIP on the masked items of each whole sequence, each against one
    /// sampled item outside the sequence, summed over the masked positions (RecBole).
    /// Fine-tuning: next-item prediction with causal attention over the classes (padding
    /// and real items, not the mask token).
    fn train_batch(
        &mut self,
        batch: &TrainBatch<'_>,
        epoch: usize,
        opt: &mut Optimisers<E>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss> {
        let (s, n_items) = (self.settings, self.n_items());
        let (net, causal) = (&self.net, &self.causal);
        if self.epoch_role(epoch) == EpochRole::Pretrain {
            let seqs = whole_sequences(batch.inputs, batch.targets, self.max_len());
            let masked = mask_items(&seqs, s.mask_ratio, net.encoder.mask_token(), rng);
            let seq_of_row: Vec<&[usize]> = masked
                .sequence
                .iter()
                .map(|&k| seqs[k].as_slice())
                .collect();
            let negs = draw_negatives(&seq_of_row, &masked.items, n_items, rng);
            return opt.step(&mut self.store, &[self.group], "1 (pre-training)", |p| {
                let mut drop = net.encoder.dropouts(Some(rng));
                let pairs = (masked.items.as_slice(), negs.as_slice());
                let loss = net.mip_loss(p, &masked.batch, &masked.rows, pairs, &mut drop);
                BatchLosses::main_objective(loss)
            });
        }
        let seqs = SeqBatch::new(batch.inputs);
        let negatives = s
            .loss
            .samples_negatives()
            .then(|| draw_negatives(batch.inputs, batch.targets, n_items, rng));
        opt.step(&mut self.store, &[self.group], "1 (fine-tuning)", |p| {
            let mut drop = causal.dropouts(Some(rng));
            let h = causal.forward(p, &seqs, &mut drop);
            let classes = causal.class_embeddings(p);
            let loss = next_item_loss(s.loss, h, classes, batch.targets, negatives.as_deref());
            BatchLosses::main_objective(loss)
        })
    }

    fn scores(&self, _users: &[usize], inputs: &[&[usize]]) -> Tensor<E> {
        encoder_scores(&self.store, &self.causal, inputs)
    }
}
