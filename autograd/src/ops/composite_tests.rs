//! Gradient properties of whole small models built from the ops.

use mclrec_tensor::Tensor;
use proptest::prelude::*;

use crate::gradcheck::check_gradients;
use crate::gradcheck::strategies::tensor;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// `CE(W2 gelu(W1 x + b1) + b2, t)` with respect to every weight and the input.
    #[test]
    fn grad_two_layer_mlp_cross_entropy(n in 1usize..5, d in 1usize..5, h in 1usize..6, c in 2usize..5, seed in 0u64..1000) {
        let targets: Vec<usize> = (0..n).map(|i| (i * 7 + seed as usize) % c).collect();
        let inputs = [
            tensor(&[n, d], seed, -2.0, 2.0),
            tensor(&[h, d], seed + 1, -1.0, 1.0),
            tensor(&[h], seed + 2, -0.5, 0.5),
            tensor(&[c, h], seed + 3, -1.0, 1.0),
            tensor(&[c], seed + 4, -0.5, 0.5),
        ];
        check_gradients(&inputs, |v| {
            let hid = v[0].matmul_t(v[1], false, true).add(v[2]).gelu();
            hid.matmul_t(v[3], false, true).add(v[4]).cross_entropy(&targets)
        }).map_err(TestCaseError::fail)?;
    }

    /// One causal self-attention block with two heads, a residual and layer norm, as in
    /// SASRec: `LN(x + softmax(QK^T/sqrt(dh) + mask) V W_o)`.
    #[test]
    fn grad_causal_self_attention_block(b in 1usize..3, l in 1usize..5, seed in 0u64..1000) {
        let (d, heads) = (4usize, 2usize);
        let dh = d / heads;
        let mut mask = vec![0.0; l * l];
        for q in 0..l { for k in 0..l { if k > q { mask[q * l + k] = 1.0; } } }
        let mask = Tensor::from_vec(mask, &[l, l]);
        let inputs = [
            tensor(&[b, l, d], seed, -1.0, 1.0),
            tensor(&[d, d], seed + 1, -0.7, 0.7),
            tensor(&[d, d], seed + 2, -0.7, 0.7),
            tensor(&[d, d], seed + 3, -0.7, 0.7),
            tensor(&[d, d], seed + 4, -0.7, 0.7),
            tensor(&[d], seed + 5, 0.5, 1.5),
            tensor(&[d], seed + 6, -0.5, 0.5),
        ];
        check_gradients(&inputs, |v| {
            let x = v[0];
            fn split(t: crate::Var<'_, f64>, b: usize, l: usize, heads: usize, dh: usize) -> crate::Var<'_, f64> {
                t.reshape(&[b, l, heads, dh]).permute(&[0, 2, 1, 3]).reshape(&[b * heads, l, dh])
            }
            let q = split(x.matmul_t(v[1], false, true), b, l, heads, dh);
            let k = split(x.matmul_t(v[2], false, true), b, l, heads, dh);
            let val = split(x.matmul_t(v[3], false, true), b, l, heads, dh);
            let scores = q.matmul_t(k, false, true).mul_scalar(1.0 / (dh as f64).sqrt()).masked_fill(&mask, -10000.0);
            let ctx = scores.softmax().matmul(val).reshape(&[b, heads, l, dh]).permute(&[0, 2, 1, 3]).reshape(&[b, l, d]);
            (x + ctx.matmul_t(v[4], false, true)).layer_norm(v[5], v[6], 1e-12)
        }).map_err(TestCaseError::fail)?;
    }
}
