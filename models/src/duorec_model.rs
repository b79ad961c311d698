//! DuoRec (Qiu et al., WSDM'22) as a [`Recommender`]: SASRec's encoder and next-item loss,
//! plus a contrastive term between two more views of each training sequence, as the
//! official code's default `contrast = 'us_x'` computes it (RuihongQiu/DuoRec,
//! `recbole/model/sequential_recommender/duorec.py`, `calculate_loss`):
//!
//! ```text
//! h      = Enc(s)                 (dropout on: the view the next-item loss reads)
//! h_aug  = Enc(s)                 (the same sequence again, other dropout masks: the
//!                                  "model-level augmentation")
//! h_sem  = Enc(s')                (s' another training sequence with the same target: the
//!                                  "supervised positive", drawn by the trainer)
//! L      = CE(h E^T, target) + lambda InfoNCE(h_aug, h_sem)
//! ```
//!
//! InfoNCE is the dot product at temperature 1 (`tau = 1`, `sim = 'dot'` in `duorec.sh`)
//! over the `2n` views, each row's negatives the `2n - 2` rows other than itself and its
//! partner ([`crate::losses::info_nce`], the same function as MCLRec's and CL4SRec's).
//! `lambda` is the official `lmd_sem = 0.1`. Where the official code differs from the
//! paper, the code is followed: the paper also masks same-target sequences among the
//! negatives, which `info_nce` of `duorec.py` does not.

use mclrec_autograd::{GroupId, ParamStore, Var};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::losses::info_nce;
use crate::next_item::{draw_negatives, next_item_loss, LossKind};
use crate::recommender::{
    encoder_scores, scalar, single_group, BatchLosses, GroupSpec, NonFiniteLoss, Optimisers,
    TrainBatch,
};
use crate::{Bound, Dropouts, Recommender, SasRecConfig, SasRecEncoder, SeqBatch};

/// DuoRec's settings beyond the transformer's (whose defaults, 2 layers, 2 heads, hidden
/// 64, dropout 0.5, are `duorec.sh`'s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DuoRecSettings {
    /// The weight of the contrastive term (`lmd_sem`, 0.1 in `duorec.sh`).
    pub lambda: f64,
    /// The next-item loss preset.
    pub loss: LossKind,
}

impl Default for DuoRecSettings {
    fn default() -> Self {
        DuoRecSettings {
            lambda: 0.1,
            loss: LossKind::Ce,
        }
    }
}

/// DuoRec and its parameters.
#[derive(Clone, Debug)]
pub struct DuoRecModel<E: Element> {
    /// Every parameter (one group, `model`).
    pub store: ParamStore<E>,
    /// The causal encoder (SASRec's, with its parameter names).
    pub encoder: SasRecEncoder,
    /// The settings.
    pub settings: DuoRecSettings,
    group: GroupId,
}

impl<E: Element> DuoRecModel<E> {
    /// A fresh DuoRec with the transformer `config`.
    pub fn new(config: SasRecConfig, settings: &DuoRecSettings, rng: &mut dyn RngCore) -> Self {
        let mut store = ParamStore::new();
        let group = store.group("model");
        let encoder = SasRecEncoder::new(&mut store, group, config, rng);
        DuoRecModel {
            store,
            encoder,
            settings: *settings,
            group,
        }
    }
}

impl DuoRecSettings {
    /// The step's loss from its two terms: `rec + lambda cl`.
    pub fn loss<'t, E: Element>(&self, rec: Var<'t, E>, cl: Var<'t, E>) -> Var<'t, E> {
        rec.add(cl.mul_scalar(E::from_f64(self.lambda)))
    }
}

impl<E: Element> DuoRecModel<E> {
    /// The two terms `(next-item loss, InfoNCE)` of a batch for `encoder` and the loss
    /// preset `kind`: the encoder on `seqs` (read by the next-item loss against `targets`,
    /// with `negatives` for a sampled loss), on `seqs` again and on their same-target
    /// `partners`, in that order, each pass drawing its own dropout masks from `drop`.
    pub fn losses<'t>(
        enc: &SasRecEncoder,
        kind: LossKind,
        p: &Bound<'t, E>,
        (seqs, partners): (&SeqBatch, &SeqBatch),
        (targets, negatives): (&[usize], Option<&[usize]>),
        drop: &mut Dropouts<'_>,
    ) -> (Var<'t, E>, Var<'t, E>) {
        let h = enc.forward(p, seqs, drop);
        let h_aug = enc.forward(p, seqs, drop);
        let h_sem = enc.forward(p, partners, drop);
        let classes = enc.class_embeddings(p);
        let rec = next_item_loss(kind, h, classes, targets, negatives);
        (rec, info_nce(h_aug, h_sem))
    }
}

