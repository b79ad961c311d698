//! `nn.GRU` (one layer, `batch_first`) over packed sequences: the input products of every
//! position as one GEMM, then the fused recurrence
//! ([`FusedOps::gru_recurrence`](mclrec_autograd::fused::FusedOps::gru_recurrence)), checked
//! below against the equations run sequence by sequence and by finite differences.
//!
//! With `x_t` the input and `h` the previous state (zero at each sequence's start), as
//! PyTorch (gates stacked `r, z, n` in `weight_ih_l0` / `weight_hh_l0`):
//!
//! ```text
//! r = sigmoid(W_ir x_t + b_ir + W_hr h + b_hr)
//! z = sigmoid(W_iz x_t + b_iz + W_hz h + b_hz)
//! n = tanh(W_in x_t + b_in + r * (W_hn h + b_hn))
//! h' = (1 - z) * n + z * h
//! ```
//!
//! The recurrence runs one step per position over only the sequences still going (sorted
//! longest first, so they are a prefix of the state), as `pack_padded_sequence` does: no
//! step computes padding.

use std::sync::Arc;

use mclrec_autograd::fused::FusedOps;
use mclrec_autograd::{GroupId, ParamId, ParamStore, Var};
use mclrec_tensor::attention::SeqLayout;
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::Bound;

/// One GRU layer.
#[derive(Clone, Debug)]
pub struct Gru {
    /// `weight_ih_l0`: `[3 hidden, input]`.
    pub weight_ih: ParamId,
    /// `weight_hh_l0`: `[3 hidden, hidden]`.
    pub weight_hh: ParamId,
    /// `bias_ih_l0` and `bias_hh_l0` (`[3 hidden]` each), or `None` for `bias=False`
    /// (RecBole's GRU4Rec).
    pub biases: Option<(ParamId, ParamId)>,
    /// Input features.
    pub input: usize,
    /// State width.
    pub hidden: usize,
}

