//! The fused ops: computations that the models could write with the general ops
//! of [`Var`] but that run as one tape node each, with their vector-Jacobian product done by
//! one tensor kernel.
//!
//! They exist for speed and memory, not for new maths. Each one has a **reference
//! implementation** in [`reference`](mod@reference), composed only of general [`Var`] ops (so its gradient
//! comes from autograd itself, and it runs on any device): read the reference to learn what
//! the op computes, and the fused op's file to see how the kernel is called. A test beside
//! each fused op checks that its values and gradients equal the reference's (`f64`, to about
//! `1e-12` relative) and that its gradient passes the finite-difference check
//! ([`gradcheck`](crate::gradcheck)).
//!
//! | fused op | what it is | reference | tests |
//! |---|---|---|---|
//! | [`FusedOps::attention`] | causal multi-head attention over packed sequences, dropout on the probabilities | [`reference::attention`] | `attention::tests::{equals_the_reference_*, grad_attention}` |
//! | [`FusedOps::conv_max_pool`] | Caser's horizontal convolution, max-pooled over time | [`reference::conv_max_pool`] | `conv_max_pool::tests::{equals_the_reference_*, grad_conv_max_pool}` |
//! | [`FusedOps::gru_recurrence`] | a GRU layer's recurrence over packed sequences, given its input products | [`reference::gru_recurrence`] | `gru::tests::{equals_the_reference_*, grad_gru_recurrence}` |
//! | [`FusedOps::contrastive_pair`] | MCLRec's InfoNCE and regulariser terms from a pair's similarity matrix | [`reference::contrastive_pair`] | `contrastive_pair::tests::{equals_the_reference_*, grad_contrastive_pair}` |
//! | [`FusedOps::linear_cross_entropy`] | cross-entropy of the scores `h W^T`, without the score matrix | [`reference::linear_cross_entropy`] | `linear_cross_entropy::tests::{equals_the_reference_*, grad_linear_cross_entropy}` |
//!
//! The ops are methods of the extension trait [`FusedOps`], implemented for [`Var`]: they
//! are called like any op once the trait is in scope, and stay out of `Var`'s own list of
//! general ops.
//!
//! ```
//! use mclrec_autograd::fused::{reference, FusedOps};
//! use mclrec_autograd::Tape;
//! use mclrec_tensor::Tensor;
//!
//! let tape = Tape::<f64>::new();
//! let h = tape.leaf(Tensor::from_f64s(&[0.5, -1.0, 2.0, 0.0], &[2, 2]));
//! let items = tape.leaf(Tensor::from_f64s(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]));
//! // One node on the tape, its backward one kernel call...
//! let fused = h.linear_cross_entropy(items, &[2, 0]);
//! // ...and the same loss from matmul_t, log_softmax, gather, sum_all and mul_scalar.
//! let by_hand = reference::linear_cross_entropy(h, items, &[2, 0]);
//! assert!((fused.value().item() - by_hand.value().item()).abs() < 1e-12);
//! let (g_fused, g_hand) = (fused.backward(), by_hand.backward());
//! for (a, b) in g_fused.get(items).unwrap().to_vec().iter().zip(g_hand.get(items).unwrap().to_vec()) {
//!     assert!((a - b).abs() < 1e-12);
//! }
//! ```

use std::sync::Arc;

use mclrec_tensor::attention::{QueryRows, SeqLayout};
use mclrec_tensor::dropout_mask::DropoutMask;
use mclrec_tensor::Element;

use crate::Var;

mod attention;
mod contrastive_pair;
mod conv_max_pool;
mod gru;
mod linear_cross_entropy;
pub mod reference;

