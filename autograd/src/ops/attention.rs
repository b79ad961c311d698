//! Fused causal multi-head attention over packed sequences (see
//! [`mclrec_tensor::attention`]).
//!
//! Forward, per sequence and head: `P = softmax(q k^T / sqrt(d_h) + mask)`,
//! `ctx = (P * m) v` with `m` the dropout mask. Backward, with `g` the context gradient:
//! `dv = (P * m)^T g`, `dP = (g v^T) * m`, `dS = P * (dP - rowsum(P * dP))`,
//! `dq = dS k / sqrt(d_h)`, `dk = dS^T q / sqrt(d_h)`. PyTorch: the manual attention of
//! RecBole's `MultiHeadAttention`, one call instead of permutes, two batched matmuls, a
//! mask add, a softmax and a dropout.

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
}

impl<E: Element> Backward<E> for AttentionBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let spec = AttentionSpec {
            layout: &self.layout,
            queries: self.queries,
            heads: self.heads,
            dropout: self.dropout,
        };
        let (dq, dkv) = g.attention_backward(&self.q_val, &self.kv_val, &self.probs, &spec);
        grads.add(self.q, dq);
        grads.add(self.kv, dkv);
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// Causal multi-head attention of the queries `self` (`[query rows, d]`) over the keys
    /// and values `kv` (`[rows, 2d]`, keys first) of the packed sequences of `layout`;
    /// `dropout` is applied to the attention probabilities.
    pub fn attention(
        self,
        kv: Var<'t, E>,
        layout: &Arc<SeqLayout>,
        queries: QueryRows,
        heads: usize,
        dropout: Option<DropoutMask>,
    ) -> Var<'t, E> {
        let spec = AttentionSpec {
            layout,
            queries,
            heads,
            dropout,
        };
        let (q_val, kv_val) = (self.value(), kv.value());
        let (ctx, probs) = q_val.attention(&kv_val, &spec);
        self.tape.record("attention", ctx, &[self, kv], || {
            Box::new(AttentionBackward {
                q: self.node(),
                kv: kv.node(),
                q_val,
                kv_val,
                probs,
                layout: Arc::clone(layout),
                queries,
                heads,
                dropout,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            let got = tape.constant(q.clone()).attention(tape.constant(kv.clone()), &l, queries, heads, None).value().to_vec();
            let want = unfused(&q.to_vec(), &kv.to_vec(), &l, last, heads, d);
            for (a, b) in got.iter().zip(&want) {
                prop_assert!((a - b).abs() < 1e-12, "fused {a} unfused {b}");
            }
        }

        #[test]
        fn grad_attention(
            lens in proptest::collection::vec(1usize..6, 1..4),
            heads in 1usize..3, dh in 1usize..4, last in any::<bool>(),
            drop in any::<bool>(), seed in 0u64..1000,
        ) {
            let d = heads * dh;
            let l = layout(&lens, |t| t % 4 == 1);
            let qn = if last { l.len() } else { l.rows() };
            let q = tensor(&[qn, d], seed, -1.5, 1.5);
            let kv = tensor(&[l.rows(), 2 * d], seed + 1, -1.5, 1.5);
            let queries = if last { QueryRows::Last } else { QueryRows::All };
            let dropout = drop.then(|| DropoutMask::new(0.3, seed));
            check_gradients(&[q, kv], |v| v[0].attention(v[1], &l, queries, heads, dropout))
                .map_err(TestCaseError::fail)?;
        }
    }
}
