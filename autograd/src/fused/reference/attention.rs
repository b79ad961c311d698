//! Multi-head attention (causal or bidirectional) over packed sequences, written with
//! general ops: what
//! [`FusedOps::attention`](crate::fused::FusedOps::attention) computes.

use mclrec_tensor::attention::{QueryRows, SeqLayout};
use mclrec_tensor::dropout_mask::DropoutMask;
use mclrec_tensor::Element;

use crate::Var;

/// The additive mask of a blocked (padding) key: the official code's `-10000`, not
/// `-inf`, so a query whose visible keys are all blocked gets a softmax over its raw scores
/// (every score moves by the same amount) instead of NaN.
const BLOCKED: f64 = -10000.0;

/// Causal multi-head attention of the queries `q` (`[query rows, d]`) over the keys and
/// values `kv` (`[rows, 2d]`, keys in the first `d` columns) of the packed sequences of
/// `layout`, from `narrow`, `reshape`, `permute`, `matmul_t`, `mul_scalar`, `add`,
/// `masked_fill`, `softmax`, `concat`, `dropout_with_mask` and `matmul`.
///
/// Sequence `s` owns the rows `layout.range(s)` of `kv`; its queries are the same rows of
/// `q` ([`QueryRows::All`]) or row `s` alone, the query of its last position
/// ([`QueryRows::Last`]). Per sequence and head `h` (columns `h d_h .. (h + 1) d_h`,
/// `d_h = d / heads`), with `i` a query's position in its sequence and `j` a key's:
///
/// ```text
/// S_ij = q_i . k_j / sqrt(d_h) + (-10000 if key j is blocked, else 0)   for j <= i
/// S_ij = -inf                                                 for j >  i, when causal
/// P_i  = softmax_j(S_i)                       (so P_ij = 0 exactly for future keys)
/// ctx_i = sum_j (P_ij m_ij) v_j
/// ```
///
/// `m` is the dropout mask on the probabilities: the probabilities of all sequences are
/// laid out one sequence after another, each as `[heads, queries, len]` (future keys
/// included, as zeros), and element `e` of that list gets `dropout.factor(e)`, which is how
/// the fused kernel indexes its stored probabilities. The heads of a query are joined back
/// into a row of width `d`, the sequences' rows one after another.
///
/// Future keys are left out of the softmax (`-inf`); only blocked keys get `-10000`. The
/// official code gives future keys `-10000` too; the two agree unless every visible key of
/// a query is blocked, where the official softmax spreads over the sequence's future keys as
/// well and this one (like the fused kernel) over the visible keys only.
///
/// The gradient is whatever autograd makes of these ops; the fused op's hand-written
/// backward must equal it (`fused::attention::tests`).
///
/// # Panics
/// If `d` is not a multiple of `heads` or the shapes do not fit `layout` and `queries`.
pub fn attention<'t, E: Element>(
    q: Var<'t, E>,
    kv: Var<'t, E>,
    layout: &SeqLayout,
    queries: QueryRows,
    causal: bool,
    heads: usize,
    dropout: Option<DropoutMask>,
) -> Var<'t, E> {
    let d = q.shape()[1];
    assert!(
        heads > 0 && d.is_multiple_of(heads),
        "attention: width {d} is not a multiple of {heads} heads"
    );
    assert_eq!(
        q.shape()[0],
        layout.query_rows(queries),
        "attention: query rows"
    );
    assert_eq!(kv.shape(), [layout.rows(), 2 * d], "attention: kv shape");
    let dh = d / heads;
    let like = q.value();
    // [rows, d] -> [heads, rows, dh]: one matrix per head, for batched matmuls.
    let split_heads =
        |x: Var<'t, E>, rows: usize| x.reshape(&[rows, heads, dh]).permute(&[1, 0, 2]);

    // Per sequence: its probabilities (flat) and values, and the shape to restore.
    let mut probs = Vec::with_capacity(layout.len());
    let mut values = Vec::with_capacity(layout.len());
    let mut blocks = Vec::with_capacity(layout.len());
    for s in 0..layout.len() {
        let keys = layout.range(s);
        let len = keys.len();
        let (q_row, nq) = match queries {
            QueryRows::All => (keys.start, len),
            QueryRows::Last => (s, 1),
        };
        // The block's query `i` sits at position `first + i` of the sequence.
        let first = len - nq;
        let qs = split_heads(q.narrow(0, q_row, nq), nq);
        let kvs = kv.narrow(0, keys.start, len);
        let ks = split_heads(kvs.narrow(1, 0, d), len);
        let vs = split_heads(kvs.narrow(1, d, d), len);

        let scale = E::from_f64(1.0 / (dh as f64).sqrt());
        let scores = qs.matmul_t(ks, false, true).mul_scalar(scale); // [heads, nq, len]
        let blocked: Vec<E> = keys
            .clone()
            .map(|t| E::from_f64(if layout.blocked(t) { BLOCKED } else { 0.0 }))
            .collect();
        let scores = scores.add(q.tape().constant(like.from_vec_like(blocked, &[len])));
        let future: Vec<E> = (0..nq * len)
            .map(|e| {
                if causal && e % len > first + e / len {
                    E::one()
                } else {
                    E::zero()
                }
            })
            .collect();
        let future = like.from_vec_like(future, &[nq, len]);
        let p = scores
            .masked_fill(&future, E::from_f64(f64::NEG_INFINITY))
            .softmax();
        probs.push(p.reshape(&[heads * nq * len]));
        values.push(vs);
        blocks.push((nq, len));
    }

    // Dropout on all probabilities at once, so that element `e` of the list gets the mask's
    // factor `e`, as in the kernel.
    let all = Var::concat(&probs, 0);
    let all = match dropout {
        Some(mask) => all.dropout_with_mask(mask),
        None => all,
    };
    let sizes: Vec<usize> = blocks.iter().map(|&(nq, len)| heads * nq * len).collect();
    let ctx: Vec<Var<'t, E>> = all
        .split(0, &sizes)
        .into_iter()
        .zip(values)
        .zip(blocks)
        .map(|((p, vs), (nq, len))| {
            // [heads, nq, len] @ [heads, len, dh] -> [heads, nq, dh] -> [nq, d].
            p.reshape(&[heads, nq, len])
                .matmul(vs)
                .permute(&[1, 0, 2])
                .reshape(&[nq, d])
        })
        .collect();
    Var::concat(&ctx, 0)
}
