//! Checks an op's analytic gradient against central finite differences, in `f64`.
//!
//! The function under test maps input [`Var`]s to an output of any shape; the check
//! contracts the output with fixed pseudo-random weights `w` (so every output element
//! matters with a different weight) and compares `d sum(w * f(x)) / dx` from the tape with
//! `(L(x + h e_i) - L(x - h e_i)) / 2h` for every input element.
//!
//! The error reported for one element is `|analytic - numeric| / max(|analytic|, |numeric|,
//! floor, 1e-3)`: relative for gradients above 1e-3, absolute (to 1e-9 at the tolerance
//! 1e-6) below, so a gradient of 1e-6 that is off by 100 % fails. `floor` is the size at
//! which rounding in the two evaluations of `L` could alone reach the tolerance,
//! `8 eps S / h / TOLERANCE` with `S` the sum of the terms' sizes `|w_i f_i(x)|` (not
//! `|L|`, which may cancel); it matters only for outputs with large terms. The 1e-3 stays
//! because an op's own internal cancellation (a log-sum-exp minus the target's logit) is
//! invisible from its output.
//!
//! ```
//! use mclrec_autograd::{gradcheck::check_gradients, Tape};
//! use mclrec_tensor::Tensor;
//!
//! let x = Tensor::from_f64s(&[0.5, -1.0, 2.0], &[3]);
//! let err = check_gradients(&[x], |v| v[0].exp().mul(v[0])).unwrap();
//! assert!(err < 1e-7);
//! ```
//!
//! A wrong gradient is caught even when it is small. Below, `detach` drops one of the two
//! paths of `x * x`, so the tape's gradient of `0.001 x^2` at `x = 0.001` is half the true
//! `2e-6`: off by under `1e-6`, which an absolute measure at 1e-6 would let through.
//!
//! ```
//! use mclrec_autograd::gradcheck::check_gradients;
//! use mclrec_tensor::Tensor;
//!
//! let x = Tensor::from_f64s(&[0.001], &[1]);
//! assert!(check_gradients(&[x.clone()], |v| v[0].mul(v[0]).mul_scalar(0.001)).is_ok());
//! let half = check_gradients(&[x], |v| v[0].mul(v[0].detach()).mul_scalar(0.001));
//! assert!(half.unwrap_err().contains("analytic 7.44"));
//! ```

use mclrec_tensor::Tensor;

use crate::{Tape, Var};

/// Finite-difference step: balances truncation (`h^2`) against rounding (`eps / h`).
pub const STEP: f64 = 1e-6;

/// The tolerance the project's gradient tests use.
pub const TOLERANCE: f64 = 1e-6;

/// Deterministic weights that contract an output of `n` elements to a scalar.
fn weights(n: usize) -> Vec<f64> {
    (0..n).map(|i| (1.3 * i as f64 + 0.7).sin() + 0.1).collect()
}

/// `L = sum w_i f_i(x)` and the sum of its terms' sizes, `sum |w_i f_i(x)|`.
fn loss_of<F>(inputs: &[Tensor<f64>], f: &F) -> (f64, f64)
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.constant(x.clone())).collect();
    let out = f(&vars).value();
    out.to_vec()
        .iter()
        .zip(weights(out.numel()))
        .fold((0.0, 0.0), |(l, s), (a, w)| (l + a * w, s + (a * w).abs()))
}

/// The gradient size below which rounding in `L(x + h)` and `L(x - h)` (sums of terms of
/// total size `scale`) could alone exceed [`TOLERANCE`] relative to it.
fn noise_floor(scale: f64) -> f64 {
    // A few ulps per term, in each of the two evaluations.
    8.0 * f64::EPSILON * scale.max(f64::MIN_POSITIVE) / STEP / TOLERANCE
}

/// Returns the largest gradient error over all input elements, or a description of the
/// first element whose error exceeds [`TOLERANCE`].
pub fn check_gradients<F>(inputs: &[Tensor<f64>], f: F) -> Result<f64, String>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let out = f(&vars);
    let w = tape.constant(Tensor::from_vec(weights(out.value().numel()), &out.shape()));
    let grads = out.mul(w).sum_all().backward();

    let mut worst = 0.0f64;
    for (k, x) in inputs.iter().enumerate() {
        let analytic = grads
            .get(vars[k])
            .map(|g| g.to_vec())
            .unwrap_or_else(|| vec![0.0; x.numel()]);
        for (i, &a) in analytic.iter().enumerate() {
            let mut plus = inputs.to_vec();
            let mut minus = inputs.to_vec();
            plus[k].as_mut_slice()[i] += STEP;
            minus[k].as_mut_slice()[i] -= STEP;
            let ((lp, sp), (lm, sm)) = (loss_of(&plus, &f), loss_of(&minus, &f));
            let numeric = (lp - lm) / (2.0 * STEP);
            let floor = noise_floor(sp.max(sm));
            let err = (a - numeric).abs() / a.abs().max(numeric.abs()).max(floor).max(1e-3);
            if err.is_nan() || err > TOLERANCE {
                return Err(format!(
                    "input {k} {:?}, element {i}: analytic {a:.10e}, numeric {numeric:.10e}, error {err:.2e}",
                    x.shape()
                ));
            }
            worst = worst.max(err);
        }
    }
    Ok(worst)
}

/// Proptest strategies shared by the gradient tests.
#[cfg(test)]
pub(crate) mod strategies {
    use mclrec_tensor::Tensor;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    /// A tensor with values in `[lo, hi)` from a seed.
    pub fn tensor(shape: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        Tensor::from_vec((0..n).map(|_| rng.gen_range(lo..hi)).collect(), shape)
    }

    /// Values in `[-2, 2)` at least `gap` away from zero (for kinks at 0).
    pub fn away_from_zero(shape: &[usize], seed: u64, gap: f64) -> Tensor<f64> {
        let t = tensor(shape, seed, -2.0, 2.0);
        Tensor::from_vec(
            t.to_vec()
                .into_iter()
                .map(|v| {
                    if v.abs() < gap {
                        v.signum() * gap + v
                    } else {
                        v
                    }
                })
                .collect(),
            shape,
        )
    }

    /// Distinct values (a shuffled ramp with spacing 0.05) so max/min are unique.
    pub fn distinct(shape: &[usize], seed: u64) -> Tensor<f64> {
        let n: usize = shape.iter().product();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut v: Vec<f64> = (0..n).map(|i| -1.0 + 0.05 * i as f64).collect();
        for i in (1..n).rev() {
            v.swap(i, rng.gen_range(0..=i));
        }
        Tensor::from_vec(v, shape)
    }

    /// A shape of rank 1..=`max_rank` with dimensions 1..=4 (size-1 dimensions included).
    pub fn shape(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::vec(1usize..=4, 1..=max_rank)
    }

    /// Two shapes that broadcast: the second drops some leading axes and sets some to 1.
    pub fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, bool)> {
        (
            shape(3),
            proptest::collection::vec(any::<bool>(), 3),
            0usize..3,
            any::<bool>(),
        )
            .prop_map(|(a, ones, drop, swap)| {
                let drop = drop.min(a.len() - 1);
                let b: Vec<usize> = a[drop..]
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| if ones[i] { 1 } else { d })
                    .collect();
                (a, b, swap)
            })
    }
}
