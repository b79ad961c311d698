//! Writes the Graphviz graph of a small tape, the picture of chapter 2
//! (`book/scripts/tape-picture.sh` renders it to `book/src/img/tape.svg`).
//!
//! The tape is a one-layer model with a loss: `loss = mean(relu(x W^T + b))`, with `W` and
//! `b` parameters of a store (filled ellipses), `x` a constant (an ellipse), every op a box.
//!
//! Run with `cargo run -p mclrec-book --example tape_picture -- OUT.dot`
//! (default `book/src/img/tape.dot`).

use mclrec_autograd::{ParamStore, Tape};
use mclrec_tensor::Tensor;

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "book/src/img/tape.dot".to_string());
    let mut store = ParamStore::<f64>::new();
    let g = store.group("model");
    let w = store.add(
        "w",
        Tensor::from_f64s(&[0.5, -1.0, 0.25, 1.0, 0.0, -0.5], &[3, 2]),
        g,
    );
    let b = store.add("b", Tensor::from_f64s(&[0.1, 0.0, -0.1], &[3]), g);
    let tape = Tape::new();
    let x = tape.constant(Tensor::from_f64s(&[1.0, 2.0, -1.0, 0.5], &[2, 2]));
    let h = x
        .matmul_t(tape.param(&store, w), false, true)
        .add(tape.param(&store, b));
    let loss = h.relu().mean_all();
    let grads = loss.backward();
    assert_eq!(grads.params().len(), 2, "both parameters get a gradient");
    print!("{tape}");
    std::fs::write(&out, tape.to_dot()).unwrap_or_else(|e| panic!("writing {out}: {e}"));
    eprintln!("wrote {out}");
}
