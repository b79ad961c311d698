//! The tape behind an expression: one line per node, and the same graph for Graphviz.
//!
//! Run with `cargo run -p mclrec-autograd --example 02_tape`, and draw the graph with
//! `TAPE_DOT=tape.dot cargo run -p mclrec-autograd --example 02_tape && dot -Tpng tape.dot -o tape.png`.

use mclrec_autograd::{ParamStore, Tape};
use mclrec_tensor::Tensor;

pub fn main() {
    // A one-layer model on two inputs: loss = mean(relu(x W^T + b)).
    let mut store = ParamStore::<f64>::new();
    let g = store.group("layer");
    let w = store.add("w", Tensor::from_f64s(&[0.5, -1.0, 2.0, 0.25], &[2, 2]), g);
    let b = store.add("b", Tensor::from_f64s(&[0.1, -0.1], &[2]), g);
    let tape = Tape::new();
    let x = tape.constant(Tensor::from_f64s(&[1.0, 2.0, -1.0, 0.5], &[2, 2]));
    let loss = x
        .matmul_t(tape.param(&store, w), false, true)
        .add(tape.param(&store, b))
        .relu()
        .mean_all();
    let grads = loss.backward();
    // Parameters (#0, #2) and the data (#1) are inputs; every other node is an op with the
    // ids of its inputs. `grad` marks the nodes a gradient flows to.
    print!("{tape}");
    println!(
        "loss {:.4}, d loss / d w = {:?}",
        loss.value().item(),
        store.value(w).shape()
    );
    assert_eq!(grads.params().len(), 2, "both parameters get a gradient");
    let dot = tape.to_dot();
    match std::env::var("TAPE_DOT").ok() {
        Some(path) => {
            std::fs::write(&path, &dot).expect("write the graph");
            println!("graph written to {path}");
        }
        None => println!(
            "{} lines of Graphviz (TAPE_DOT=FILE writes them)",
            dot.lines().count()
        ),
    }
}