impl Gru {
    /// Adds `{name}.weight_ih_l0`, `{name}.weight_hh_l0` (and with `bias` the two biases)
    /// to `store`: weights Xavier-uniform (RecBole's GRU4Rec `_init_weights`), biases zero.
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        name: &str,
        input: usize,
        hidden: usize,
        bias: bool,
        rng: &mut dyn RngCore,
    ) -> Self {
        let xavier = |rows: usize, cols: usize, rng: &mut dyn RngCore| {
            let a = (6.0 / (rows + cols) as f64).sqrt();
            Tensor::uniform(&[rows, cols], -a, a, rng)
        };
        let weight_ih = store.add(
            &format!("{name}.weight_ih_l0"),
            xavier(3 * hidden, input, rng),
            group,
        );
        let weight_hh = store.add(
            &format!("{name}.weight_hh_l0"),
            xavier(3 * hidden, hidden, rng),
            group,
        );
        let biases = bias.then(|| {
            let b = |which: &str, store: &mut ParamStore<E>| {
                store.add(
                    &format!("{name}.bias_{which}_l0"),
                    Tensor::zeros(&[3 * hidden]),
                    group,
                )
            };
            (b("ih", store), b("hh", store))
        });
        Gru {
            weight_ih,
            weight_hh,
            biases,
            input,
            hidden,
        }
    }

    /// The state after every position of the packed sequences `x` (`[rows, input]`, laid
    /// out as `layout`): `[rows, hidden]`, packed the same way.
    pub fn forward<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        x: Var<'t, E>,
        layout: &Arc<SeqLayout>,
    ) -> Var<'t, E> {
        let gi = match self.biases {
            Some((b, _)) => x.linear(p.get(self.weight_ih), p.get(b)),
            None => x.matmul_t(p.get(self.weight_ih), false, true),
        };
        gi.gru_recurrence(
            p.get(self.weight_hh),
            self.biases.map(|(_, b)| p.get(b)),
            layout,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mclrec_autograd::gradcheck::check_gradients;
    use mclrec_autograd::Tape;
    use mclrec_tensor::ChaCha8Rng;
    use rand::SeedableRng;

    /// Three sequences of lengths 3, 1 and 2, packed.
    fn layout() -> Arc<SeqLayout> {
        Arc::new(SeqLayout::new(vec![0, 3, 4, 6], vec![false; 6]))
    }

    /// The GRU equations run sequence by sequence on plain tensors.
    fn naive(
        x: &[f64],
        wih: &[f64],
        whh: &[f64],
        bih: &[f64],
        bhh: &[f64],
        input: usize,
        h_dim: usize,
    ) -> Vec<f64> {
        let lay = layout();
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let mut out = vec![0.0; lay.rows() * h_dim];
        for s in 0..lay.len() {
            let mut h = vec![0.0; h_dim];
            for row in lay.range(s) {
                let xt = &x[row * input..(row + 1) * input];
                let dot = |w: &[f64], v: &[f64], j: usize, n: usize| -> f64 {
                    (0..n).map(|k| w[j * n + k] * v[k]).sum()
                };
                let gi: Vec<f64> = (0..3 * h_dim)
                    .map(|j| dot(wih, xt, j, input) + bih[j])
                    .collect();
                let gh: Vec<f64> = (0..3 * h_dim)
                    .map(|j| dot(whh, &h, j, h_dim) + bhh[j])
                    .collect();
                let mut next = vec![0.0; h_dim];
                for j in 0..h_dim {
                    let r = sig(gi[j] + gh[j]);
                    let z = sig(gi[h_dim + j] + gh[h_dim + j]);
                    let n = (gi[2 * h_dim + j] + r * gh[2 * h_dim + j]).tanh();
                    next[j] = (1.0 - z) * n + z * h[j];
                }
                h = next;
                out[row * h_dim..(row + 1) * h_dim].copy_from_slice(&h);
            }
        }
        out
    }

    fn model(bias: bool) -> (ParamStore<f64>, Gru) {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut store = ParamStore::new();
        let g = store.group("gru");
        let gru = Gru::new(&mut store, g, "gru", 2, 3, bias, &mut rng);
        if let Some((bi, bh)) = gru.biases {
            // Non-zero biases, so that they are checked too.
            store.get_mut(bi).value = Tensor::uniform(&[9], -0.5, 0.5, &mut rng);
            store.get_mut(bh).value = Tensor::uniform(&[9], -0.5, 0.5, &mut rng);
        }
        (store, gru)
    }

    #[test]
    fn equals_the_equations_sequence_by_sequence() {
        for bias in [true, false] {
            let (store, gru) = model(bias);
            let x = Tensor::<f64>::uniform(&[6, 2], -1.0, 1.0, &mut ChaCha8Rng::seed_from_u64(6));
            let tape = Tape::new();
            let p = Bound::new(&tape, &store, &[]);
            let out = gru.forward(&p, tape.constant(x.clone()), &layout());
            let v = |id| store.value(id).to_f64s();
            let (bih, bhh) = match gru.biases {
                Some((a, b)) => (v(a), v(b)),
                None => (vec![0.0; 9], vec![0.0; 9]),
            };
            let want = naive(
                &x.to_f64s(),
                &v(gru.weight_ih),
                &v(gru.weight_hh),
                &bih,
                &bhh,
                2,
                3,
            );
            let got = out.value().to_f64s();
            assert_eq!((out.shape(), got.len()), (vec![6, 3], want.len()));
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() < 1e-14,
                    "bias {bias}, element {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (store, gru) = model(true);
        let x = Tensor::<f64>::uniform(&[6, 2], -1.0, 1.0, &mut ChaCha8Rng::seed_from_u64(7));
        // The store holds only the GRU's four parameters, ids 0..4 in order: the checked
        // leaves after `x` stand in for them.
        let mut inputs = vec![x];
        inputs.extend(store.iter().map(|(_, p)| p.value.clone()));
        check_gradients(&inputs, |v| {
            let p = Bound::from_vars(v[1..].to_vec());
            // A weighted sum, so that every output's gradient differs.
            let out = gru.forward(&p, v[0], &layout());
            let w = Tensor::uniform(&[6, 3], -1.0, 1.0, &mut ChaCha8Rng::seed_from_u64(8));
            out.mul(v[0].tape().constant(w)).sum_all()
        })
        .unwrap();
    }
}
