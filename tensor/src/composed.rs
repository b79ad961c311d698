//! The fused ops written in the [`Backend`](crate::backend::Backend) primitives: the
//! default methods of [`FusedBackend`](crate::backend::FusedBackend), and the plain
//! references the CPU and CUDA kernels are tested against (`tests` below).
//!
//! Each function here calls only [`Tensor`] methods that go to a core primitive (`unary`,
//! `binary`, `matmul`, `reduce`, `arg_reduce`, `gather`, `scatter_add`, `narrow`, `concat`,
//! `masked_fill`, ...), never a fused one, so a backend that implements the core alone runs
//! them without recursion. They are written for clarity, not speed: per sequence and head,
//! whole matrices, no reuse of buffers.
//!
//! ```
//! use mclrec_tensor::Tensor;
//!
//! // The default softmax: shift by the row max, exponentiate, divide by the row sum.
//! let x = Tensor::<f64>::from_f64s(&[1.0, 2.0, 3.0], &[1, 3]);
//! let p = mclrec_tensor::composed::softmax(&x, false);
//! assert!((p.to_f64s()[2] - x.softmax().to_f64s()[2]).abs() < 1e-15);
//! ```

use crate::attention::SeqLayout;
use crate::attention::{AttentionSpec, SeqBlock};
use crate::contrastive::partner;
use crate::dropout_mask::DropoutMask;
use crate::gru::GruSchedule;
use crate::kernels::AdamParams;
use crate::{Element, Tensor};

/// The official additive mask of a padding key.
const BLOCKED: f64 = -10000.0;

/// `x`'s shape with the last axis 1: how a per-row statistic broadcasts back over its row.
fn row_shape<E: Element>(x: &Tensor<E>) -> Vec<usize> {
    let mut s = x.shape().to_vec();
    *s.last_mut().expect("a row op needs rank >= 1") = 1;
    s
}

/// `softmax(x) = e^(x - max) / sum e^(x - max)` over the last axis; with `log`,
/// `x - max - ln sum e^(x - max)`.
pub fn softmax<E: Element>(x: &Tensor<E>, log: bool) -> Tensor<E> {
    let last = x.rank() - 1;
    let keep = row_shape(x);
    let shifted = x.sub(&x.max_axis(last).0.reshape(&keep));
    let e = shifted.exp();
    let sum = e.sum_axis(last).reshape(&keep);
    if log {
        shifted.sub(&sum.ln())
    } else {
        e.div(&sum)
    }
}

/// A `[rows, cols]` tensor on `like`'s device, `1` at `(r, cols_of[r])`, else `0`.
fn one_hot<E: Element>(like: &Tensor<E>, cols_of: &[usize], cols: usize) -> Tensor<E> {
    let rows = cols_of.len();
    like.full_like(&[rows, 1], E::one())
        .scatter_add(1, cols_of, &[rows, cols])
}

/// Mean `-log_softmax(x)[r, t_r]` and its gradient `(softmax(x) - onehot(t)) / n`.
pub fn cross_entropy<E: Element>(x: &Tensor<E>, targets: &[usize]) -> (f64, Tensor<E>) {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let log_p = softmax(x, true);
    let picked = log_p.gather(1, targets, &[n, 1]).to_f64s();
    let loss = -picked.iter().sum::<f64>() / n as f64;
    let grad = log_p
        .exp()
        .sub(&one_hot(x, targets, c))
        .mul_scalar(E::from_f64(1.0 / n as f64));
    (loss, grad)
}

/// `y = (x - mean) rstd gamma + beta` per row, `rstd = 1 / sqrt(var + eps)` (biased
/// variance); returns `(y, mean, rstd)`, the statistics of shape `x.shape()[..rank - 1]`.
pub fn layer_norm<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    beta: &Tensor<E>,
    eps: E,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let last = x.rank() - 1;
    let keep = row_shape(x);
    let mean = x.mean_axis(last);
    let centred = x.sub(&mean.reshape(&keep));
    let rstd = centred
        .square()
        .mean_axis(last)
        .add_scalar(eps)
        .sqrt()
        .recip();
    let y = centred.mul(&rstd.reshape(&keep)).mul(gamma).add(beta);
    (y, mean, rstd)
}

