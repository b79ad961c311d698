//! Multi-head self-attention with residual and post-layer-norm (RecBole's
//! `MultiHeadAttention`).

use mclrec_autograd::{GroupId, ParamStore, Var};
use mclrec_tensor::{Element, Tensor};
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
        }
    }

    /// `x`: `[batch, width, hidden]`; `mask`: `[batch, heads, width, width]` additive (the
    /// same for every layer, so the encoder expands it once per forward).
    pub fn forward<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        x: Var<'t, E>,
        mask: &Tensor<E>,
        drop: &mut Dropouts<'_>,
    ) -> Var<'t, E> {
        let s = x.shape();
        let (b, w, d) = (s[0], s[1], s[2]);
        let (h, dh) = (self.heads, d / self.heads);
        let heads = |t: Var<'t, E>| {
            t.reshape(&[b, w, h, dh])
                .permute(&[0, 2, 1, 3])
                .reshape(&[b * h, w, dh])
        };
        let q = heads(self.query.forward(p, x));
        let k = heads(self.key.forward(p, x));
        let v = heads(self.value.forward(p, x));
        let scale = E::from_f64(1.0 / (dh as f64).sqrt());
        let scores = q
            .matmul_t(k, false, true)
            .mul_scalar(scale)
            .reshape(&[b, h, w, w]);
        let scores = scores.add(x.tape().constant(mask.clone()));
        let probs = scores.softmax();
        let probs = drop.apply(probs, drop.attn).reshape(&[b * h, w, w]);
        let ctx = probs
            .matmul(v)
            .reshape(&[b, h, w, dh])
            .permute(&[0, 2, 1, 3])
            .reshape(&[b, w, d]);
        let out = self.dense.forward(p, ctx);
        let out = drop.apply(out, drop.hidden);
        self.norm.forward(p, out.add(x))
    }
}
