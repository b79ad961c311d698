//! S3-Rec (Zhou et al., CIKM'20) with only its masked-item-prediction (MIP) pre-training
//! task, as the paper's Table 3 runs it and as RecBole writes it (`s3rec.py`): the SASRec
//! stack, bidirectional while pre-training, with a mask-token row in the item table; MIP
//! scores the masked positions' outputs, through `mip_norm`, against the true item and a
//! sampled one. Fine-tuning is then a causal next-item model over the same weights
//! ([`SasRecEncoder::set_causal`]).
//!
//! ```text
//! h_j  = BidirectionalSasRec(items with some masked)_j
//! g_j  = W_mip h_j + b_mip
//! MIP  = sum over masked j of softplus(-(sigmoid(g_j . e_pos) - sigmoid(g_j . e_neg)))
//! ```
//!
//! (RecBole's `pretrain`: a BCE-with-logits of the difference of two sigmoids against 1,
//! summed, not averaged, over the masked positions.)

use mclrec_autograd::{GroupId, ParamStore, Var};
use mclrec_tensor::Element;
use rand::RngCore;

use crate::{Bound, Dropouts, Init, Linear, SasRecConfig, SasRecEncoder, SeqBatch};

/// The S3-Rec network of the MIP task.
#[derive(Clone, Debug)]
pub struct S3RecMip {
    /// The transformer stack; its item table has one row more than its classes, the mask
    /// token's. Bidirectional after [`S3RecMip::new`] (pre-training).
    pub encoder: SasRecEncoder,
    /// `mip_norm`: `hidden -> hidden`.
    pub mip_norm: Linear,
}

impl S3RecMip {
    /// Adds the network to `store` (`config` as SASRec's, `item_rows = n_classes + 1`),
    /// initialised as RecBole: weights `N(0, init_std)`, biases 0.
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        config: SasRecConfig,
        rng: &mut dyn RngCore,
    ) -> Self {
        let (hidden, std) = (config.hidden, config.init_std);
        let encoder = SasRecEncoder::masked_item(store, group, config, rng);
        let mip_norm = Linear::new(
            store,
            group,
            "mip_norm",
            hidden,
            hidden,
            Init::Normal(std),
            rng,
        );
        S3RecMip { encoder, mip_norm }
    }

    /// The MIP loss of the masked rows `rows` of `batch` against their true items `pos`
    /// and sampled items `neg` (one of each per row).
    pub fn mip_loss<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        batch: &SeqBatch,
        rows: &[usize],
        (pos, neg): (&[usize], &[usize]),
        drop: &mut Dropouts<'_>,
    ) -> Var<'t, E> {
        assert!(rows.len() == pos.len() && rows.len() == neg.len());
        let h = self
            .encoder
            .forward_every_position(p, batch, drop)
            .index_select(0, rows);
        let g = self.mip_norm.forward(p, h);
        let table = p.get(self.encoder.item_embedding);
        let score = |items: &[usize]| g.mul(table.index_select(0, items)).sum_axis(1).sigmoid();
        // softplus(-x) = -ln sigmoid(x).
        score(pos).sub(score(neg)).log_sigmoid().sum_all().neg()
    }
}