/// With `xh = (x - mean) rstd` and `h = g gamma`, per row:
/// `dx = rstd (h - mean(h) - xh mean(h xh))`; over all rows: `dgamma = sum g xh`,
/// `dbeta = sum g`.
pub fn layer_norm_backward<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    mean: &Tensor<E>,
    rstd: &Tensor<E>,
    g: &Tensor<E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let last = x.rank() - 1;
    let keep = row_shape(x);
    let n = x.shape()[last];
    let rows = x.numel() / n.max(1);
    let rstd_k = rstd.reshape(&keep);
    let xh = x.sub(&mean.reshape(&keep)).mul(&rstd_k);
    let h = g.mul(gamma);
    let mh = h.mean_axis(last).reshape(&keep);
    let mhx = h.mul(&xh).mean_axis(last).reshape(&keep);
    let dx = rstd_k.mul(&h.sub(&mh).sub(&xh.mul(&mhx)));
    let dgamma = g.mul(&xh).reshape(&[rows, n]).sum_axis(0);
    let dbeta = g.reshape(&[rows, n]).sum_axis(0);
    (dx, dgamma, dbeta)
}

/// `x` times each element's dropout factor (`0` or `1 / (1 - p)`), the factors drawn on
/// the host from the mask's counter-based hash and uploaded.
pub fn dropout<E: Element>(x: &Tensor<E>, mask: &DropoutMask) -> Tensor<E> {
    x.mul(&dropout_factors(x, mask))
}

fn dropout_factors<E: Element>(x: &Tensor<E>, mask: &DropoutMask) -> Tensor<E> {
    let scale = E::from_f64(mask.scale);
    let factors = (0..x.numel()).map(|i| mask.factor(i, scale)).collect();
    x.from_vec_like(factors, x.shape())
}

/// One sequence's view of the attention inputs: its queries and its keys and values, each
/// `[rows, d]`.
struct SeqView<E: Element> {
    q: Tensor<E>,
    k: Tensor<E>,
    v: Tensor<E>,
}

fn seq_view<E: Element>(q: &Tensor<E>, kv: &Tensor<E>, b: &SeqBlock, d: usize) -> SeqView<E> {
    let kv_b = kv.narrow(0, b.key_row, b.len);
    SeqView {
        q: q.narrow(0, b.q_row, b.queries),
        k: kv_b.narrow(1, 0, d),
        v: kv_b.narrow(1, d, d),
    }
}

/// The additive mask of block `b`'s scores `[queries, len]`: `-10000` on padding keys, and
/// (when causal) `-inf` on the keys after each query's position (so their probability is
/// exactly 0).
fn score_mask<E: Element>(like: &Tensor<E>, spec: &AttentionSpec<'_>, b: &SeqBlock) -> Tensor<E> {
    let mut m = Vec::with_capacity(b.queries * b.len);
    for i in 0..b.queries {
        for j in 0..b.len {
            m.push(if j >= spec.visible(b, i) {
                E::neg_infinity()
            } else if spec.layout.blocked(b.key_row + j) {
                E::from_f64(BLOCKED)
            } else {
                E::zero()
            });
        }
    }
    like.from_vec_like(m, &[b.queries, b.len])
}

/// Head `h`'s columns of a `[rows, d]` tensor.
fn head<E: Element>(x: &Tensor<E>, h: usize, dh: usize) -> Tensor<E> {
    x.narrow(1, h * dh, dh)
}

/// Per sequence and head: `P = softmax(q k^T / sqrt(d_h) + mask)`, `ctx = dropout(P) v`,
/// the mask causal or not as `spec` says.
/// Returns the context `[query rows, d]` and `P` flattened block by block
/// (`[heads, queries, len]` per sequence), as [`Tensor::attention`].
pub fn attention<E: Element>(
    q: &Tensor<E>,
    kv: &Tensor<E>,
    spec: &AttentionSpec<'_>,
) -> (Tensor<E>, Tensor<E>) {
    let d = q.shape()[1];
    let dh = d / spec.heads;
    let scale = E::from_f64(1.0 / (dh as f64).sqrt());
    let blocks = spec.blocks();
    let mut probs = Vec::with_capacity(blocks.len() * spec.heads);
    // The sequences' views, cut once: the values are read again after the dropout.
    let views: Vec<SeqView<E>> = blocks.iter().map(|b| seq_view(q, kv, b, d)).collect();
    for (b, s) in blocks.iter().zip(&views) {
        let mask = score_mask(q, spec, b);
        for h in 0..spec.heads {
            let scores = head(&s.q, h, dh)
                .matmul_t(&head(&s.k, h, dh), false, true)
                .mul_scalar(scale)
                .add(&mask);
            probs.push(softmax(&scores, false).reshape(&[b.queries * b.len]));
        }
    }
    let probs = Tensor::concat(&probs.iter().collect::<Vec<_>>(), 0);
    let dropped = match &spec.dropout {
        Some(m) => dropout(&probs, m),
        None => probs.clone(),
    };
    let mut ctx = Vec::with_capacity(blocks.len());
    for (b, s) in blocks.iter().zip(&views) {
        let heads: Vec<Tensor<E>> = (0..spec.heads)
            .map(|h| block_probs(&dropped, b, h).matmul(&head(&s.v, h, dh)))
            .collect();
        ctx.push(Tensor::concat(&heads.iter().collect::<Vec<_>>(), 1));
    }
    (Tensor::concat(&ctx.iter().collect::<Vec<_>>(), 0), probs)
}

