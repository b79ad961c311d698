//! The position-wise feed-forward block with residual and post-layer-norm (RecBole's
//! `FeedForward`).

use mclrec_autograd::{GroupId, ParamStore, Var};
use mclrec_tensor::Element;
use rand::RngCore;

use crate::{Bound, Dropouts, Init, LayerNorm, Linear};

/// `LN(x + dropout(dense_2(gelu(dense_1(x)))))`.
#[derive(Clone, Debug)]
pub struct FeedForward {
    /// `dense_1`: hidden -> inner.
    pub dense_1: Linear,
    /// `dense_2`: inner -> hidden.
    pub dense_2: Linear,
    /// `LayerNorm`.
    pub norm: LayerNorm,
}

impl FeedForward {
    /// Adds the block's parameters under `name` (e.g. `trm_encoder.layer.0.feed_forward`).
    #[allow(clippy::too_many_arguments)]
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        name: &str,
        hidden: usize,
        inner: usize,
        eps: f64,
        init: Init,
        rng: &mut dyn RngCore,
    ) -> Self {
        FeedForward {
            dense_1: Linear::new(
                store,
                group,
                &format!("{name}.dense_1"),
                hidden,
                inner,
                init,
                rng,
            ),
            dense_2: Linear::new(
                store,
                group,
                &format!("{name}.dense_2"),
                inner,
                hidden,
                init,
                rng,
            ),
            norm: LayerNorm::new(store, group, &format!("{name}.LayerNorm"), hidden, eps),
        }
    }

    /// Applies the block to `[.., hidden]`.
    pub fn forward<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        x: Var<'t, E>,
        drop: &mut Dropouts<'_>,
    ) -> Var<'t, E> {
        let h = self.dense_2.forward(p, self.dense_1.forward(p, x).gelu());
        let h = drop.apply(h, drop.hidden);
        self.norm.forward(p, h.add(x))
    }
}
