//! Multi-head self-attention with residual and post-layer-norm (RecBole's
//! `MultiHeadAttention`), over packed sequences.

use std::sync::Arc;

use mclrec_autograd::fused::FusedOps;
use mclrec_autograd::{GroupId, ParamStore, Var};
use mclrec_tensor::attention::{QueryRows, SeqLayout};
use mclrec_tensor::dropout_mask::DropoutMask;
use mclrec_tensor::Element;
use rand::RngCore;

use crate::{Bound, Init, LayerNorm, Linear};

/// `LN(x + dropout(dense(softmax(Q K^T / sqrt(d_h) + mask) V)))`, heads split from the
/// hidden axis.
#[derive(Clone, Debug)]
pub struct MultiHeadAttention {
    /// `query`.
    pub query: Linear,
    /// `key`.
    pub key: Linear,
    /// `value`.
    pub value: Linear,
    /// `dense`: the output projection.
    pub dense: Linear,
    /// `LayerNorm`.
    pub norm: LayerNorm,
    /// Number of heads.
    pub heads: usize,
    /// Causal (SASRec, the default of [`MultiHeadAttention::new`]) or bidirectional
    /// (BERT4Rec) attention.
    pub causal: bool,
}

/// Dropout settings and randomness for one forward pass; `None` rng = evaluation.
pub struct Dropouts<'r> {
    /// Hidden dropout probability.
    pub hidden: f64,
    /// Attention-probability dropout probability.
    pub attn: f64,
    /// Where masks come from; `None` turns dropout off.
    pub rng: Option<&'r mut dyn RngCore>,
}

impl Dropouts<'_> {
    /// No dropout (evaluation).
    pub fn off() -> Dropouts<'static> {
        Dropouts {
            hidden: 0.0,
            attn: 0.0,
            rng: None,
        }
    }

    /// Applies dropout with probability `p` when training.
    pub fn apply<'t, E: Element>(&mut self, x: Var<'t, E>, p: f64) -> Var<'t, E> {
        match self.rng.as_deref_mut() {
            Some(rng) if p > 0.0 => x.dropout(p, true, rng),
            _ => x,
        }
    }

    /// A fresh mask of drop probability `p` when training, else `None`.
    pub fn mask(&mut self, p: f64) -> Option<DropoutMask> {
        match self.rng.as_deref_mut() {
            Some(rng) if p > 0.0 => Some(DropoutMask::new(p, rng.next_u64())),
            _ => None,
        }
    }
}

impl MultiHeadAttention {
    /// Adds the layer's parameters under `name` (e.g. `trm_encoder.layer.0.multi_head_attention`).
    #[allow(clippy::too_many_arguments)]
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        name: &str,
        hidden: usize,
        heads: usize,
        eps: f64,
        init: Init,
        rng: &mut dyn RngCore,
    ) -> Self {
        assert_eq!(
            hidden % heads,
            0,
            "hidden size {hidden} is not a multiple of {heads} heads"
        );
        let mut lin = |n: &str| {
            Linear::new(
                store,
                group,
                &format!("{name}.{n}"),
                hidden,
                hidden,
                init,
                rng,
            )
        };
        let (query, key, value, dense) = (lin("query"), lin("key"), lin("value"), lin("dense"));
        let norm = LayerNorm::new(store, group, &format!("{name}.LayerNorm"), hidden, eps);
        MultiHeadAttention {
            query,
            key,
            value,
            dense,
            norm,
            heads,
            causal: true,
        }
    }

    /// `x`: `[rows, hidden]`, the positions of the packed sequences of `layout`. Returns
    /// the layer's output at the rows `queries` names: every row, or each sequence's last
    /// row (`[sequences, hidden]`), all the last layer of the encoder needs.
    pub fn forward<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        x: Var<'t, E>,
        layout: &Arc<SeqLayout>,
        queries: QueryRows,
        drop: &mut Dropouts<'_>,
    ) -> Var<'t, E> {
        let x_q = match queries {
            QueryRows::All => x,
            QueryRows::Last => x.index_select(0, &layout.last_rows()),
        };
        let q = self.query.forward(p, x_q);
        // Keys and values from one GEMM against [W_k; W_v] (a 2 x 64 x 64 copy per call).
        let w = Var::concat(&[p.get(self.key.weight), p.get(self.value.weight)], 0);
        let b = Var::concat(&[p.get(self.key.bias), p.get(self.value.bias)], 0);
        let kv = x.matmul_t(w, false, true).add(b);
        let attn_drop = drop.mask(drop.attn);
        let ctx = q.attention(kv, layout, queries, self.causal, self.heads, attn_drop);
        let out = self.dense.forward(p, ctx);
        let out = drop.apply(out, drop.hidden);
        self.norm.forward(p, out.add(x_q))
    }
}