/// Block `b`'s head-`h` probabilities `[queries, len]` out of the flat buffer.
fn block_probs<E: Element>(flat: &Tensor<E>, b: &SeqBlock, h: usize) -> Tensor<E> {
    let n = b.queries * b.len;
    flat.narrow(0, b.prob + h * n, n)
        .reshape(&[b.queries, b.len])
}

/// With `Pd = dropout(P)`, `M` the dropout factors and `g` the context gradient, per
/// sequence and head: `dv = Pd^T g`, `dP = (g v^T) M`, `dS = P (dP - rowsum(P dP))`,
/// `dq = dS k / sqrt(d_h)`, `dk = dS^T q / sqrt(d_h)`.
pub fn attention_backward<E: Element>(
    g: &Tensor<E>,
    q: &Tensor<E>,
    kv: &Tensor<E>,
    probs: &Tensor<E>,
    spec: &AttentionSpec<'_>,
) -> (Tensor<E>, Tensor<E>) {
    let d = q.shape()[1];
    let dh = d / spec.heads;
    let scale = E::from_f64(1.0 / (dh as f64).sqrt());
    let factors = spec.dropout.as_ref().map(|m| dropout_factors(probs, m));
    let dropped = match &factors {
        Some(f) => probs.mul(f),
        None => probs.clone(),
    };
    let (mut dq, mut dkv) = (Vec::new(), Vec::new());
    for b in &spec.blocks() {
        let s = seq_view(q, kv, b, d);
        let g_b = g.narrow(0, b.q_row, b.queries);
        let (mut dq_b, mut dk_b, mut dv_b) = (Vec::new(), Vec::new(), Vec::new());
        for h in 0..spec.heads {
            let (gh, vh) = (head(&g_b, h, dh), head(&s.v, h, dh));
            let p = block_probs(probs, b, h);
            dv_b.push(block_probs(&dropped, b, h).matmul_t(&gh, true, false));
            let mut dp = gh.matmul_t(&vh, false, true);
            if let Some(f) = &factors {
                dp = dp.mul(&block_probs(f, b, h));
            }
            let row_dot = p.mul(&dp).sum_axis(1).reshape(&[b.queries, 1]);
            let ds = p.mul(&dp.sub(&row_dot)).mul_scalar(scale);
            dq_b.push(ds.matmul(&head(&s.k, h, dh)));
            dk_b.push(ds.matmul_t(&head(&s.q, h, dh), true, false));
        }
        let cat = |parts: &[Tensor<E>]| Tensor::concat(&parts.iter().collect::<Vec<_>>(), 1);
        dq.push(cat(&dq_b));
        dkv.push(Tensor::concat(&[&cat(&dk_b), &cat(&dv_b)], 1));
    }
    let rows = |parts: &[Tensor<E>]| Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0);
    (rows(&dq), rows(&dkv))
}

