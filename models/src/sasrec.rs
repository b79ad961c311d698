//! The SASRec encoder (RecBole's `SASRec` as the official MCLRec code uses it).

use mclrec_autograd::{GroupId, ParamId, ParamStore, Var};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::{
    Bound, Dropouts, FeedForward, Init, LayerNorm, MultiHeadAttention, SasRecConfig, SeqBatch,
};

/// One post-LN transformer layer: attention, then feed-forward.
#[derive(Clone, Debug)]
pub struct TransformerLayer {
    /// `multi_head_attention`.
    pub attention: MultiHeadAttention,
    /// `feed_forward`.
    pub feed_forward: FeedForward,
}

/// Item + position embeddings, layer norm, dropout, then `layers` transformer layers; the
/// sequence representation is the last layer's output at position `len - 1`.
///
/// Parameter names are the official `state_dict` names (`item_embedding.weight`,
/// `trm_encoder.layer.0.multi_head_attention.query.weight`, ...), so checkpoints load both
/// ways.
#[derive(Clone, Debug)]
pub struct SasRecEncoder {
    /// The hyper-parameters.
    pub config: SasRecConfig,
    /// `item_embedding.weight`: `[item_rows, hidden]`, row 0 = padding.
    pub item_embedding: ParamId,
    /// `position_embedding.weight`: `[max_len, hidden]`.
    pub position_embedding: ParamId,
    /// `LayerNorm` on the embeddings.
    pub norm: LayerNorm,
    /// `trm_encoder.layer.{i}`.
    pub layers: Vec<TransformerLayer>,
}

impl SasRecEncoder {
    /// Adds a freshly initialised encoder to `store` (Linear and Embedding weights
    /// `N(0, init_std)`, including the padding row, as RecBole; biases 0; LayerNorm (1, 0)).
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        config: SasRecConfig,
        rng: &mut dyn RngCore,
    ) -> Self {
        let c = &config;
        let init = Init::Normal(c.init_std);
        let item_embedding = store.add(
            "item_embedding.weight",
            Tensor::normal(&[c.item_rows, c.hidden], 0.0, c.init_std, rng),
            group,
        );
        let position_embedding = store.add(
            "position_embedding.weight",
            Tensor::normal(&[c.max_len, c.hidden], 0.0, c.init_std, rng),
            group,
        );
        let layers = (0..c.layers)
            .map(|i| {
                let name = format!("trm_encoder.layer.{i}");
                TransformerLayer {
                    attention: MultiHeadAttention::new(
                        store,
                        group,
                        &format!("{name}.multi_head_attention"),
                        c.hidden,
                        c.heads,
                        c.layer_norm_eps,
                        init,
                        rng,
                    ),
                    feed_forward: FeedForward::new(
                        store,
                        group,
                        &format!("{name}.feed_forward"),
                        c.hidden,
                        c.inner,
                        c.layer_norm_eps,
                        init,
                        rng,
                    ),
                }
            })
            .collect();
        let norm = LayerNorm::new(store, group, "LayerNorm", c.hidden, c.layer_norm_eps);
        SasRecEncoder {
            config,
            item_embedding,
            position_embedding,
            norm,
            layers,
        }
    }

    /// The dropout settings of this encoder with masks from `rng` (training) or none.
    pub fn dropouts<'r>(&self, rng: Option<&'r mut dyn RngCore>) -> Dropouts<'r> {
        Dropouts {
            hidden: self.config.hidden_dropout,
            attn: self.config.attn_dropout,
            rng,
        }
    }

    /// The representation `[batch, hidden]` of each sequence of `batch`.
    ///
    /// # Panics
    /// If the batch is wider than `max_len`.
    pub fn forward<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        batch: &SeqBatch,
        drop: &mut Dropouts<'_>,
    ) -> Var<'t, E> {
        let (b, w, d) = (batch.len(), batch.width, self.config.hidden);
        assert!(
            w <= self.config.max_len,
            "sequence width {w} exceeds max_len {}",
            self.config.max_len
        );
        let items = p
            .get(self.item_embedding)
            .embedding(&batch.items, &[b, w], Some(0));
        let positions = p.get(self.position_embedding).narrow(0, 0, w);
        let x = self.norm.forward(p, items.add(positions));
        let mut x = drop.apply(x, drop.hidden);
        // Expanded to every head once, so each layer's add is a same-shape add.
        let mask = batch
            .attention_mask::<E>()
            .broadcast_to(&[b, self.config.heads, w, w]);
        for layer in &self.layers {
            x = layer.attention.forward(p, x, &mask, drop);
            x = layer.feed_forward.forward(p, x, drop);
        }
        x.reshape(&[b * w, d])
            .index_select(0, &batch.last_positions())
    }

    /// The item table rows that are softmax classes in training (padding + real items).
    pub fn class_embeddings<'t, E: Element>(&self, p: &Bound<'t, E>) -> Var<'t, E> {
        let table = p.get(self.item_embedding);
        if self.config.item_rows == self.config.n_classes {
            table
        } else {
            table.narrow(0, 0, self.config.n_classes)
        }
    }
}
