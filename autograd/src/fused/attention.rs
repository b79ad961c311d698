//! Fused multi-head attention (causal or bidirectional) over packed sequences: one tape node whose forward and
//! backward are the tensor kernels of [`mclrec_tensor::attention`]. The maths is in
//! [`FusedOps::attention`](super::FusedOps::attention); the same op in general ops is
//! [`reference::attention`](super::reference::attention).
//!
//! Forward, per sequence and head: `P = softmax(q k^T / sqrt(d_h) + mask)`,
//! `ctx = (P * m) v` with `m` the dropout mask. Backward, with `g` the context gradient:
//! `dv = (P * m)^T g`, `dP = (g v^T) * m`, `dS = P * (dP - rowsum(P * dP))`,
//! `dq = dS k / sqrt(d_h)`, `dk = dS^T q / sqrt(d_h)`. One call instead of permutes, two
//! batched matmuls per sequence, a mask add, a softmax and a dropout; the kernel keeps only
//! the probabilities for the backward.

use std::sync::Arc;

use mclrec_tensor::attention::{AttentionSpec, QueryRows, SeqLayout};
use mclrec_tensor::dropout_mask::DropoutMask;
use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct AttentionBackward<E: Element> {
    q: NodeId,
    kv: NodeId,
    q_val: Tensor<E>,
    kv_val: Tensor<E>,
    probs: Tensor<E>,
    layout: Arc<SeqLayout>,
    queries: QueryRows,
    heads: usize,
    dropout: Option<DropoutMask>,
    causal: bool,
}

impl<E: Element> Backward<E> for AttentionBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let spec = AttentionSpec {
            layout: &self.layout,
            queries: self.queries,
            heads: self.heads,
            dropout: self.dropout,
            causal: self.causal,
        };
        let (dq, dkv) = g.attention_backward(&self.q_val, &self.kv_val, &self.probs, &spec);
        grads.add(self.q, dq);
        grads.add(self.kv, dkv);
    }
}