/// MCLRec's pair terms from the similarity matrix `S` `[2n, 2n]` (see
/// [`Tensor::contrastive_pair`]): with `p(r)` row `r`'s partner, `k1 = 1 / 2n`,
/// `k2 = 1 / (2n (2n - 2))`, `pos_r = S[r, p(r)]`, `m_r` the hardest negative (first on
/// ties), `gap_r = relu(pos_r - m_r)`, `hi_r = m_r + gap_r`:
/// InfoNCE `k1 sum_r (logsumexp_{c != r} S[r, c] - pos_r)` and the regulariser
/// `k1 sum_r gap_r + k2 sum_r sum_{negatives c} relu(hi_r - S[r, c])`, with their gradients.
pub fn contrastive_pair<E: Element>(s: &Tensor<E>) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let m = s.shape()[0];
    let n = m / 2;
    let (k1, k2) = (1.0 / m as f64, 1.0 / (m * (m - 2)) as f64);
    let (ek1, ek2) = (E::from_f64(k1), E::from_f64(k2));
    let rows: Vec<usize> = (0..m).collect();
    let partners: Vec<usize> = rows.iter().map(|&r| partner(r, n)).collect();
    let diagonal = one_hot(s, &rows, m);
    let at_partner = one_hot(s, &partners, m);
    let not_negative = diagonal.add(&at_partner);
    // InfoNCE: a log-softmax over every column but the diagonal.
    let off_diagonal = s.masked_fill(&diagonal, E::neg_infinity());
    let log_p = softmax(&off_diagonal, true);
    let nce = -log_p
        .gather(1, &partners, &[m, 1])
        .to_f64s()
        .iter()
        .sum::<f64>();
    let d_nce = log_p.exp().sub(&at_partner).mul_scalar(ek1);
    // The regulariser.
    let pos = s.gather(1, &partners, &[m, 1]);
    let (hard, at) = s.masked_fill(&not_negative, E::neg_infinity()).max_axis(1);
    let hard = hard.reshape(&[m, 1]);
    let margin = pos.sub(&hard);
    let wins = margin.gt_scalar(E::zero());
    let gap = margin.relu();
    let hinge = hard.add(&gap).sub(s);
    let active = hinge
        .gt_scalar(E::zero())
        .masked_fill(&not_negative, E::zero());
    let hinges = hinge.relu().mul(&active).sum_all().item().as_f64();
    let hinge_total = active.sum_axis(1).reshape(&[m, 1]).mul_scalar(ek2);
    // d pos = wins (k1 + k2 #active); d hardest = wins (-k1) + (1 - wins) k2 #active.
    let d_pos = wins.mul(&hinge_total.add_scalar(ek1));
    let d_hard = wins
        .mul_scalar(-ek1)
        .add(&wins.neg().add_scalar(E::one()).mul(&hinge_total));
    let d_reg = active
        .mul_scalar(-ek2)
        .add(&d_pos.scatter_add(1, &partners, &[m, m]))
        .add(&d_hard.scatter_add(1, &at, &[m, m]));
    let gaps = gap.sum_all().item().as_f64();
    let values = vec![E::from_f64(k1 * nce), E::from_f64(k1 * gaps + k2 * hinges)];
    (s.from_vec_like(values, &[2]), d_nce, d_reg)
}

/// The windows `t..t + h` of every `t`, as positions of axis 1: `(positions, windows)`.
fn windows(l: usize, h: usize) -> (Vec<usize>, usize) {
    let steps = l - h + 1;
    ((0..steps).flat_map(|t| t..t + h).collect(), steps)
}

/// [`Tensor::conv_max_pool`] written out: the windows unfolded (`[b steps, h d]`), times the
/// filters, the maximum over the windows, plus the bias.
pub fn conv_max_pool<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    bias: &Tensor<E>,
) -> (Tensor<E>, Vec<usize>) {
    let (b, l, d, n, h) = crate::conv_max_pool::conv_dims(x, w);
    let (rows, steps) = windows(l, h);
    let y = x
        .index_select(1, &rows)
        .reshape(&[b * steps, h * d])
        .matmul_t(&w.reshape(&[n, h * d]), false, true)
        .reshape(&[b, steps, n]);
    let (max, at) = y.max_axis(1);
    (max.add(bias), at)
}

/// The gradients of [`conv_max_pool`]: `g` placed at each maximum's window (`dY`,
/// `[b, steps, n]`), then the products of the unfolded convolution, `dU = dY W` folded
/// back onto the positions (a scatter-add) and `dW = dY^T U`.
pub fn conv_max_pool_backward<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    at: &[usize],
    g: &Tensor<E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let (b, l, d, n, h) = crate::conv_max_pool::conv_dims(x, w);
    let (rows, steps) = windows(l, h);
    let dy = g
        .reshape(&[b, 1, n])
        .scatter_add(1, at, &[b, steps, n])
        .reshape(&[b * steps, n]);
    let unfolded = x.index_select(1, &rows).reshape(&[b * steps, h * d]);
    let w2 = w.reshape(&[n, h * d]);
    let per_element: Vec<usize> = (0..b)
        .flat_map(|_| rows.iter().flat_map(|&r| std::iter::repeat_n(r, d)))
        .collect();
    let dx = dy
        .matmul(&w2)
        .reshape(&[b, steps * h, d])
        .scatter_add(1, &per_element, &[b, l, d]);
    let dw = dy.matmul_t(&unfolded, true, false).reshape(&[n, h, d]);
    (dx, dw, g.sum_axis(0))
}

