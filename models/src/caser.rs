//! Caser (Tang and Wang, WSDM'18) as RecBole writes it (`caser.py`): the last `L` items as
//! an `L x d` "image", horizontal convolutions of every height `1..=L` max-pooled over time,
//! a vertical convolution across the whole window, a fully connected layer, and the user's
//! embedding beside it before the output layer.
//!
//! With `E` the window's item embeddings (`[L, d]`) and `u` the user's:
//!
//! ```text
//! o_v = W_v E + b_v                      (n_v filters of [L, 1]: [n_v, d], flattened channel-major)
//! o_h = concat_h max_t relu(W_h unfold_h(E)_t + b_h)   (n_h filters of [h, d] per height h)
//! z   = relu(fc1([o_v; o_h]))
//! s   = relu(fc2([z; u]))                (the sequence's representation, scored against
//!                                          every item row)
//! ```
//!
//! Unlike the sequential models above it, Caser reads a fixed window: RecBole feeds the
//! right-padded sequence (real items first, then padding, whose embedding row takes part),
//! and so does [`Caser::forward`]. The vertical convolution is a product in general ops;
//! each horizontal one is the fused [`FusedOps::conv_max_pool`], which neither unfolds the
//! windows nor keeps the activations of the windows that lose the max (its reference in
//! general ops and gradient checks are in `mclrec-autograd`).

use mclrec_autograd::fused::FusedOps;
use mclrec_autograd::{GroupId, ParamId, ParamStore, Var};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::{Bound, Dropouts, Init, Linear};

/// The Caser network (RecBole's parameter names: `item_embedding`, `user_embedding`,
/// `conv_v`, `conv_h.{i}`, `fc1`, `fc2`).
#[derive(Clone, Debug)]
pub struct Caser {
    /// `item_embedding.weight`: `[item rows, d]` (row 0 the padding item).
    pub item_embedding: ParamId,
    /// `user_embedding.weight`: `[user rows, d]`.
    pub user_embedding: ParamId,
    /// `conv_v.weight` `[n_v, 1, L, 1]` and `conv_v.bias` `[n_v]`.
    pub conv_v: (ParamId, ParamId),
    /// `conv_h.{h-1}.weight` `[n_h, 1, h, d]` and its bias `[n_h]`, for `h = 1..=L`.
    pub conv_h: Vec<(ParamId, ParamId)>,
    /// `[n_v d + L n_h] -> d`.
    pub fc1: Linear,
    /// `[2d] -> d`.
    pub fc2: Linear,
    /// The window `L`.
    pub max_len: usize,
    /// The embedding width `d`.
    pub dim: usize,
    /// Vertical filters `n_v`.
    pub n_v: usize,
    /// Horizontal filters per height `n_h`.
    pub n_h: usize,
}

