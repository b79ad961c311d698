//! A linear layer as one op: `y = x W^T + b`, PyTorch's `nn.Linear` (`W` stored
//! `[out, in]`).
//!
//! With upstream gradient `G` (`[m, out]`): `dx = G W`, `dW = G^T x`, `db = sum over rows of
//! G`: the gradients `x.matmul_t(w, false, true).add(b)` would give, computed by the same
//! calls, so the same bits. One op instead of two saves the forward's second pass over
//! the output (the CPU adds `b` as it stores each tile of the product) and a tape node.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct LinearBackward<E: Element> {
    x: (NodeId, Tensor<E>),
    w: (NodeId, Tensor<E>),
    b: NodeId,
}

impl<E: Element> Backward<E> for LinearBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let ((x_id, x), (w_id, w)) = (&self.x, &self.w);
        if grads.wants(self.b) {
            grads.add(self.b, g.sum_to_shape(&[w.shape()[0]]));
        }
        if grads.wants(*x_id) {
            grads.add(*x_id, g.matmul_t(w, false, false));
        }
        if grads.wants(*w_id) {
            grads.add(*w_id, g.matmul_t(x, true, false));
        }
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// `self w^T + b` for `self`: `[m, in]`, `w`: `[out, in]`, `b`: `[out]`; the same
    /// numbers as `self.matmul_t(w, false, true).add(b)`.
    ///
    /// ```
    /// use mclrec_autograd::Tape;
    /// use mclrec_tensor::Tensor;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_f64s(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    /// let w = tape.leaf(Tensor::from_f64s(&[1.0, -1.0, 0.5, 0.5, 2.0, 0.0], &[3, 2]));
    /// let b = tape.leaf(Tensor::from_f64s(&[0.1, 0.2, 0.3], &[3]));
    /// let y = x.linear(w, b);
    /// assert_eq!(y.value().to_vec(), x.matmul_t(w, false, true).add(b).value().to_vec());
    /// let grads = y.sum_all().backward();
    /// assert_eq!(grads.get(b).unwrap().to_vec(), vec![2.0, 2.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// If the shapes disagree.
    pub fn linear(self, w: Var<'t, E>, b: Var<'t, E>) -> Var<'t, E> {
        let (x_value, w_value) = (self.value(), w.value());
        let y = x_value.linear(&w_value, &b.value());
        self.tape.record("linear", y, &[self, w, b], || {
            Box::new(LinearBackward {
                x: (self.node(), x_value),
                w: (w.node(), w_value),
                b: b.node(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::tensor;
    use crate::Tape;
    use mclrec_tensor::Tensor;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn grad_linear(m in 1usize..6, k in 1usize..5, n in 1usize..5, seed in 0u64..1000) {
            check_gradients(
                &[tensor(&[m, k], seed, -2.0, 2.0), tensor(&[n, k], seed + 1, -2.0, 2.0), tensor(&[n], seed + 2, -1.0, 1.0)],
                |v| {
                    let y = v[0].linear(v[1], v[2]);
                    y.mul(y).sum_all()
                },
            ).map_err(TestCaseError::fail)?;
        }
    }

    /// In `f32` at the encoder's widths the CPU adds the bias inside the GEMM tile: the
    /// output and all three gradients must still be the bits of the two unfused ops.
    #[test]
    fn gives_the_bits_of_matmul_then_add() {
        for (m, k, n) in [(37, 64, 64), (301, 64, 256), (5, 256, 64), (7, 3, 5)] {
            let val = |i: usize, s: f64| ((i as f64 * 0.61 + s).sin() * 1.7) as f32;
            let x = Tensor::<f32>::from_vec((0..m * k).map(|i| val(i, 0.3)).collect(), &[m, k]);
            let w = Tensor::from_vec((0..n * k).map(|i| val(i, 1.1)).collect(), &[n, k]);
            let b = Tensor::from_vec((0..n).map(|i| val(i, 2.9)).collect(), &[n]);
            let g = Tensor::from_vec((0..m * n).map(|i| val(i, 4.2)).collect(), &[m, n]);
            let run = |fused: bool| {
                let tape = Tape::<f32>::new();
                let (xv, wv, bv) = (
                    tape.leaf(x.clone()),
                    tape.leaf(w.clone()),
                    tape.leaf(b.clone()),
                );
                let y = if fused {
                    xv.linear(wv, bv)
                } else {
                    xv.matmul_t(wv, false, true).add(bv)
                };
                let grads = y.mul(tape.constant(g.clone())).sum_all().backward();
                let bits =
                    |t: &Tensor<f32>| t.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
                [
                    bits(&y.value()),
                    bits(grads.get(xv).unwrap()),
                    bits(grads.get(wv).unwrap()),
                    bits(grads.get(bv).unwrap()),
                ]
            };
            assert_eq!(run(true), run(false), "m={m} k={k} n={n}");
        }
    }
}