/// The inverse of the schedule's row order: where each packed row sits in the steps'
/// concatenation.
fn unpack_order(schedule: &GruSchedule) -> Vec<usize> {
    let mut at = vec![0; schedule.step_rows.len()];
    for (i, &row) in schedule.step_rows.iter().enumerate() {
        at[row] = i;
    }
    at
}

/// [`Tensor::gru_recurrence`] written out: per step, the active prefix of the state times
/// `w_hh^T`, the gates, the new state in front of the finished sequences' states.
pub fn gru_recurrence<E: Element>(
    gi: &Tensor<E>,
    w_hh: &Tensor<E>,
    b_hh: Option<&Tensor<E>>,
    layout: &SeqLayout,
) -> (Tensor<E>, Tensor<E>) {
    let h_dim = w_hh.shape()[1];
    let schedule = GruSchedule::new(layout);
    let seqs = layout.len();
    let mut h = gi.full_like(&[seqs, h_dim], E::zero());
    let (mut states, mut saved) = (Vec::new(), Vec::new());
    for t in 0..schedule.steps() {
        let rows = schedule.step(t);
        let active = rows.len();
        let gi_t = gi.index_select(0, rows);
        let h_prev = h.narrow(0, 0, active);
        let mut gh = h_prev.matmul_t(w_hh, false, true);
        if let Some(b) = b_hh {
            gh = gh.add(b);
        }
        let gate = |v: &Tensor<E>, k: usize| v.narrow(1, k * h_dim, h_dim);
        let r = gate(&gi_t, 0).add(&gate(&gh, 0)).sigmoid();
        let z = gate(&gi_t, 1).add(&gate(&gh, 1)).sigmoid();
        let gh_n = gate(&gh, 2);
        let n = gate(&gi_t, 2).add(&r.mul(&gh_n)).tanh();
        let h_new = n.add(&z.mul(&h_prev.sub(&n)));
        saved.push(Tensor::concat(&[&r, &z, &n, &gh_n], 1));
        h = if active == seqs {
            h_new.clone()
        } else {
            Tensor::concat(&[&h_new, &h.narrow(0, active, seqs - active)], 0)
        };
        states.push(h_new);
    }
    let unpack = unpack_order(&schedule);
    let cat = |parts: &[Tensor<E>], width: usize| {
        if parts.is_empty() {
            return gi.full_like(&[0, width], E::zero());
        }
        Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0).index_select(0, &unpack)
    };
    (cat(&states, h_dim), cat(&saved, 4 * h_dim))
}