impl<E: Element> Recommender<E> for DuoRecModel<E> {
    fn name(&self) -> &'static str {
        "duorec"
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
        self.encoder.config.max_len
    }
    fn n_items(&self) -> usize {
        self.encoder.config.n_real_items()
    }
    fn wants_same_target(&self) -> bool {
        true
    }

    /// One step on `L` (module docs): the three encoder passes in the official order (the
    /// sequence, the sequence again, its same-target partner), each with its own dropout
    /// masks. Without partners in the batch (a caller that does not draw them), each
    /// sequence is its own partner.
    fn train_batch(
        &mut self,
        batch: &TrainBatch<'_>,
        _epoch: usize,
        opt: &mut Optimisers<E>,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss> {
        let (s, n_items) = (self.settings, self.n_items());
        let enc = &self.encoder;
        let seqs = SeqBatch::new(batch.inputs);
        let partners = SeqBatch::new(batch.same_target.unwrap_or(batch.inputs));
        let negatives = s
            .loss
            .samples_negatives()
            .then(|| draw_negatives(batch.inputs, batch.targets, n_items, rng));
        opt.step(&mut self.store, &[self.group], "1 (encoder)", |p| {
            let mut drop = enc.dropouts(Some(rng));
            let targets = (batch.targets, negatives.as_deref());
            let (rec, cl) = Self::losses(enc, s.loss, p, (&seqs, &partners), targets, &mut drop);
            let terms = BatchLosses {
                rec: scalar(rec),
                cl1: scalar(cl),
                ..Default::default()
            };
            (s.loss(rec, cl), terms)
        })
    }

    fn scores(&self, _users: &[usize], inputs: &[&[usize]]) -> Tensor<E> {
        encoder_scores(&self.store, &self.encoder, inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mclrec_autograd::Tape;
    use rand::SeedableRng;

    fn tiny() -> SasRecConfig {
        SasRecConfig {
            hidden: 8,
            inner: 16,
            heads: 2,
            max_len: 6,
            hidden_dropout: 0.0,
            attn_dropout: 0.0,
            ..SasRecConfig::for_items(9)
        }
    }

    /// Without dropout the loss is `CE(h) + lambda InfoNCE(h, h_sem)`, built here from the
    /// encoder and the loss functions directly.
    #[test]
    fn the_step_loss_is_ce_plus_lambda_info_nce_of_the_partners() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let s = DuoRecSettings {
            lambda: 0.3,
            loss: LossKind::Ce,
        };
        let model = DuoRecModel::<f64>::new(tiny(), &s, &mut rng);
        let inputs: Vec<&[usize]> = vec![&[1, 2, 3], &[4, 5], &[2, 6, 7, 8]];
        let partners: Vec<&[usize]> = vec![&[9, 3], &[1, 4, 5], &[8]];
        let targets = [4, 6, 9];
        let want = {
            let tape = Tape::new();
            let p = crate::Bound::new(&tape, &model.store, &[]);
            let enc = &model.encoder;
            let h = enc.forward(&p, &SeqBatch::new(&inputs), &mut enc.dropouts(None));
            let hs = enc.forward(&p, &SeqBatch::new(&partners), &mut enc.dropouts(None));
            let rec = crate::losses::rec_loss(h, enc.class_embeddings(&p), &targets);
            rec.value().item() + 0.3 * info_nce(h, hs).value().item()
        };
        let mut trained = model.clone();
        let mut opt = Optimisers::new(&trained.groups(), 0.0);
        let users = [0, 1, 2];
        let batch = TrainBatch {
            users: &users,
            inputs: &inputs,
            targets: &targets,
            same_target: Some(&partners),
        };
        let got = trained.train_batch(&batch, 1, &mut opt, &mut rng).unwrap();
        assert!(
            (got.rec + 0.3 * got.cl1 - want).abs() < 1e-12,
            "{got:?} vs {want}"
        );
        assert!(got.cl1 > 0.0);
    }
}
