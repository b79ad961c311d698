//! Embedding lookup: rows of a table by index.
//!
//! `y[i] = table[idx[i]]`; `dtable[r] = sum of g[i] over i with idx[i] = r` (a scatter-add),
//! except for the padding row, which receives nothing from lookups. The output has shape
//! `index_shape + [dim]`. PyTorch: `nn.Embedding(n, d, padding_idx=0)`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct EmbeddingBackward {
    table: NodeId,
    /// The looked-up rows, except lookups of the padding row, which pass no gradient.
    idx: Vec<usize>,
    /// Where those lookups sit among all of them, when some were dropped.
    kept: Option<Vec<usize>>,
    rows: usize,
}

impl<E: Element> Backward<E> for EmbeddingBackward {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let d = g.shape()[g.rank() - 1];
        let g2 = g.reshape(&[g.numel().checked_div(d).unwrap_or(0), d]);
        // Dropping the padding lookups before the scatter (rather than zeroing the padding
        // row after it) keeps the whole pass on the tensor's device.
        match &self.kept {
            None => grads.add_rows(self.table, &g2, &self.idx, self.rows),
            Some(pos) => grads.add_rows(self.table, &g2.gather_rows(pos), &self.idx, self.rows),
        }
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// Looks up rows of `self` (a `[rows, dim]` table) for `idx` laid out as `index_shape`;
    /// lookups of `padding_idx` pass no gradient to the table.
    pub fn embedding(
        self,
        idx: &[usize],
        index_shape: &[usize],
        padding_idx: Option<usize>,
    ) -> Var<'t, E> {
        let table = self.value();
        let (rows, d) = (table.shape()[0], table.shape()[1]);
        let mut shape = index_shape.to_vec();
        shape.push(d);
        let y = table.gather_rows(idx).reshape(&shape);
        self.tape.record("embedding", y, &[self], || {
            let (idx, kept) = match padding_idx {
                Some(p) if idx.contains(&p) => {
                    let pos: Vec<usize> = (0..idx.len()).filter(|&i| idx[i] != p).collect();
                    (pos.iter().map(|&i| idx[i]).collect(), Some(pos))
                }
                _ => (idx.to_vec(), None),
            };
            Box::new(EmbeddingBackward {
                table: self.node(),
                idx,
                kept,
                rows,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::tensor;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn grad_embedding(rows in 1usize..6, d in 1usize..4, picks in proptest::collection::vec(0usize..100, 1..8), pad: bool, seed in 0u64..1000) {
            let idx: Vec<usize> = picks.iter().map(|p| p % rows).collect();
            let n = idx.len();
            let padding = if pad { Some(0) } else { None };
            let out = check_gradients(&[tensor(&[rows, d], seed, -2.0, 2.0)], |v| {
                // The padding row's lookups are cut off from the gradient: mask them out of
                // the function too, so the finite differences see the same thing.
                let e = v[0].embedding(&idx, &[n], padding);
                match padding {
                    Some(p) => {
                        let keep: Vec<f64> = idx.iter().map(|&i| if i == p { 0.0 } else { 1.0 }).collect();
                        e * v[0].tape().constant(mclrec_tensor::Tensor::from_vec(keep, &[n, 1]))
                    }
                    None => e,
                }
            });
            out.map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn padding_lookups_pass_no_gradient() {
        let tape = crate::Tape::<f64>::new();
        let t = tape.leaf(mclrec_tensor::Tensor::ones(&[3, 2]));
        let g = t.embedding(&[0, 2, 0], &[3], Some(0)).sum_all().backward();
        assert_eq!(
            g.get(t).unwrap().to_vec(),
            vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
        );
    }
}
