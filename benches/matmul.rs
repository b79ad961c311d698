//! f32 matrix products at the shapes of one MCLRec training batch (batch 256, 50 positions
//! folded into 12,800 rows, hidden 64, inner 256, 12,101 items), reported as FLOP/s
//! (criterion's "elem/s" here counts floating-point operations: 2 m k n per product).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mclrec_tensor::{ChaCha8Rng, Tensor};
use rand::SeedableRng;

fn bench_matmul(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut t = |s: &[usize]| Tensor::<f32>::normal(s, 0.0, 1.0, &mut rng);
    let x = t(&[12800, 64]);
    let w64 = t(&[64, 64]);
    let w256 = t(&[64, 256]);
    let h = t(&[256, 64]);
    let items = t(&[12101, 64]);
    let g = t(&[256, 12101]);
    let dy = t(&[12800, 256]);
    // nn.Linear weights, [out, in]: the layers compute x W^T.
    let w_in = t(&[256, 64]);
    let w_out = t(&[64, 256]);
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
    let mut cases: Vec<Case> = vec![
        ("12800x64 @ 64x64", &x, &w64, false, false, 12800, 64, 64),
        ("12800x64 @ 64x256", &x, &w256, false, false, 12800, 64, 256),
        (
            "linear 12800x64 @ (256x64)^T",
            &x,
            &w_in,
            false,
            true,
            12800,
            64,
            256,
        ),
        (
            "linear 12800x256 @ (64x256)^T",
            &dy,
            &w_out,
            false,
            true,
            12800,
            256,
            64,
        ),
        (
            "scores 256x64 @ (12101x64)^T",
            &h,
            &items,
            false,
            true,
            256,
            64,
            12101,
        ),
        (
            "d_h 256x12101 @ 12101x64",
            &g,
            &items,
            false,
            false,
            256,
            12101,
            64,
        ),
        (
            "d_items (256x12101)^T @ 256x64",
            &g,
            &h,
            true,
            false,
            12101,
            256,
            64,
        ),
    ];
    // The linear layers' weight gradients dY^T X.
    cases.push((
        "d_w (12800x64)^T @ 12800x64",
        &x,
        &x,
        true,
        false,
        64,
        12800,
        64,
    ));
    cases.push((
        "d_w (12800x256)^T @ 12800x64",
        &dy,
        &x,
        true,
        false,
        256,
        12800,
        64,
    ));
    let mut group = c.benchmark_group("matmul_f32");
    group.sample_size(20);
    for (name, a, b, ta, tb, m, k, n) in cases {
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(BenchmarkId::new("cpu", name), |bch| {
            bch.iter(|| a.matmul_t(b, ta, tb))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_matmul);
criterion_main!(benches);