/// [`Tensor::gru_recurrence_backward`] written out: the steps in reverse, the state's
/// gradient carried in the same prefix layout as the forward's state.
pub fn gru_recurrence_backward<E: Element>(
    g: &Tensor<E>,
    w_hh: &Tensor<E>,
    states: &Tensor<E>,
    saved: &Tensor<E>,
    layout: &SeqLayout,
) -> (Tensor<E>, Tensor<E>) {
    let h_dim = w_hh.shape()[1];
    let schedule = GruSchedule::new(layout);
    let seqs = layout.len();
    let one = E::one();
    let mut dh = g.full_like(&[seqs, h_dim], E::zero());
    let (mut dgi, mut dgh) = (Vec::new(), Vec::new());
    for t in (0..schedule.steps()).rev() {
        let rows = schedule.step(t);
        let active = rows.len();
        let sv = saved.index_select(0, rows);
        let part = |k: usize| sv.narrow(1, k * h_dim, h_dim);
        let (r, z, n, gh_n) = (part(0), part(1), part(2), part(3));
        let h_prev = if t == 0 {
            g.full_like(&[active, h_dim], E::zero())
        } else {
            let prev: Vec<usize> = rows.iter().map(|&row| row - 1).collect();
            states.index_select(0, &prev)
        };
        let d = dh.narrow(0, 0, active).add(&g.index_select(0, rows));
        let dn = d.mul(&z.neg().add_scalar(one));
        let dz = d.mul(&h_prev.sub(&n));
        let da_n = dn.mul(&n.mul(&n).neg().add_scalar(one));
        let da_z = dz.mul(&z).mul(&z.neg().add_scalar(one));
        let da_r = da_n.mul(&gh_n).mul(&r).mul(&r.neg().add_scalar(one));
        let dgh_t = Tensor::concat(&[&da_r, &da_z, &da_n.mul(&r)], 1);
        let d_prev = d.mul(&z).add(&dgh_t.matmul(w_hh));
        dh = if active == seqs {
            d_prev
        } else {
            Tensor::concat(&[&d_prev, &dh.narrow(0, active, seqs - active)], 0)
        };
        dgi.push(Tensor::concat(&[&da_r, &da_z, &da_n], 1));
        dgh.push(dgh_t);
    }
    // The steps were taken in reverse: put them back in forward order, then unpack.
    dgi.reverse();
    dgh.reverse();
    let unpack = unpack_order(&schedule);
    let cat = |parts: &[Tensor<E>]| {
        if parts.is_empty() {
            return g.full_like(&[0, 3 * h_dim], E::zero());
        }
        Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0).index_select(0, &unpack)
    };
    (cat(&dgi), cat(&dgh))
}

/// `out[idx[i]] += src[i]` over rows: `scatter_add` along axis 0 with each row's index
/// repeated across its columns.
pub fn scatter_add_rows<E: Element>(src: &Tensor<E>, idx: &[usize], n_rows: usize) -> Tensor<E> {
    let cols = src.shape()[1];
    let per_element: Vec<usize> = idx
        .iter()
        .flat_map(|&r| std::iter::repeat_n(r, cols))
        .collect();
    src.scatter_add(0, &per_element, &[n_rows, cols])
}

/// The `k` largest of each row, best first (the lower column first on ties), computed on
/// the host: the indices go there anyway.
pub fn topk_rows<E: Element>(x: &Tensor<E>, k: usize) -> (Tensor<E>, Vec<usize>) {
    let n = *x.shape().last().expect("topk_rows needs rank >= 1");
    let data = x.to_vec();
    let (mut vals, mut idx) = (Vec::new(), Vec::new());
    for row in data.chunks(n.max(1)).take(x.numel() / n.max(1)) {
        let mut order: Vec<usize> = (0..n).collect();
        // Stable: equal values keep their column order.
        order.sort_by(|&a, &b| {
            row[b]
                .partial_cmp(&row[a])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        for &c in &order[..k] {
            vals.push(row[c]);
            idx.push(c);
        }
    }
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("rank >= 1") = k;
    (x.from_vec_like(vals, &shape), idx)
}

/// For each row `r`, how many entries exceed `x[r, cols[r]]`, counted on the host.
pub fn count_greater<E: Element>(x: &Tensor<E>, cols: &[usize]) -> Vec<usize> {
    let n = *x.shape().last().expect("count_greater needs rank >= 1");
    let data = x.to_vec();
    data.chunks(n.max(1))
        .zip(cols)
        .map(|(row, &c)| row.iter().filter(|&&v| v > row[c]).count())
        .collect()
}

/// One step of `torch.optim.Adam` on whole tensors: `g' = g + wd p`,
/// `m = b1 m + (1 - b1) g'`, `v = b2 v + (1 - b2) g'^2`,
/// `p -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
pub fn adam_step<E: Element>(
    p: &mut Tensor<E>,
    g: &Tensor<E>,
    m: &mut Tensor<E>,
    v: &mut Tensor<E>,
    h: &AdamParams,
) {
    let e = E::from_f64;
    let g = g.add(&p.mul_scalar(e(h.weight_decay)));
    *m = m
        .mul_scalar(e(h.beta1))
        .add(&g.mul_scalar(e(1.0 - h.beta1)));
    *v = v
        .mul_scalar(e(h.beta2))
        .add(&g.square().mul_scalar(e(1.0 - h.beta2)));
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step as i32);
    let denom = v
        .sqrt()
        .mul_scalar(e(1.0 / bc2.sqrt()))
        .add_scalar(e(h.eps));
    *p = p.sub(&m.mul_scalar(e(h.lr / bc1)).div(&denom));
}
