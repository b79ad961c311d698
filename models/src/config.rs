//! The encoder's hyper-parameters.

/// SASRec encoder settings (RecBole names in brackets). Defaults are the official Beauty
/// run's.
#[derive(Clone, Debug, PartialEq)]
pub struct SasRecConfig {
    /// Rows of the item table: the padding row 0, every real item, and any unused rows
    /// (the official checkpoints carry one extra).
    pub item_rows: usize,
    /// Classes of the training softmax: the padding item plus every real item
    /// (RecBole's `n_items`). Scoring never reads rows past this.
    pub n_classes: usize,
    /// `max_seq_length`: rows of the position table.
    pub max_len: usize,
    /// `hidden_size`.
    pub hidden: usize,
    /// `inner_size` of the feed-forward block.
    pub inner: usize,
    /// `n_layers`.
    pub layers: usize,
    /// `n_heads`.
    pub heads: usize,
    /// `hidden_dropout_prob`.
    pub hidden_dropout: f64,
    /// `attn_dropout_prob`.
    pub attn_dropout: f64,
    /// `layer_norm_eps`.
    pub layer_norm_eps: f64,
    /// Std of the normal init of Linear and Embedding weights (`initializer_range`).
    pub init_std: f64,
}

impl SasRecConfig {
    /// The paper's settings for a dataset with `n_real_items` items (ids 1..=n).
    pub fn for_items(n_real_items: usize) -> Self {
        SasRecConfig {
            item_rows: n_real_items + 1,
            n_classes: n_real_items + 1,
            max_len: 50,
            hidden: 64,
            inner: 256,
            layers: 2,
            heads: 2,
            hidden_dropout: 0.5,
            attn_dropout: 0.5,
            layer_norm_eps: 1e-12,
            init_std: 0.02,
        }
    }

    /// The number of real items (ids `1..=n_real_items()`).
    pub fn n_real_items(&self) -> usize {
        self.n_classes - 1
    }
}
