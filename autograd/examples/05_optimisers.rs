//! SGD, SGD with momentum and Adam fitting one linear regression, side by side.
//!
//! The data is `y = 3 x_1 - 2 x_2 + 0.5` plus a little noise; each optimiser starts from the
//! same zero weights and takes 200 full-batch steps on the mean squared error.
//!
//! Run with `cargo run --release -p mclrec-autograd --example 05_optimisers`.

use mclrec_autograd::{Adam, Optimizer, ParamStore, Sgd, Tape};
use mclrec_tensor::{ChaCha8Rng, Tensor};
use rand::{Rng, SeedableRng};

/// Trains `[w; b]` with `opt` and returns the loss every 50 steps.
fn fit(
    opt: &mut dyn Optimizer<f64>,
    store: &mut ParamStore<f64>,
    x: &Tensor<f64>,
    y: &Tensor<f64>,
) -> Vec<f64> {
    let ids: Vec<_> = store.iter().map(|(id, _)| id).collect();
    let (w, b) = (ids[0], ids[1]);
    let mut losses = Vec::new();
    let mut tape = Tape::new();
    for step in 0..=200 {
        tape.reset();
        let pred = tape
            .constant(x.clone())
            .matmul_t(tape.param(store, w), false, true)
            .add(tape.param(store, b));
        let err = pred.sub(tape.constant(y.clone()));
        let loss = err.mul(err).mean_all();
        if step % 50 == 0 {
            losses.push(loss.value().item());
        }
        opt.zero_grad(store);
        loss.backward().accumulate_into(store);
        opt.step(store);
    }
    losses
}

pub fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let n = 256;
    let xs: Vec<f64> = (0..2 * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let ys: Vec<f64> = (0..n)
        .map(|i| 3.0 * xs[2 * i] - 2.0 * xs[2 * i + 1] + 0.5 + rng.gen_range(-0.01..0.01))
        .collect();
    let (x, y) = (Tensor::from_vec(xs, &[n, 2]), Tensor::from_vec(ys, &[n, 1]));
    let fresh = || {
        let mut s = ParamStore::new();
        let g = s.group("regression");
        s.add("w", Tensor::zeros(&[1, 2]), g);
        s.add("b", Tensor::zeros(&[1]), g);
        (s, g)
    };
    println!("loss at step     0      50     100     150     200");
    let mut finals = Vec::new();
    for name in ["sgd", "sgd + momentum 0.9", "adam"] {
        let (mut store, g) = fresh();
        let mut opt: Box<dyn Optimizer<f64>> = match name {
            "sgd" => Box::new(Sgd::new(g, 0.1)),
            "adam" => Box::new(Adam::new(g, 0.1)),
            _ => {
                let mut s = Sgd::new(g, 0.1);
                s.momentum = 0.9;
                Box::new(s)
            }
        };
        let l = fit(opt.as_mut(), &mut store, &x, &y);
        let cells: Vec<String> = l.iter().map(|v| format!("{v:7.4}")).collect();
        println!("{name:<18} {}", cells.join(" "));
        finals.push(*l.last().unwrap());
    }
    assert!(
        finals.iter().all(|&l| l < 0.05),
        "every optimiser fits: {finals:?}"
    );
}
