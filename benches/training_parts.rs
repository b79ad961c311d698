//! The parts of one MCLRec training batch on Beauty, each timed on its own (criterion
//! medians), so a change to one part can be measured where it acts:
//!
//! - `encoder_fwd_bwd`: the encoder over a batch of 256 sequences and their two views
//!   (packed, one forward) and its backward from a dummy loss;
//! - `item_scores_fwd_bwd`: `L_rec` (the 256 x 12,102 score product, softmax
//!   cross-entropy, fused) and its backward; `_unfused` the same from `matmul_t` and
//!   `cross_entropy`; `_cold` either after 64 MB have been written, as in a training step;
//! - `contrastive_fwd_bwd`: `L_cl1`, the three `L_cl2` terms and `R` of 256 pairs, and
//!   their backward;
//! - `three_step_batch`: one whole batch of the schedule (encoder, augmenter, encoder step);
//! - `evaluate_all_users`: full-ranking evaluation of all 22,363 users (test split).
//!
//! The batch is a median-length batch of the real length-bucketed epoch. Run with
//! `cargo bench --bench training_parts`; the FMA peak to compare with is `--bench fma_peak`.

use criterion::{criterion_group, criterion_main, Criterion};
use mclrec::autograd::Tape;
use mclrec::models::losses::{rec_loss, MclrecLosses};
use mclrec::models::{Bound, MclrecModel, SeqBatch};
use mclrec::tensor::{ChaCha8Rng, Tensor};
use mclrec::trainer::registry;
use mclrec::trainer::run::{build_model, epoch_rng};
use mclrec::trainer::train_step::Learner;
use mclrec::trainer::{eval_cases, evaluate, EvalOptions, Split, TrainConfig};

#[path = "common/median_batch.rs"]
mod median_batch;
use median_batch::{beauty, median_batch};
use rand::SeedableRng;

fn bench_parts(c: &mut Criterion) {
    // As `mclrec-cli` runs: subnormal gradients flushed to zero on every worker.
    mclrec::tensor::flush_denormals(true);
    let data = beauty();
    let config = TrainConfig::paper_beauty("beauty");
    let mb = median_batch(&data, &config);
    let (targets, views) = (&mb.targets, &mb.views);
    let all = SeqBatch::concat(&[&mb.batch, &views.0, &views.1]);
    let m = MclrecModel::<f32>::new(
        registry::transformer(&config, data.n_items()),
        registry::mclrec_settings(&config).expect("MCLRec"),
        &mut epoch_rng(config.seed, 0),
    )
    .net;

    let mut group = c.benchmark_group("training_parts");
    group.sample_size(20);
    group.bench_function("encoder_fwd_bwd", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let p = Bound::new(&tape, &m.store, &[m.encoder_group]);
            let mut r = ChaCha8Rng::seed_from_u64(1);
            let mut drop = m.encoder.dropouts(Some(&mut r));
            m.encoder.forward(&p, &all, &mut drop).sum_all().backward()
        })
    });
    let mut r = ChaCha8Rng::seed_from_u64(2);
    let h = Tensor::<f32>::normal(&[256, 64], 0.0, 1.0, &mut r);
    let hs: Vec<Tensor<f32>> = (0..4)
        .map(|_| Tensor::<f32>::normal(&[256, 64], 0.0, 0.3, &mut r))
        .collect();
    // Fused (`rec_loss`) and unfused (the scores made and kept), each with warm caches and
    // with 64 MB written before every call, as the rest of a training step leaves them.
    let item_scores = |fused: bool| {
        let tape = Tape::new();
        let p = Bound::new(&tape, &m.store, &[m.encoder_group]);
        let (hv, items) = (tape.leaf(h.clone()), m.encoder.class_embeddings(&p));
        let loss = if fused {
            rec_loss(hv, items, targets)
        } else {
            hv.matmul_t(items, false, true).cross_entropy(targets)
        };
        loss.backward()
    };
    let mut sweep = vec![0u8; 64 << 20];
    for (name, fused) in [
        ("item_scores_fwd_bwd", true),
        ("item_scores_fwd_bwd_unfused", false),
    ] {
        group.bench_function(name, |b| b.iter(|| item_scores(fused)));
        group.bench_function(format!("{name}_cold"), |b| {
            b.iter_batched(
                || sweep.iter_mut().for_each(|v| *v = v.wrapping_add(1)),
                |()| item_scores(fused),
                criterion::BatchSize::PerIteration,
            )
        });
    }
    group.bench_function("contrastive_fwd_bwd", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let v: Vec<_> = hs.iter().map(|t| tape.leaf(t.clone())).collect();
            let terms = MclrecLosses::new(None, v[0], v[1], v[2], v[3]);
            terms.augmenter_loss(0.0).backward()
        })
    });
    drop(group);
    let mut group = c.benchmark_group("training_parts");
    group.sample_size(10);
    let mut learner = Learner::new(build_model(&config, &data), &config);
    group.bench_function("three_step_batch", |b| {
        b.iter(|| {
            let mut r = ChaCha8Rng::seed_from_u64(3);
            learner.train_batch(&mb.samples, &mb.idx, 1, &mut r)
        })
    });
    let cases = eval_cases(&data, Split::Test, config.max_len);
    let m = &learner.model;
    group.bench_function("evaluate_all_users", |b| {
        b.iter(|| evaluate(&**m, &cases, &EvalOptions::default()).metrics)
    });
    group.finish();
}

criterion_group!(benches, bench_parts);
criterion_main!(benches);
