//! `nn.Linear`: `y = x W^T + b` with `W` stored `[out, in]` (PyTorch's layout, so weights
//! load unchanged).

use mclrec_autograd::{GroupId, ParamId, ParamStore, Var};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::Bound;

/// How a layer's weights start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// `N(0, std)` weights and zero biases (RecBole's SASRec init, std 0.02).
    Normal(f64),
    /// PyTorch's default `nn.Linear` init: weights and biases `U(-1/sqrt(in), 1/sqrt(in))`
    /// (the official code leaves the augmenters with it).
    TorchDefault,
}

/// A fully connected layer.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: ParamId,
    /// `[out]`.
    pub bias: ParamId,
    /// Input features.
    pub input: usize,
    /// Output features.
    pub output: usize,
}

impl Linear {
    /// Adds `{name}.weight` and `{name}.bias` to `store`.
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        name: &str,
        input: usize,
        output: usize,
        init: Init,
        rng: &mut dyn RngCore,
    ) -> Self {
        let (w, b) = match init {
            Init::Normal(std) => (
                Tensor::normal(&[output, input], 0.0, std, rng),
                Tensor::zeros(&[output]),
            ),
            Init::TorchDefault => {
                let a = 1.0 / (input as f64).sqrt();
                (
                    Tensor::uniform(&[output, input], -a, a, rng),
                    Tensor::uniform(&[output], -a, a, rng),
                )
            }
        };
        let weight = store.add(&format!("{name}.weight"), w, group);
        let bias = store.add(&format!("{name}.bias"), b, group);
        Linear {
            weight,
            bias,
            input,
            output,
        }
    }

    /// Applies the layer to the last axis of `x` (leading axes are folded into one GEMM).
    pub fn forward<'t, E: Element>(&self, p: &Bound<'t, E>, x: Var<'t, E>) -> Var<'t, E> {
        let shape = x.shape();
        let rows = shape[..shape.len() - 1].iter().product();
        let y = x
            .reshape(&[rows, self.input])
            .linear(p.get(self.weight), p.get(self.bias));
        let mut out = shape;
        *out.last_mut().unwrap() = self.output;
        y.reshape(&out)
    }
}
