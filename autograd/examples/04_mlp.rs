//! Trains a small MLP on two interleaved spirals with Adam and prints the loss falling.
//!
//! Run with `cargo run --release -p mclrec-autograd --example 04_mlp`.

use mclrec_autograd::{Adam, Optimizer, ParamStore, Tape};
use mclrec_tensor::{ChaCha8Rng, Tensor};
use rand::SeedableRng;

pub fn main() {
    // Data: two spirals, 100 points each.
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let class = i % 2;
        let r = (i / 2) as f64 / 100.0;
        let t = 4.0 * r + class as f64 * std::f64::consts::PI;
        xs.extend([r * t.cos(), r * t.sin()]);
        ys.push(class);
    }
    let x = Tensor::<f32>::from_f64s(&xs, &[200, 2]);

    // Parameters live in a store, outside the tape.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut store = ParamStore::new();
    let g = store.group("mlp");
    let w1 = store.add("w1", Tensor::normal(&[64, 2], 0.0, 1.0, &mut rng), g);
    let b1 = store.add("b1", Tensor::zeros(&[64]), g);
    let w2 = store.add("w2", Tensor::normal(&[64, 64], 0.0, 0.125, &mut rng), g);
    let b2 = store.add("b2", Tensor::zeros(&[64]), g);
    let w3 = store.add("w3", Tensor::normal(&[2, 64], 0.0, 0.125, &mut rng), g);
    let b3 = store.add("b3", Tensor::zeros(&[2]), g);
    let mut adam = Adam::new(g, 0.01);

    let mut tape = Tape::new();
    for step in 0..=1000 {
        tape.reset(); // one tape, reused: the node list keeps its capacity
        let p = |id| tape.param(&store, id);
        let h = tape
            .constant(x.clone())
            .matmul_t(p(w1), false, true)
            .add(p(b1))
            .gelu();
        let h = h.matmul_t(p(w2), false, true).add(p(b2)).gelu();
        let loss = h.matmul_t(p(w3), false, true).add(p(b3)).cross_entropy(&ys);
        if step % 100 == 0 {
            println!("step {step:4}  loss {:.4}", loss.value().item());
        }
        adam.zero_grad(&mut store);
        loss.backward().accumulate_into(&mut store);
        adam.step(&mut store);
    }
}
