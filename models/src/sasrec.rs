//! The SASRec encoder (RecBole's `SASRec` as the official MCLRec code uses it).

use mclrec_autograd::{GroupId, ParamId, ParamStore, Var};
use mclrec_tensor::attention::QueryRows;
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

    /// A bidirectional encoder whose item table ends with a row for the mask token
    /// ([`SasRecEncoder::mask_token`]): the stack of the masked-item models (BERT4Rec,
    /// S3-Rec's pre-training).
    ///
    /// # Panics
    /// If `config.item_rows` is not `config.n_classes + 1`.
    pub fn masked_item<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        config: SasRecConfig,
        rng: &mut dyn RngCore,
    ) -> Self {
        assert_eq!(
            config.item_rows,
            config.n_classes + 1,
            "a masked-item model's item table has one row for the mask token after the classes"
        );
        let mut encoder = Self::new(store, group, config, rng);
        encoder.set_causal(false);
        encoder
    }

    /// The mask token's id (the row after the classes) of a [`masked_item`](Self::masked_item)
    /// encoder.
    pub fn mask_token(&self) -> usize {
        self.config.n_classes
    }

    /// Makes every layer's attention causal (SASRec, the default) or bidirectional
    /// (BERT4Rec, S3-Rec's pre-training).
    pub fn set_causal(&mut self, causal: bool) {
        for layer in &mut self.layers {
            layer.attention.causal = causal;
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
    /// The last layer computes only each sequence's last position (its keys and values
    /// still cover every position): the other positions' outputs are never read.
    ///
    /// # Panics
    /// If a sequence is longer than `max_len`.
    pub fn forward<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        batch: &SeqBatch,
        drop: &mut Dropouts<'_>,
    ) -> Var<'t, E> {
        self.encode(p, batch, drop, QueryRows::Last)
    }

    /// The last layer's output at every position of `batch` (`[rows, hidden]`, packed as
    /// the batch): what a masked-item model (BERT4Rec) reads at its masked positions.
    pub fn forward_every_position<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        batch: &SeqBatch,
        drop: &mut Dropouts<'_>,
    ) -> Var<'t, E> {
        self.encode(p, batch, drop, QueryRows::All)
    }

    /// The embeddings and the layers; the last layer computes the rows `last_layer` names.
    fn encode<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        batch: &SeqBatch,
        drop: &mut Dropouts<'_>,
        last_layer: QueryRows,
    ) -> Var<'t, E> {
        assert!(
            batch.max_len() <= self.config.max_len,
            "sequence length {} exceeds max_len {}",
            batch.max_len(),
            self.config.max_len
        );
        let rows = [batch.rows()];
        let items = p
            .get(self.item_embedding)
            .embedding(&batch.items, &rows, Some(0));
        let positions = p
            .get(self.position_embedding)
            .embedding(&batch.positions, &rows, None);
        let x = self.norm.forward(p, items.add(positions));
        let mut x = drop.apply(x, drop.hidden);
        if self.layers.is_empty() {
            return match last_layer {
                QueryRows::Last => x.index_select(0, &batch.layout.last_rows()),
                QueryRows::All => x,
            };
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let queries = if i + 1 == self.layers.len() {
                last_layer
            } else {
                QueryRows::All
            };
            x = layer.attention.forward(p, x, &batch.layout, queries, drop);
            x = layer.feed_forward.forward(p, x, drop);
        }
        x
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
