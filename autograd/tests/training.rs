//! Adam fits small non-linear problems: the whole stack (ops, tape, parameters, optimiser)
//! has to be right for the loss to fall this far.

use mclrec_autograd::{Adam, Optimizer, ParamStore, Tape};
use mclrec_tensor::{ChaCha8Rng, Tensor};
use rand::{Rng, SeedableRng};

/// A 2-h-2 MLP with GELU, trained full-batch with cross-entropy; returns (loss, accuracy).
fn fit(x: &Tensor<f32>, y: &[usize], hidden: usize, steps: usize, lr: f64) -> (f32, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut store = ParamStore::new();
    let g = store.group("mlp");
    let w1 = store.add("w1", Tensor::normal(&[hidden, 2], 0.0, 1.0, &mut rng), g);
    let b1 = store.add("b1", Tensor::zeros(&[hidden]), g);
    let w2 = store.add("w2", Tensor::normal(&[2, hidden], 0.0, 0.3, &mut rng), g);
    let b2 = store.add("b2", Tensor::zeros(&[2]), g);
    let mut opt = Adam::new(g, lr);
    let mut tape = Tape::new();
    let mut last = (f32::NAN, 0.0);
    for _ in 0..steps {
        tape.reset();
        let xv = tape.constant(x.clone());
        let h = xv
            .matmul_t(tape.param(&store, w1), false, true)
            .add(tape.param(&store, b1))
            .gelu();
        let logits = h
            .matmul_t(tape.param(&store, w2), false, true)
            .add(tape.param(&store, b2));
        let loss = logits.cross_entropy(y);
        let (_, pred) = logits.value().max_axis(1);
        let acc = pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64;
        last = (loss.value().item(), acc);
        opt.zero_grad(&mut store);
        loss.backward().accumulate_into(&mut store);
        opt.step(&mut store);
    }
    last
}

#[test]
fn adam_fits_xor() {
    let x = Tensor::from_f64s(&[0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2]);
    let (loss, acc) = fit(&x, &[0, 1, 1, 0], 8, 500, 0.05);
    assert!(loss < 0.01, "XOR loss {loss}");
    assert_eq!(acc, 1.0);
}

#[test]
fn adam_fits_two_moons() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let t = std::f64::consts::PI * rng.gen::<f64>();
        let (cx, cy, label) = if i % 2 == 0 {
            (t.cos(), t.sin(), 0)
        } else {
            (1.0 - t.cos(), 0.5 - t.sin(), 1)
        };
        xs.push(cx + 0.1 * rng.gen_range(-1.0..1.0));
        xs.push(cy + 0.1 * rng.gen_range(-1.0..1.0));
        ys.push(label);
    }
    let x = Tensor::from_f64s(&xs, &[200, 2]);
    let (loss, acc) = fit(&x, &ys, 32, 600, 0.02);
    assert!(loss < 0.05, "two-moons loss {loss}");
    assert!(acc >= 0.99, "two-moons accuracy {acc}");
}

#[test]
fn adam_first_steps_match_pytorch_formula() {
    // torch.optim.Adam([w], lr=0.1) on loss = sum(w^2) from w = [1, -2], two steps:
    // step 1 moves every coordinate by lr (m_hat / sqrt(v_hat) = sign(g)).
    let mut store = ParamStore::<f64>::new();
    let g = store.group("w");
    let w = store.add("w", Tensor::from_f64s(&[1.0, -2.0], &[2]), g);
    let mut opt = Adam::new(g, 0.1);
    let tape = Tape::new();
    let p = tape.param(&store, w);
    (p * p).sum_all().backward().accumulate_into(&mut store);
    opt.step(&mut store);
    let v = store.value(w).to_vec();
    assert!(
        (v[0] - 0.9).abs() < 1e-7 && (v[1] + 1.9).abs() < 1e-7,
        "{v:?}"
    );
}

#[test]
fn two_optimisers_touch_only_their_groups() {
    let mut store = ParamStore::<f64>::new();
    let (ga, gb) = (store.group("encoder"), store.group("augmenters"));
    let a = store.add("a", Tensor::from_f64s(&[1.0], &[1]), ga);
    let b = store.add("b", Tensor::from_f64s(&[1.0], &[1]), gb);
    let (mut oa, ob) = (Adam::new(ga, 0.1), Adam::<f64>::new(gb, 0.1));
    let tape = Tape::new();
    let loss = (tape.param(&store, a) * tape.param(&store, b)).sum_all();
    loss.backward().accumulate_into(&mut store);
    oa.step(&mut store);
    assert_ne!(store.value(a).to_vec(), vec![1.0]);
    assert_eq!(store.value(b).to_vec(), vec![1.0]);
    ob.zero_grad(&mut store);
    assert!(store.get(b).grad.is_none() && store.get(a).grad.is_some());
}

#[test]
fn no_grad_and_frozen_parameters_record_no_backward() {
    let mut store = ParamStore::<f64>::new();
    let g = store.group("g");
    let w = store.add("w", Tensor::from_f64s(&[3.0], &[1]), g);
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_f64s(&[2.0], &[1]));
    // Frozen: the gradient still flows through w to x, but none is produced for w.
    let grads = (x * tape.frozen_param(&store, w)).sum_all().backward();
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![3.0]);
    assert!(grads.params().is_empty());
    let y = tape.no_grad(|| x * x);
    assert!(!y.requires_grad());
    assert!(!x.detach().requires_grad());
}