/// [`FusedOps::attention`](super::FusedOps::attention): the kernel's forward, and a
/// backward that keeps what the kernel's backward needs (the inputs and the probabilities).
pub(super) fn attention<'t, E: Element>(
    q: Var<'t, E>,
    kv: Var<'t, E>,
    layout: &Arc<SeqLayout>,
    queries: QueryRows,
    causal: bool,
    heads: usize,
    dropout: Option<DropoutMask>,
) -> Var<'t, E> {
    let spec = AttentionSpec {
        layout,
        queries,
        heads,
        dropout,
        causal,
    };
    let (q_val, kv_val) = (q.value(), kv.value());
    let (ctx, probs) = q_val.attention(&kv_val, &spec);
    q.tape().record("attention", ctx, &[q, kv], || {
        Box::new(AttentionBackward {
            q: q.node(),
            kv: kv.node(),
            q_val,
            kv_val,
            probs,
            layout: Arc::clone(layout),
            queries,
            heads,
            dropout,
            causal,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::agree;
    use crate::fused::{reference, FusedOps};
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::tensor;
    use crate::Tape;
    use proptest::prelude::*;

    /// A layout of sequences with the given lengths; keys blocked where `blocked(t)`.
    fn layout(lens: &[usize], blocked: impl Fn(usize) -> bool) -> Arc<SeqLayout> {
        let mut offsets = vec![0];
        for &l in lens {
            offsets.push(offsets.last().unwrap() + l);
        }
        let rows = *offsets.last().unwrap();
        Arc::new(SeqLayout::new(offsets, (0..rows).map(blocked).collect()))
    }

    /// `fused` against [`reference::attention`](crate::fused::reference::attention) at
    /// random queries and keys: values and both gradients.
    fn fused_equals_reference(
        l: &Arc<SeqLayout>,
        queries: QueryRows,
        causal: bool,
        heads: usize,
        dh: usize,
        dropout: Option<DropoutMask>,
        seed: u64,
    ) -> Result<(), String> {
        let d = heads * dh;
        let q = tensor(&[l.query_rows(queries), d], seed, -2.0, 2.0);
        let kv = tensor(&[l.rows(), 2 * d], seed + 1, -2.0, 2.0);
        agree(
            &[q, kv],
            |v| v[0].attention(v[1], l, queries, causal, heads, dropout),
            |v| reference::attention(v[0], v[1], l, queries, causal, heads, dropout),
            TOL,
        )
    }

    /// How close fused and reference must be: 1e-12, but a blocked key's score `x - 10000`
    /// is rounded to a grid of 1.8e-12, and the two score sums `x`, one rounding apart, can
    /// (rarely) land on neighbouring points; a probability then moves by up to that much.
    const TOL: f64 = 1e-11;

    #[test]
    fn equals_the_reference_on_the_edge_cases() {
        // Lengths 1, 4, 1, 3 (rows 0 | 1..5 | 5 | 6..9). Blocked: the length-1 sequence's
        // only key (row 0), the first and third keys of the second (rows 1, 3), the first two
        // of the last (rows 6, 7). So the queries at rows 0, 1, 6 and 7 see only blocked keys;
        // the length-1 sequence at row 5 sees only itself.
        let blocked = [0, 1, 3, 6, 7];
        let l = layout(&[1, 4, 1, 3], |t| blocked.contains(&t));
        for (queries, causal) in [
            (QueryRows::All, true),
            (QueryRows::Last, true),
            (QueryRows::All, false),
            (QueryRows::Last, false),
        ] {
            for dropout in [None, Some(DropoutMask::new(0.4, 17))] {
                for seed in [1, 2, 3] {
                    fused_equals_reference(&l, queries, causal, 2, 3, dropout, seed)
                        .map_err(|e| format!("{queries:?} {dropout:?} seed {seed}: {e}"))
                        .unwrap();
                }
            }
        }
    }

    #[test]
    fn a_query_whose_visible_keys_are_all_blocked_attends_by_its_raw_scores() {
        // The kernel adds -10000 to every visible key and none to future ones (they are not
        // in its softmax at all), so blocking all of a sequence changes nothing: the softmax
        // is shift-invariant.
        let (open, shut) = (layout(&[3, 2], |_| false), layout(&[3, 2], |_| true));
        let q = tensor(&[5, 4], 7, -2.0, 2.0);
        let kv = tensor(&[5, 8], 8, -2.0, 2.0);
        let tape = Tape::<f64>::new();
        let (q, kv) = (tape.constant(q), tape.constant(kv));
        let a = q
            .attention(kv, &open, QueryRows::All, true, 2, None)
            .value()
            .to_vec();
        let b = q
            .attention(kv, &shut, QueryRows::All, true, 2, None)
            .value()
            .to_vec();
        // Every score of `shut` is rounded at the size of 10^4 (to 1e-12): 1e-10.
        assert!(
            crate::agreement::worst_relative_difference(&b, &a) < 1e-10,
            "{a:?} {b:?}"
        );
    }

    /// The same attention written out with padded per-sequence tensors and the generic
    /// ops (matmul, mask add, softmax, matmul): what the fused op must equal.
    fn unfused(
        q: &[f64],
        kv: &[f64],
        l: &SeqLayout,
        last: bool,
        heads: usize,
        d: usize,
    ) -> Vec<f64> {
        let dh = d / heads;
        let mut out = Vec::new();
        for s in 0..l.len() {
            let r = l.range(s);
            let queries: Vec<usize> = if last {
                vec![r.len() - 1]
            } else {
                (0..r.len()).collect()
            };
            for (qi, &pos) in queries.iter().enumerate() {
                let q_row = if last { s } else { r.start + qi };
                for h in 0..heads {
                    let scores: Vec<f64> = (0..r.len())
                        .map(|j| {
                            let t = r.start + j;
                            let dot: f64 = (0..dh)
                                .map(|c| q[q_row * d + h * dh + c] * kv[t * 2 * d + h * dh + c])
                                .sum();
                            let mask = if j > pos || l.blocked(t) {
                                -10000.0
                            } else {
                                0.0
                            };
                            dot / (dh as f64).sqrt() + mask
                        })
                        .collect();
                    // Official semantics include the future keys at -10000; they vanish
                    // unless every visible key is blocked, which these inputs avoid.
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for c in 0..dh {
                        out.push(
                            (0..r.len())
                                .map(|j| e[j] / z * kv[(r.start + j) * 2 * d + d + h * dh + c])
                                .sum(),
                        );
                    }
                }
            }
        }
        // Reorder from (row, head, c) to rows of width d: already in that order.
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn attention_equals_the_unfused_ops(
            lens in proptest::collection::vec(1usize..7, 1..4),
            heads in 1usize..3, dh in 1usize..4, last in any::<bool>(), seed in 0u64..1000,
        ) {
            let d = heads * dh;
            // Block every third key, never a sequence's first (so no query sees only blocked keys).
            let starts: Vec<usize> = lens.iter().scan(0, |a, &l| { let s = *a; *a += l; Some(s) }).collect();
            let l = layout(&lens, |t| t % 3 == 2 && !starts.contains(&t));
            let rows = l.rows();
            let qn = if last { l.len() } else { rows };
            let q = tensor(&[qn, d], seed, -2.0, 2.0);
            let kv = tensor(&[rows, 2 * d], seed + 1, -2.0, 2.0);
            let queries = if last { QueryRows::Last } else { QueryRows::All };
            let tape = Tape::<f64>::new();
            let got = tape.constant(q.clone()).attention(tape.constant(kv.clone()), &l, queries, true, heads, None).value().to_vec();
            let want = unfused(&q.to_vec(), &kv.to_vec(), &l, last, heads, d);
            for (a, b) in got.iter().zip(&want) {
                prop_assert!((a - b).abs() < 1e-12, "fused {a} unfused {b}");
            }
        }

        #[test]
        fn equals_the_reference_on_random_packed_batches(
            lens in proptest::collection::vec(1usize..7, 1..5),
            blocked in proptest::collection::vec(any::<bool>(), 30),
            heads in 1usize..3, dh in 1usize..4, last in any::<bool>(),
            drop in any::<bool>(), causal in any::<bool>(), seed in 0u64..1000,
        ) {
            // Any key may be blocked, a sequence's first included: some queries see only
            // blocked keys.
            let l = layout(&lens, |t| blocked[t]);
            let queries = if last { QueryRows::Last } else { QueryRows::All };
            let dropout = drop.then(|| DropoutMask::new(0.3, seed));
            fused_equals_reference(&l, queries, causal, heads, dh, dropout, seed)
                .map_err(TestCaseError::fail)?;
        }

        #[test]
        fn grad_attention(
            lens in proptest::collection::vec(1usize..6, 1..4),
            heads in 1usize..3, dh in 1usize..4, last in any::<bool>(),
            drop in any::<bool>(), causal in any::<bool>(), seed in 0u64..1000,
        ) {
            let d = heads * dh;
            let l = layout(&lens, |t| t % 4 == 1);
            let qn = if last { l.len() } else { l.rows() };
            let q = tensor(&[qn, d], seed, -1.5, 1.5);
            let kv = tensor(&[l.rows(), 2 * d], seed + 1, -1.5, 1.5);
            let queries = if last { QueryRows::Last } else { QueryRows::All };
            let dropout = drop.then(|| DropoutMask::new(0.3, seed));
            check_gradients(&[q, kv], |v| v[0].attention(v[1], &l, queries, causal, heads, dropout))
                .map_err(TestCaseError::fail)?;
        }
    }
}
