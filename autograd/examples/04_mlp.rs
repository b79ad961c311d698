//! Trains a small MLP on two interleaved spirals with Adam and prints the loss falling.
//!
//! Run with `cargo run --release -p mclrec-autograd --example 04_mlp`.

use mclrec_autograd::{Adam, Optimizer, ParamStore, Tape};
use mclrec_tensor::{ChaCha8Rng, Device, Tensor};
use rand::SeedableRng;

pub fn main() {
    let losses = train(Device::Cpu, 1000);
    for (step, loss) in losses.iter().enumerate().step_by(100) {
        println!("step {step:4}  loss {loss:.4}");
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    println!("loss {first:.4} -> {last:.4}");
    assert!(last < 0.25 * first, "the MLP did not learn the spirals");
}

/// `steps` Adam steps on `device`; the loss before each.
pub fn train(device: Device, steps: usize) -> Vec<f32> {
    // Data: two spirals, 100 points each.
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let class = i % 2;
        let r = (i / 2) as f64 / 100.0;
        let t = 4.0 * r + class as f64 * std::f64::consts::PI;
        xs.extend([r * t.cos(), r * t.sin()]);
        ys.push(class);
    }
    let x = Tensor::<f32>::from_f64s(&xs, &[200, 2])
        .to_device(device)
        .expect("the device is usable");

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
    store.to_device(device).expect("the device is usable");

    let mut tape = Tape::new();
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        tape.reset(); // one tape, reused: the node list keeps its capacity
        let p = |id| tape.param(&store, id);
        let h = tape
            .constant(x.clone())
            .matmul_t(p(w1), false, true)
            .add(p(b1))
            .gelu();
        let h = h.matmul_t(p(w2), false, true).add(p(b2)).gelu();
        let loss = h.matmul_t(p(w3), false, true).add(p(b3)).cross_entropy(&ys);
        losses.push(loss.value().item());
        adam.zero_grad(&mut store);
        loss.backward().accumulate_into(&mut store);
        adam.step(&mut store);
    }
    losses
}
