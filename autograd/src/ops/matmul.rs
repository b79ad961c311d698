//! Matrix products, plain and batched, with either operand transposed.
//!
//! For `C = op(A) op(B)` with upstream gradient `G`:
//! `d op(A) = G op(B)^T` and `d op(B) = op(A)^T G`; when an operand is stored transposed
//! the gradient of its storage is the transpose of that, which is again one GEMM with
//! flipped transpose flags (no copies). A 2-d `B` shared by a batch of `A`s gets the sum
//! over the batch. PyTorch: `torch.matmul(a, b)`, `a @ b.T`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct MatmulBackward<E: Element> {
    a: NodeId,
    b: NodeId,
    a_val: Tensor<E>,
    b_val: Tensor<E>,
    ta: bool,
    tb: bool,
}

impl<E: Element> Backward<E> for MatmulBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let (a, b, ta, tb) = (&self.a_val, &self.b_val, self.ta, self.tb);
        if grads.wants(self.a) {
            let ga = if !ta {
                g.matmul_t(b, false, !tb)
            } else if b.rank() == 2 && a.rank() > 2 {
                // A batch of transposed A against one shared B: (G op(B)^T)^T per matrix.
                let r = a.rank();
                g.matmul_t(b, false, !tb).transpose(r - 2, r - 1)
            } else {
                b.matmul_t(g, tb, true)
            };
            grads.add(self.a, ga);
        }
        if grads.wants(self.b) {
            let gb = if b.rank() == 2 && a.rank() > 2 && !ta {
                // Shared B: fold the batch into the rows of A and G, one GEMM.
                let k = a.shape()[a.rank() - 1];
                let n = g.shape()[g.rank() - 1];
                let a2 = a.reshape(&[a.numel() / k, k]);
                let g2 = g.reshape(&[g.numel() / n, n]);
                if tb {
                    g2.matmul_t(&a2, true, false)
                } else {
                    a2.matmul_t(&g2, true, false)
                }
            } else {
                let gb = if tb {
                    g.matmul_t(a, true, ta)
                } else {
                    a.matmul_t(g, !ta, false)
                };
                gb.sum_to_shape(b.shape())
            };
            grads.add(self.b, gb);
        }
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// `self @ other`: `[m, k] @ [k, n]`, or batched `[.., m, k] @ [.., k, n]` / `@ [k, n]`.
    pub fn matmul(self, other: Var<'t, E>) -> Var<'t, E> {
        self.matmul_t(other, false, false)
    }

    /// `op(self) @ op(other)`, where `op` transposes the last two axes when its flag is set
    /// (a stride change, never a copy). `x.matmul_t(w, false, true)` is `x @ w^T`, the
    /// PyTorch `Linear` product.
    pub fn matmul_t(self, other: Var<'t, E>, trans_a: bool, trans_b: bool) -> Var<'t, E> {
        let (a_val, b_val) = (self.value(), other.value());
        let y = a_val.matmul_t(&b_val, trans_a, trans_b);
        self.tape.record("matmul", y, &[self, other], || {
            Box::new(MatmulBackward {
                a: self.node(),
                b: other.node(),
                a_val,
                b_val,
                ta: trans_a,
                tb: trans_b,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::tensor;
    use proptest::prelude::*;

    fn dims(m: usize, k: usize, ta: bool) -> Vec<usize> {
        if ta {
            vec![k, m]
        } else {
            vec![m, k]
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn grad_matmul_2d(m in 1usize..5, k in 1usize..5, n in 1usize..5, ta: bool, tb: bool, seed in 0u64..1000) {
            let a = tensor(&dims(m, k, ta), seed, -2.0, 2.0);
            let b = tensor(&dims(k, n, tb), seed + 7, -2.0, 2.0);
            check_gradients(&[a, b], |v| v[0].matmul_t(v[1], ta, tb)).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_matmul_batched(bt in 1usize..4, m in 1usize..4, k in 1usize..4, n in 1usize..4, ta: bool, tb: bool, seed in 0u64..1000) {
            let mut sa = vec![bt]; sa.extend(dims(m, k, ta));
            let mut sb = vec![bt]; sb.extend(dims(k, n, tb));
            let (a, b) = (tensor(&sa, seed, -2.0, 2.0), tensor(&sb, seed + 3, -2.0, 2.0));
            check_gradients(&[a, b], |v| v[0].matmul_t(v[1], ta, tb)).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_matmul_shared_rhs(bt in 1usize..4, m in 1usize..4, k in 1usize..4, n in 1usize..4, ta: bool, tb: bool, seed in 0u64..1000) {
            let mut sa = vec![bt, 2]; sa.extend(dims(m, k, ta));
            let (a, b) = (tensor(&sa, seed, -2.0, 2.0), tensor(&dims(k, n, tb), seed + 5, -2.0, 2.0));
            check_gradients(&[a, b], |v| v[0].matmul_t(v[1], ta, tb)).map_err(TestCaseError::fail)?;
        }
    }
}
