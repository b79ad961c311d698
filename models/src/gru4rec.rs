//! GRU4Rec (Hidasi et al., ICLR'16; Tan et al.'s improved version) as RecBole writes it
//! (`gru4rec.py`): item embedding, dropout, a GRU without biases, a dense layer back to the
//! embedding width, read at each sequence's last position and scored against every item
//! row.
//!
//! ```text
//! h_t = GRU(dropout(e_{x_1}), ..., dropout(e_{x_t}))
//! s   = W_d h_len + b_d            (scored as s . e_i for every item i)
//! ```

use mclrec_autograd::{GroupId, ParamId, ParamStore, Var};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::{Bound, Dropouts, Gru, Init, Linear, SeqBatch};

/// The GRU4Rec network (RecBole's names: `item_embedding`, `gru_layers`, `dense`).
#[derive(Clone, Debug)]
pub struct Gru4Rec {
    /// `item_embedding.weight`: `[item rows, d]`, row 0 the padding item.
    pub item_embedding: ParamId,
    /// `gru_layers`: one layer, `d -> hidden`, no biases.
    pub gru: Gru,
    /// `dense`: `hidden -> d`.
    pub dense: Linear,
}

impl Gru4Rec {
    /// Adds the network to `store`, initialised as RecBole: the embedding Xavier-normal,
    /// the GRU's weights Xavier-uniform, the dense layer PyTorch's default.
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        item_rows: usize,
        (dim, hidden): (usize, usize),
        rng: &mut dyn RngCore,
    ) -> Self {
        let std = (2.0 / (item_rows + dim) as f64).sqrt();
        let item_embedding = store.add(
            "item_embedding.weight",
            Tensor::normal(&[item_rows, dim], 0.0, std, rng),
            group,
        );
        let gru = Gru::new(store, group, "gru_layers", dim, hidden, false, rng);
        let dense = Linear::new(store, group, "dense", hidden, dim, Init::TorchDefault, rng);
        Gru4Rec {
            item_embedding,
            gru,
            dense,
        }
    }

    /// The representation `[batch, d]` of each sequence of `batch` (dropout on the item
    /// embeddings at `drop.hidden`, RecBole's `dropout_prob`).
    pub fn forward<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        batch: &SeqBatch,
        drop: &mut Dropouts<'_>,
    ) -> Var<'t, E> {
        let x = p
            .get(self.item_embedding)
            .embedding(&batch.items, &[batch.rows()], Some(0));
        let x = drop.apply(x, drop.hidden);
        let states = self.gru.forward(p, x, &batch.layout);
        // Only the last positions are read: the dense layer runs on those alone.
        self.dense
            .forward(p, states.index_select(0, &batch.layout.last_rows()))
    }

    /// The scores of every item row for representations `s`: `s E^T`.
    pub fn scores<'t, E: Element>(&self, p: &Bound<'t, E>, s: Var<'t, E>) -> Var<'t, E> {
        s.matmul_t(p.get(self.item_embedding), false, true)
    }
}
