//! Test support: two implementations of one function give the same values and the same
//! gradients (a fused op against its reference in general ops, a kernel-backed op against
//! its definition).

use mclrec_tensor::Tensor;

use crate::{Tape, Var};

/// Fixed weights that contract an output of `n` elements to a scalar, so that every output
/// element reaches the gradients with its own weight.
fn weights(n: usize) -> Vec<f64> {
    (0..n).map(|i| (0.9 * i as f64 + 0.4).cos() + 0.2).collect()
}

/// `[f(inputs), d sum(w f) / d input_0, d sum(w f) / d input_1, ...]`, the inputs bound as
/// leaves of a fresh tape.
pub fn values_and_gradients<F>(inputs: &[Tensor<f64>], f: F) -> Vec<Vec<f64>>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let tape = Tape::new();
    let vars: Vec<Var<'_, f64>> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
    let y = f(&vars);
    let value = y.value();
    let w = tape.constant(Tensor::from_vec(weights(value.numel()), value.shape()));
    let grads = y.mul(w).sum_all().backward();
    let mut out = vec![value.to_vec()];
    for v in &vars {
        out.push(
            grads
                .get(*v)
                .map_or(vec![0.0; v.value().numel()], |g| g.to_vec()),
        );
    }
    out
}

/// The worst relative difference between `a` and `b`, element by element:
/// `|a_i - b_i| / max(|a_i|, |b_i|, 1e-3 max_j |b_j|, 1)`: relative above 1, absolute
/// below. The floors keep an element that is small by cancellation (a gradient summed from
/// terms of both signs, a log-sum-exp minus the target's score) from counting the rounding
/// of its terms, which are larger than it, as a large relative error.
pub fn worst_relative_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "different lengths");
    let scale = (b.iter().fold(0.0f64, |m, v| m.max(v.abs())) * 1e-3).max(1.0);
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = (x - y).abs();
            if d == 0.0 {
                0.0
            } else {
                d / x.abs().max(y.abs()).max(scale)
            }
        })
        .fold(0.0, f64::max)
}

/// Checks that `f` and `g` give the same values and gradients at `inputs` to `tol`
/// (relative, see [`worst_relative_difference`]); the error names what differs.
pub fn agree<F, G>(inputs: &[Tensor<f64>], f: F, g: G, tol: f64) -> Result<(), String>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
    G: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let (a, b) = (
        values_and_gradients(inputs, f),
        values_and_gradients(inputs, g),
    );
    for (k, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            x.iter().chain(y).all(|v| v.is_finite()),
            "non-finite values"
        );
        let what = if k == 0 {
            "values".to_string()
        } else {
            format!("gradient of input {}", k - 1)
        };
        let err = worst_relative_difference(x, y);
        if err > tol {
            return Err(format!(
                "{what} differ by {err:e} (relative):\n{x:?}\n{y:?}"
            ));
        }
    }
    Ok(())
}
