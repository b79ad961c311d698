//! A one-layer causal transformer, written with the crate's general ops only, learning a
//! toy sequence task: over random tokens, predict at every position the token one step
//! back, which no position can know without attending to the one before it.
//!
//! Embedding + positions, single-head causal self-attention (`matmul_t`, `masked_fill`,
//! `softmax`), a residual, layer norm, a GELU feed-forward, and a softmax over the 16 tokens
//! at every position. Adam, 150 steps on 64 sequences of length 8.
//!
//! Run with `cargo run --release -p mclrec-autograd --example 06_transformer`.

use mclrec_autograd::{Adam, Optimizer, ParamStore, Tape};
use mclrec_tensor::{ChaCha8Rng, Tensor};
use rand::{Rng, SeedableRng};

const VOCAB: usize = 16;
const LEN: usize = 8;
const DIM: usize = 32;
const BATCH: usize = 64;

pub fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut store = ParamStore::<f32>::new();
    let g = store.group("transformer");
    let mut normal = |shape: &[usize], std: f64| Tensor::normal(shape, 0.0, std, &mut rng);
    let tok = store.add("tok", normal(&[VOCAB, DIM], 0.5), g);
    let pos = store.add("pos", normal(&[LEN, DIM], 0.5), g);
    let (wq, wk, wv) = (
        store.add("wq", normal(&[DIM, DIM], 0.18), g),
        store.add("wk", normal(&[DIM, DIM], 0.18), g),
        store.add("wv", normal(&[DIM, DIM], 0.18), g),
    );
    let gamma = store.add("ln.gamma", Tensor::full(&[DIM], 1.0), g);
    let beta = store.add("ln.beta", Tensor::zeros(&[DIM]), g);
    let w1 = store.add("ff.w1", normal(&[4 * DIM, DIM], 0.18), g);
    let w2 = store.add("ff.w2", normal(&[DIM, 4 * DIM], 0.09), g);
    let out = store.add("out", normal(&[VOCAB, DIM], 0.18), g);
    let mut adam = Adam::new(g, 0.01);
    // A key after its query is masked: 1 where masked, broadcast over the batch.
    let future: Vec<f32> = (0..LEN * LEN)
        .map(|i| if i % LEN > i / LEN { 1.0 } else { 0.0 })
        .collect();
    let future = Tensor::from_vec(future, &[1, LEN, LEN]);
    let positions: Vec<usize> = (0..BATCH * LEN).map(|i| i % LEN).collect();

    let mut data_rng = ChaCha8Rng::seed_from_u64(4);
    let mut tape = Tape::new();
    let mut accuracy = 0.0;
    for step in 0..=150 {
        tape.reset();
        // Random tokens; the target of position t is the token at t - 1 (at 0: itself).
        let inputs: Vec<usize> = (0..BATCH * LEN)
            .map(|_| data_rng.gen_range(0..VOCAB))
            .collect();
        let targets: Vec<usize> = (0..BATCH * LEN)
            .map(|i| {
                if i % LEN == 0 {
                    inputs[i]
                } else {
                    inputs[i - 1]
                }
            })
            .collect();
        let p = |id| tape.param(&store, id);
        let x = p(tok)
            .embedding(&inputs, &[BATCH, LEN], None)
            .add(p(pos).embedding(&positions, &[BATCH, LEN], None));
        let (q, k, v) = (
            x.matmul_t(p(wq), false, true),
            x.matmul_t(p(wk), false, true),
            x.matmul_t(p(wv), false, true),
        );
        let scores = q
            .matmul_t(k, false, true)
            .mul_scalar(1.0 / (DIM as f32).sqrt())
            .masked_fill(&future, -1e9)
            .softmax();
        let h = x.add(scores.matmul(v)).layer_norm(p(gamma), p(beta), 1e-5);
        let h = h.add(
            h.matmul_t(p(w1), false, true)
                .gelu()
                .matmul_t(p(w2), false, true),
        );
        let logits = h
            .matmul_t(p(out), false, true)
            .reshape(&[BATCH * LEN, VOCAB]);
        let loss = logits.cross_entropy(&targets);
        // Accuracy of the positions after the first (the ones that need attention).
        let l = logits.value().to_vec();
        let right = (0..BATCH * LEN)
            .filter(|&r| r % LEN > 0)
            .filter(|&r| {
                let row = &l[r * VOCAB..(r + 1) * VOCAB];
                let best = (0..VOCAB)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap();
                best == targets[r]
            })
            .count();
        accuracy = right as f64 / (BATCH * (LEN - 1)) as f64;
        if step % 30 == 0 {
            println!(
                "step {step:3}  loss {:.4}  next-token accuracy {accuracy:.3}",
                loss.value().item()
            );
        }
        adam.zero_grad(&mut store);
        loss.backward().accumulate_into(&mut store);
        adam.step(&mut store);
    }
    assert!(
        accuracy > 0.9,
        "the transformer learned to look back: accuracy {accuracy}"
    );
}
