//! CPU against CUDA at the model's shapes (batch 256, 50 positions folded into 12,800 rows,
//! hidden 64, 12,101 items): the matrix products of a training step, the score softmax and
//! the Adam update of the item table (criterion's "elem/s" counts floating-point
//! operations for the products, 2 m k n, and elements for the others); then one whole
//! MCLRec three-step batch of Beauty at batch 256 (a median-length batch of the real
//! epoch) and full-ranking evaluation of all 22,363 Beauty users (test split).
//!
//! Needs `--features cuda`; without a usable GPU the CUDA cases are skipped with a line
//! saying why, and the CPU cases still run. CUDA timings wait for the stream after each
//! iteration, so they are complete kernel times, not launch times; inputs are uploaded once,
//! outside the timed loop, as in training where tensors stay on the device.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mclrec::tensor::{AdamParams, ChaCha8Rng, Device, Tensor};
use mclrec::trainer::run::build_model;
use mclrec::trainer::train_step::Learner;
use mclrec::trainer::{eval_cases, evaluate, EvalOptions, Split, TrainConfig};

#[path = "common/median_batch.rs"]
mod median_batch;
use median_batch::{beauty, median_batch};
use rand::SeedableRng;

/// The devices to compare: the CPU, and cuda:0 when it can be had.
fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    match Device::cuda(0) {
        Ok(g) => d.push(g),
        Err(e) => println!("cuda_vs_cpu: CUDA cases skipped: no GPU ({e})"),
    }
    d
}

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut t = |s: &[usize]| Tensor::<f32>::normal(s, 0.0, 1.0, &mut rng);
    let x = t(&[12800, 64]);
    let w64 = t(&[64, 64]);
    let h = t(&[256, 64]);
    let items = t(&[12101, 64]);
    let g_items = t(&[12101, 64]);
    let devs = devices();

    let mut group = c.benchmark_group("matmul");
    group.sample_size(20);
    // (name, A, B, trans_a, trans_b, m, k, n)
    type Case<'a> = (
        &'a str,
        &'a Tensor,
        &'a Tensor,
        bool,
        bool,
        usize,
        usize,
        usize,
    );
    let cases: [Case; 2] = [
        ("12800x64 @ 64x64", &x, &w64, false, false, 12800, 64, 64),
        (
            "256x64 @ (12101x64)^T",
            &h,
            &items,
            false,
            true,
            256,
            64,
            12101,
        ),
    ];
    for (name, a, b, ta, tb, m, k, n) in cases {
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        for &d in &devs {
            let (a, b) = (a.to_device(d).unwrap(), b.to_device(d).unwrap());
            group.bench_function(BenchmarkId::new(name, d), |bch| {
                bch.iter(|| {
                    let c = a.matmul_t(&b, ta, tb);
                    d.synchronize();
                    c
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("step_parts");
    group.sample_size(20);
    let scores = h.matmul_t(&items, false, true);
    group.throughput(Throughput::Elements(scores.numel() as u64));
    for &d in &devs {
        let s = scores.to_device(d).unwrap();
        group.bench_function(BenchmarkId::new("log_softmax 256x12101", d), |bch| {
            bch.iter(|| {
                let y = s.log_softmax();
                d.synchronize();
                y
            })
        });
    }
    group.throughput(Throughput::Elements(items.numel() as u64));
    let hp = AdamParams {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        step: 1,
    };
    for &d in &devs {
        let mut p = items.to_device(d).unwrap();
        let g = g_items.to_device(d).unwrap();
        let mut m = Tensor::<f32>::zeros(&[12101, 64]).to_device(d).unwrap();
        let mut v = Tensor::<f32>::zeros(&[12101, 64]).to_device(d).unwrap();
        group.bench_function(BenchmarkId::new("adam 12101x64", d), |bch| {
            bch.iter(|| {
                p.adam_step(&g, &mut m, &mut v, &hp);
                d.synchronize();
            })
        });
    }
    group.finish();
}

/// One three-step batch and the all-user evaluation, on each device, with the same
/// initial model (built on the CPU, then moved as `mclrec-cli run --device` does).
fn bench_training(c: &mut Criterion) {
    // As `mclrec-cli` runs: subnormal gradients flushed to zero on every worker.
    mclrec::tensor::flush_denormals(true);
    let data = beauty();
    let config = TrainConfig::paper_beauty("beauty");
    let mb = median_batch(&data, &config);
    let cases = eval_cases(&data, Split::Test, config.max_len);
    let mut group = c.benchmark_group("training");
    group.sample_size(10);
    for d in devices() {
        let mut learner = Learner::new(build_model(&config, &data), &config);
        learner.to_device(d).expect("device checked by devices()");
        group.bench_function(BenchmarkId::new("three_step_batch 256", d), |b| {
            b.iter(|| {
                let mut r = ChaCha8Rng::seed_from_u64(3);
                let l = learner.train_batch(&mb.samples, &mb.idx, 1, &mut r);
                d.synchronize();
                l
            })
        });
        let m = &learner.model;
        group.bench_function(BenchmarkId::new("evaluate_all_users", d), |b| {
            b.iter(|| evaluate(&**m, &cases, &EvalOptions::default()).metrics)
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_training);
criterion_main!(benches);
