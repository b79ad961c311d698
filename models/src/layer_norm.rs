//! `nn.LayerNorm` over the last axis, with the epsilon the model uses (1e-12 in SASRec).

use mclrec_autograd::{GroupId, ParamId, ParamStore, Var};
use mclrec_tensor::{Element, Tensor};

use crate::Bound;

/// Layer normalisation with affine weight (init 1) and bias (init 0).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// `[d]`, named `{name}.weight`.
    pub weight: ParamId,
    /// `[d]`, named `{name}.bias`.
    pub bias: ParamId,
    /// Added to the variance.
    pub eps: f64,
}

impl LayerNorm {
    /// Adds `{name}.weight` and `{name}.bias` to `store`.
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        name: &str,
        d: usize,
        eps: f64,
    ) -> Self {
        let weight = store.add(&format!("{name}.weight"), Tensor::ones(&[d]), group);
        let bias = store.add(&format!("{name}.bias"), Tensor::zeros(&[d]), group);
        LayerNorm { weight, bias, eps }
    }

    /// Normalises the last axis of `x`.
    pub fn forward<'t, E: Element>(&self, p: &Bound<'t, E>, x: Var<'t, E>) -> Var<'t, E> {
        x.layer_norm(p.get(self.weight), p.get(self.bias), self.eps)
    }
}
