//! A scalar expression and its gradient, checked against the derivative by hand.
//!
//! `f(x, z) = x^2 + 3 x z`, so `df/dx = 2x + 3z` and `df/dz = 3x`.
//!
//! Run with `cargo run -p mclrec-autograd --example 01_scalar`.

use mclrec_autograd::Tape;
use mclrec_tensor::Tensor;

pub fn main() {
    let (x0, z0) = (2.0, -1.0);
    let tape = Tape::<f64>::new();
    let x = tape.leaf(Tensor::from_f64s(&[x0], &[]));
    let z = tape.leaf(Tensor::from_f64s(&[z0], &[]));
    // Each operator records one node on the tape and computes its value at once.
    let f = x * x + (x * z).mul_scalar(3.0);
    let grads = f.backward();
    let (dx, dz) = (grads.get(x).unwrap().item(), grads.get(z).unwrap().item());
    let (by_hand_dx, by_hand_dz) = (2.0 * x0 + 3.0 * z0, 3.0 * x0);
    println!("f({x0}, {z0}) = {}", f.value().item());
    println!("df/dx = {dx}  (by hand: 2x + 3z = {by_hand_dx})");
    println!("df/dz = {dz}  (by hand: 3x = {by_hand_dz})");
    assert_eq!((dx, dz), (by_hand_dx, by_hand_dz));
    assert_eq!(f.value().item(), x0 * x0 + 3.0 * x0 * z0);
}
