//! BERT4Rec (Sun et al., CIKM'19) as RecBole writes it (`bert4rec.py`): the SASRec stack
//! with bidirectional attention, an extra item row for the mask token, and an output head
//! `output_ln(gelu(output_ffn(h)))` scored against the real items' embeddings plus a bias.
//! Trained by the Cloze task: some positions of each sequence are replaced by the mask
//! token and their items predicted from both sides.
//!
//! ```text
//! h   = BidirectionalSasRec(items with some masked)   at every position
//! o   = LayerNorm(gelu(W_o h + b_o))
//! s_i = o . e_i + bias_i                               for every real item i (and padding)
//! ```

use mclrec_autograd::{GroupId, ParamId, ParamStore, Var};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::{Bound, Dropouts, Init, LayerNorm, Linear, SasRecConfig, SasRecEncoder, SeqBatch};

/// The BERT4Rec network (RecBole's parameter names).
#[derive(Clone, Debug)]
pub struct Bert4Rec {
    /// The transformer stack, its attention bidirectional; its item table has one row more
    /// than its classes: the mask token's ([`SasRecEncoder::mask_token`]).
    pub encoder: SasRecEncoder,
    /// `output_ffn`: `hidden -> hidden`.
    pub output_ffn: Linear,
    /// `output_ln`.
    pub output_ln: LayerNorm,
    /// `output_bias`: one per class (padding and real items, not the mask token).
    pub output_bias: ParamId,
}

impl Bert4Rec {
    /// Adds BERT4Rec's parameters to `store`: `config` as SASRec's, with `item_rows` one
    /// more than `n_classes` (the mask token, id `n_classes`); initialised as RecBole
    /// (weights `N(0, init_std)`, biases 0, the output bias 0).
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        config: SasRecConfig,
        rng: &mut dyn RngCore,
    ) -> Self {
        let bias = store.add("output_bias", Tensor::zeros(&[config.n_classes]), group);
        let (hidden, eps, std) = (config.hidden, config.layer_norm_eps, config.init_std);
        let encoder = SasRecEncoder::masked_item(store, group, config, rng);
        let output_ffn = Linear::new(
            store,
            group,
            "output_ffn",
            hidden,
            hidden,
            Init::Normal(std),
            rng,
        );
        let output_ln = LayerNorm::new(store, group, "output_ln", hidden, eps);
        Bert4Rec {
            encoder,
            output_ffn,
            output_ln,
            output_bias: bias,
        }
    }

    /// The head's output at the rows `rows` of `batch` (`[rows.len(), hidden]`).
    pub fn forward<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        batch: &SeqBatch,
        rows: &[usize],
        drop: &mut Dropouts<'_>,
    ) -> Var<'t, E> {
        let h = self
            .encoder
            .forward_every_position(p, batch, drop)
            .index_select(0, rows);
        let o = self.output_ffn.forward(p, h).gelu();
        self.output_ln.forward(p, o)
    }

    /// The scores of every class for the outputs `o` of [`Bert4Rec::forward`]:
    /// `o E^T + bias`, `E` the class rows of the item table.
    pub fn scores<'t, E: Element>(&self, p: &Bound<'t, E>, o: Var<'t, E>) -> Var<'t, E> {
        o.matmul_t(self.encoder.class_embeddings(p), false, true)
            .add(p.get(self.output_bias))
    }
}