impl Caser {
    /// Adds Caser's parameters to `store`, initialised as RecBole does: embeddings
    /// `N(0, 1/d)`, linear layers Xavier-normal with zero biases, convolutions PyTorch's
    /// default `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
    #[allow(clippy::too_many_arguments)]
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        (item_rows, user_rows): (usize, usize),
        max_len: usize,
        dim: usize,
        (n_v, n_h): (usize, usize),
        rng: &mut dyn RngCore,
    ) -> Self {
        let std = 1.0 / dim as f64;
        let item_embedding = store.add(
            "item_embedding.weight",
            Tensor::normal(&[item_rows, dim], 0.0, std, rng),
            group,
        );
        let user_embedding = store.add(
            "user_embedding.weight",
            Tensor::normal(&[user_rows, dim], 0.0, std, rng),
            group,
        );
        let mut conv = |name: &str, shape: &[usize], rng: &mut dyn RngCore| {
            let fan_in: usize = shape[1..].iter().product();
            let a = 1.0 / (fan_in as f64).sqrt();
            let w = store.add(
                &format!("{name}.weight"),
                Tensor::uniform(shape, -a, a, rng),
                group,
            );
            let b = store.add(
                &format!("{name}.bias"),
                Tensor::uniform(&[shape[0]], -a, a, rng),
                group,
            );
            (w, b)
        };
        let conv_v = conv("conv_v", &[n_v, 1, max_len, 1], rng);
        let conv_h = (1..=max_len)
            .map(|h| conv(&format!("conv_h.{}", h - 1), &[n_h, 1, h, dim], rng))
            .collect();
        let xavier =
            |input: usize, output: usize| Init::Normal((2.0 / (input + output) as f64).sqrt());
        let fc1_in = n_v * dim + n_h * max_len;
        let fc1 = Linear::new(store, group, "fc1", fc1_in, dim, xavier(fc1_in, dim), rng);
        let fc2 = Linear::new(store, group, "fc2", 2 * dim, dim, xavier(2 * dim, dim), rng);
        Caser {
            item_embedding,
            user_embedding,
            conv_v,
            conv_h,
            fc1,
            fc2,
            max_len,
            dim,
            n_v,
            n_h,
        }
    }

    /// The representation `[batch, d]` of each user's window: `windows` holds
    /// `batch x L` item ids row by row (right-padded with 0, as RecBole), `users` one id
    /// per row; dropout at `drop.hidden` before `fc1`.
    pub fn forward<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        windows: &[usize],
        users: &[usize],
        drop: &mut Dropouts<'_>,
    ) -> Var<'t, E> {
        let (l, d, b) = (self.max_len, self.dim, users.len());
        assert_eq!(windows.len(), b * l, "Caser: {b} windows of {l} items");
        // Lookups of the padding row pass it no gradient (nn.Embedding(padding_idx=0)).
        let x = p
            .get(self.item_embedding)
            .embedding(windows, &[b, l], Some(0));
        // Vertical: [n_v, L] @ [L, d] per window, via x^T [b, d, L] @ W_v^T [L, n_v].
        let (wv, bv) = (p.get(self.conv_v.0), p.get(self.conv_v.1));
        let out_v = x
            .transpose(1, 2)
            .matmul_t(wv.reshape(&[self.n_v, l]), false, true)
            .add(bv)
            .transpose(1, 2)
            .reshape(&[b, self.n_v * d]);
        // Horizontal, height h: max over the L - h + 1 windows, then ReLU (RecBole applies
        // the ReLU first; the two commute, gradients included).
        let pooled: Vec<Var<'t, E>> = self
            .conv_h
            .iter()
            .enumerate()
            .map(|(k, &(w, bias))| {
                let w = p.get(w).reshape(&[self.n_h, k + 1, d]);
                x.conv_max_pool(w, p.get(bias)).relu()
            })
            .collect();
        let out = Var::concat(&[out_v, Var::concat(&pooled, 1)], 1);
        // RecBole's `dropout_prob`, on the concatenated convolution outputs.
        let out = drop.apply(out, drop.hidden);
        let z = self.fc1.forward(p, out).relu();
        let u = p.get(self.user_embedding).embedding(users, &[b], Some(0));
        self.fc2.forward(p, Var::concat(&[z, u], 1)).relu()
    }

    /// RecBole's regulariser, `reg_weight` times the unsquared Frobenius norms of the
    /// embedding tables, `conv_v`, `fc1` and `fc2` weights (`reg_loss`), plus the same of
    /// every horizontal filter bank (`reg_loss_conv_h`).
    pub fn regulariser<'t, E: Element>(&self, p: &Bound<'t, E>, reg_weight: f64) -> Var<'t, E> {
        let norm = |id: ParamId| p.get(id).norm_all();
        let terms = [
            self.user_embedding,
            self.item_embedding,
            self.conv_v.0,
            self.fc1.weight,
            self.fc2.weight,
        ]
        .into_iter()
        .chain(self.conv_h.iter().map(|c| c.0))
        .map(norm)
        .reduce(|a, b| a.add(b))
        .expect("Caser has weights");
        terms.mul_scalar(E::from_f64(reg_weight))
    }
}
