//! MCLRec's learnable augmenter (the official `Extractor([64, 32, 16, 64], 'gelu')`).

use mclrec_autograd::{GroupId, ParamStore, Var};
use mclrec_tensor::Element;
use rand::RngCore;

use crate::{Bound, Init, Linear};

/// An MLP `64 -> 32 -> 16 -> 64` with GELU after the first two layers and a row-wise L2
/// normalisation of the output (`x / sqrt(sum x^2)`, no epsilon, as the official code).
#[derive(Clone, Debug)]
pub struct Augmenter {
    /// The layers, named `{name}.dense_1` .. `{name}.dense_3`.
    pub layers: Vec<Linear>,
}

impl Augmenter {
    /// Adds an augmenter with layer widths `dims` (e.g. `[64, 32, 16, 64]`) under `name`
    /// (`aug_1`, `aug_2`), with PyTorch's default Linear init as the official trainer.
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        name: &str,
        dims: &[usize],
        rng: &mut dyn RngCore,
    ) -> Self {
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                Linear::new(
                    store,
                    group,
                    &format!("{name}.dense_{}", i + 1),
                    w[0],
                    w[1],
                    Init::TorchDefault,
                    rng,
                )
            })
            .collect();
        Augmenter { layers }
    }

    /// Maps sequence representations `[n, 64]` to unit-norm vectors `[n, 64]`.
    pub fn forward<'t, E: Element>(&self, p: &Bound<'t, E>, h: Var<'t, E>) -> Var<'t, E> {
        let mut x = h;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(p, x);
            if i + 1 < self.layers.len() {
                x = x.gelu();
            }
        }
        x.l2_normalize()
    }
}