/// The fused ops as methods of [`Var`]: `use mclrec_autograd::fused::FusedOps;` brings them
/// into scope. Each method's doc gives its maths; [`reference`](mod@reference) has the same function written
/// with general ops.
pub trait FusedOps<'t, E: Element> {
    /// Multi-head attention of the queries `self` (`[query rows, d]`) over the keys
    /// and values `kv` (`[rows, 2d]`, the keys in the first `d` columns) of the packed
    /// sequences of `layout`, with `dropout` on the attention probabilities.
    ///
    /// Per sequence and head `h` (width `d_h = d / heads`), for the query at position `i`
    /// and the keys at positions `j <= i` of its own sequence:
    /// `S_ij = q_i . k_j / sqrt(d_h) - 10000 [key j is blocked]`, `P_i = softmax_j(S_i)`,
    /// `ctx_i = sum_j P_ij m_ij v_j` with `m` the dropout factors (`0` or `1 / (1 - p)`).
    /// With `causal` (SASRec), keys after the query take no part (probability exactly 0);
    /// without (BERT4Rec), every key of its sequence does. The backward, with `g`
    /// the context gradient: `dv = (P m)^T g`, `dP = (g v^T) m`,
    /// `dS = P (dP - rowsum(P dP))`, `dq = dS k / sqrt(d_h)`, `dk = dS^T q / sqrt(d_h)`.
    ///
    /// [`QueryRows::Last`] computes only each sequence's last query (`self` is then
    /// `[sequences, d]`). See [`reference::attention`] for the same op in general ops.
    /// PyTorch: the manual attention of RecBole's `MultiHeadAttention`.
    ///
    /// # Panics
    /// If the shapes do not fit `layout`, `queries` and `heads`.
    fn attention(
        self,
        kv: Var<'t, E>,
        layout: &Arc<SeqLayout>,
        queries: QueryRows,
        causal: bool,
        heads: usize,
        dropout: Option<DropoutMask>,
    ) -> Var<'t, E>;

    /// `(InfoNCE, regulariser term)` of the pair whose similarity matrix (`[2n, 2n]`,
    /// `S = [a; b][a; b]^T`) is `self`; each a scalar.
    ///
    /// Row `r`'s positive is its partner `p(r)` (`r + n` or `r - n`), its negatives the
    /// `2n - 2` columns other than `r` and `p(r)`. With `k1 = 1 / 2n` and
    /// `k2 = 1 / (2n (2n - 2))`:
    /// `InfoNCE = k1 sum_r (log sum_{c != r} exp S_rc - S_r,p(r))`, and with
    /// `m_r` the hardest negative, `gap_r = relu(S_r,p(r) - m_r)`, `hi_r = m_r + gap_r`:
    /// `R = k1 sum_r gap_r + k2 sum_r sum_{negatives c} relu(hi_r - S_rc)`.
    /// Subgradients: `relu'(0) = 0`, and the max sends its gradient to the first hardest
    /// negative on ties. See [`reference::contrastive_pair`].
    ///
    /// # Panics
    /// If `self` is not `[2n, 2n]` with `n >= 2`.
    fn contrastive_pair(self) -> (Var<'t, E>, Var<'t, E>);

    /// The convolution of `self` (`[b, l, d]`: `l` positions of `d` features) with the
    /// filters `w` (`[n, h, d]`, each spanning the whole feature width), max-pooled over its
    /// `l - h + 1` windows, plus `bias` (`[n]`): `[b, n]` (Caser's horizontal convolution of
    /// height `h`, before its ReLU, which commutes with the max).
    ///
    /// `out[b, f] = max_t sum_{j < h, c} self[b, t + j, c] w[f, j, c] + bias[f]`. With `t*`
    /// the first maximising window and `g` the output gradient:
    /// `dx[b, t* + j, c] += g[b, f] w[f, j, c]`, `dw[f, j, c] = sum_b g[b, f] x[b, t* + j, c]`,
    /// `dbias = sum_b g`. See [`reference::conv_max_pool`]. PyTorch: `nn.Conv2d(1, n, (h, d))`
    /// then `max_pool1d` over time, as RecBole's `Caser`.
    ///
    /// # Panics
    /// If `self` is not `[b, l, d]`, `w` not `[n, h, d]` with `1 <= h <= l`, or `bias` not `[n]`.
    fn conv_max_pool(self, w: Var<'t, E>, bias: Var<'t, E>) -> Var<'t, E>;

    /// The states (`[rows, H]`) of a GRU layer after every position of `layout`'s packed
    /// sequences, from the input products `self` (`gi = x W_ih^T + b_ih`, `[rows, 3H]`,
    /// gates `r, z, n`), `w_hh` (`[3H, H]`) and `b_hh` (`[3H]`), each sequence starting
    /// from a zero state:
    /// `r = sigmoid(gi_r + gh_r)`, `z = sigmoid(gi_z + gh_z)`, `n = tanh(gi_n + r gh_n)`,
    /// `h' = n + z (h - n)` with `gh = h W_hh^T + b_hh`. The backward's equations are in
    /// [`mclrec_tensor::gru`]. See [`reference::gru_recurrence`]. PyTorch: `nn.GRU` (one
    /// layer, `batch_first`) over `pack_padded_sequence`.
    ///
    /// # Panics
    /// If the shapes disagree with each other or with `layout`.
    fn gru_recurrence(
        self,
        w_hh: Var<'t, E>,
        b_hh: Option<Var<'t, E>>,
        layout: &Arc<SeqLayout>,
    ) -> Var<'t, E>;

    /// Mean cross-entropy of the scores `self w^T` (`self`: `[n, d]`, `w`: `[classes, d]`)
    /// against `targets` (`n` class indices), without the `[n, classes]` scores.
    ///
    /// `L = -1/n sum_r log softmax(h_r W^T)[t_r]`; with `G = (softmax(h W^T) - onehot) / n`,
    /// `dh = g G W` and `dW = g G^T h`. See [`reference::linear_cross_entropy`].
    ///
    /// # Panics
    /// If the shapes disagree or a target is out of range.
    fn linear_cross_entropy(self, w: Var<'t, E>, targets: &[usize]) -> Var<'t, E>;
}

impl<'t, E: Element> FusedOps<'t, E> for Var<'t, E> {
    fn attention(
        self,
        kv: Var<'t, E>,
        layout: &Arc<SeqLayout>,
        queries: QueryRows,
        causal: bool,
        heads: usize,
        dropout: Option<DropoutMask>,
    ) -> Var<'t, E> {
        attention::attention(self, kv, layout, queries, causal, heads, dropout)
    }

    fn contrastive_pair(self) -> (Var<'t, E>, Var<'t, E>) {
        contrastive_pair::contrastive_pair(self)
    }

    fn conv_max_pool(self, w: Var<'t, E>, bias: Var<'t, E>) -> Var<'t, E> {
        conv_max_pool::conv_max_pool(self, w, bias)
    }

    fn gru_recurrence(
        self,
        w_hh: Var<'t, E>,
        b_hh: Option<Var<'t, E>>,
        layout: &Arc<SeqLayout>,
    ) -> Var<'t, E> {
        gru::gru_recurrence(self, w_hh, b_hh, layout)
    }

    fn linear_cross_entropy(self, w: Var<'t, E>, targets: &[usize]) -> Var<'t, E> {
        linear_cross_entropy::linear_cross_entropy(self, w, targets)
    }
}
