//! Caser as a [`Recommender`]: the [`Caser`] network over each sample's last `L` items and
//! its user, trained on next-item prediction plus RecBole's weight regulariser.

use mclrec_autograd::{GroupId, ParamStore};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::next_item::{draw_negatives, next_item_loss, LossKind};
use crate::recommender::{
    dropouts, real_items, scalar, single_group, BatchLosses, GroupSpec, NonFiniteLoss, Optimisers,
    TrainBatch,
};
use crate::{Bound, Caser, Recommender};

/// Caser's settings. Defaults: RecBole's `properties/model/Caser.yaml` (`embedding_size`
/// 64, `nv` 4, `nh` 8, `reg_weight` 1e-4, `dropout_prob` 0.4, CE loss) and the window of
/// Caser's paper, `L` = 5 (Tang and Wang, Section 4.4: the last 5 actions; RecBole reads
/// `MAX_ITEM_LIST_LENGTH`, 50, with 50 horizontal filter heights).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaserSettings {
    /// Embedding width `d`.
    pub dim: usize,
    /// Vertical filters.
    pub n_v: usize,
    /// Horizontal filters per height.
    pub n_h: usize,
    /// Dropout before the fully connected layer.
    pub dropout: f64,
    /// Weight of the norm regulariser.
    pub reg_weight: f64,
    /// The window `L`.
    pub max_len: usize,
    /// The next-item loss preset.
    pub loss: LossKind,
}

impl Default for CaserSettings {
    fn default() -> Self {
        CaserSettings {
            dim: 64,
            n_v: 4,
            n_h: 8,
            dropout: 0.4,
            reg_weight: 1e-4,
            max_len: 5,
            loss: LossKind::Ce,
        }
    }
}

/// Caser and its parameters.
#[derive(Clone, Debug)]
pub struct CaserModel<E: Element> {
    /// Every parameter (one group, `model`).
    pub store: ParamStore<E>,
    /// The network.
    pub net: Caser,
    /// The settings.
    pub settings: CaserSettings,
    group: GroupId,
    n_items: usize,
}

impl<E: Element> CaserModel<E> {
    /// A fresh Caser of `n_users` users and `n_items` real items.
    pub fn new(
        settings: &CaserSettings,
        n_users: usize,
        n_items: usize,
        rng: &mut dyn RngCore,
    ) -> Self {
        let mut store = ParamStore::new();
        let group = store.group("model");
        let s = settings;
        // Row 0 of the user table is RecBole's padding user: user `u` is row `u + 1`.
        let rows = (n_items + 1, n_users + 1);
        let net = Caser::new(
            &mut store,
            group,
            rows,
            s.max_len,
            s.dim,
            (s.n_v, s.n_h),
            rng,
        );
        CaserModel {
            store,
            net,
            settings: *settings,
            group,
            n_items,
        }
    }

    /// The user-table rows of `users`.
    fn user_rows(users: &[usize]) -> Vec<usize> {
        users.iter().map(|u| u + 1).collect()
    }

    /// The right-padded `[n, L]` windows of `inputs` (each its last `L` items), as RecBole.
    fn windows(&self, inputs: &[&[usize]]) -> Vec<usize> {
        let l = self.settings.max_len;
        let mut w = vec![0; inputs.len() * l];
        for (row, seq) in w.chunks_mut(l).zip(inputs) {
            let seq = &seq[seq.len().saturating_sub(l)..];
            row[..seq.len()].copy_from_slice(seq);
        }
        w
    }
}

impl<E: Element> Recommender<E> for CaserModel<E> {
    fn name(&self) -> &'static str {
        "caser"
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
        let s = self.settings;
        let windows = self.windows(batch.inputs);
        let users = Self::user_rows(batch.users);
        let negatives = s
            .loss
            .samples_negatives()
            .then(|| draw_negatives(batch.inputs, batch.targets, self.n_items, rng));
        let net = &self.net;
        opt.step(&mut self.store, &[self.group], "1 (model)", |p| {
            let mut drop = dropouts(s.dropout, Some(rng));
            let h = net.forward(p, &windows, &users, &mut drop);
            let classes = p.get(net.item_embedding);
            let rec = next_item_loss(s.loss, h, classes, batch.targets, negatives.as_deref());
            let reg = net.regulariser(p, s.reg_weight);
            let out = BatchLosses {
                rec: scalar(rec),
                reg: scalar(reg),
                ..Default::default()
            };
            (rec.add(reg), out)
        })
    }

    fn scores(&self, users: &[usize], inputs: &[&[usize]]) -> Tensor<E> {
        let tape = mclrec_autograd::Tape::new();
        let p = Bound::new(&tape, &self.store, &[]);
        let h = self.net.forward(
            &p,
            &self.windows(inputs),
            &Self::user_rows(users),
            &mut dropouts(0.0, None),
        );
        h.value().matmul_t(
            &real_items(&self.store, self.net.item_embedding, self.n_items),
            false,
            true,
        )
    }
}
