//! Checking a gradient by finite differences: the test every op of this crate has.
//!
//! `softplus(x) = ln(1 + e^x)` is written here from `exp`, `add_scalar` and `ln`; its
//! gradient is `sigmoid(x)`. `check_gradients` compares the tape's gradient with
//! `(L(x + h) - L(x - h)) / 2h` for every element, in f64.
//!
//! Run with `cargo run -p mclrec-autograd --example 03_gradcheck`.

use mclrec_autograd::gradcheck::{check_gradients, TOLERANCE};
use mclrec_autograd::{Tape, Var};
use mclrec_tensor::Tensor;

fn softplus<'t>(x: Var<'t, f64>) -> Var<'t, f64> {
    x.exp().add_scalar(1.0).ln()
}

pub fn main() {
    let x = Tensor::from_f64s(&[-3.0, -0.5, 0.0, 0.7, 2.5], &[5]);
    let worst = check_gradients(std::slice::from_ref(&x), |v| softplus(v[0])).expect("softplus");
    println!("softplus: largest gradient error {worst:.1e} (tolerance {TOLERANCE:.0e})");
    // The gradient itself, against sigmoid(x) by hand.
    let tape = Tape::new();
    let xv = tape.leaf(x.clone());
    let g = softplus(xv).sum_all().backward();
    for (xi, gi) in x.to_vec().iter().zip(g.get(xv).unwrap().to_vec()) {
        let sigmoid = 1.0 / (1.0 + (-xi).exp());
        println!("x {xi:5.2}  d/dx {gi:.6}  sigmoid(x) {sigmoid:.6}");
        assert!((gi - sigmoid).abs() < 1e-12);
    }
    // A wrong gradient fails: `detach` cuts the tape, so `x * x` looks like `x * c`.
    let wrong = check_gradients(&[x], |v| v[0].mul(v[0].detach()));
    println!("x * detach(x): {}", wrong.as_ref().unwrap_err());
    assert!(wrong.is_err());
}
