//! Each AVX2+FMA kernel (and the AVX-512 builds of the `exp` and GELU kernels) against its
//! portable scalar fallback, on the sizes one training batch gives them (12,800 x 256 GELU
//! inputs, 256 x 12,101 softmax rows, 12,800 rows of 64 for layer norm, the 0.8M encoder
//! weights for Adam). Throughput is in elements.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mclrec_tensor::kernels::{scalar, AdamParams};
use mclrec_tensor::{ChaCha8Rng, Tensor};
use rand::SeedableRng;

fn data(n: usize, seed: u64) -> Vec<f32> {
    Tensor::<f32>::normal(&[n], 0.0, 1.0, &mut ChaCha8Rng::seed_from_u64(seed)).to_vec()
}

fn bench_kernels(c: &mut Criterion) {
    #[cfg(target_arch = "x86_64")]
    let avx = mclrec_tensor::kernels::simd_enabled();
    #[cfg(not(target_arch = "x86_64"))]
    let avx = false;
    if !avx {
        eprintln!("no AVX2+FMA on this CPU: only the scalar kernels are measured");
    }
    let mut group = c.benchmark_group("simd_kernels");
    group.sample_size(20);

    let n = 12800 * 256;
    let x = data(n, 1);
    let gy = data(n, 2);
    let mut y = vec![0.0f32; n];
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("gelu", "scalar"), |b| {
        b.iter(|| scalar::gelu(&x, &mut y))
    });
    group.bench_function(BenchmarkId::new("gelu_backward", "scalar"), |b| {
        b.iter(|| scalar::gelu_backward(&x, &gy, &mut y))
    });
    group.bench_function(BenchmarkId::new("exp", "scalar"), |b| {
        b.iter(|| scalar::exp(&x, &mut y))
    });
    #[cfg(target_arch = "x86_64")]
    if avx {
        use mclrec_tensor::kernels::avx2;
        group.bench_function(BenchmarkId::new("gelu", "avx2"), |b| {
            b.iter(|| unsafe { avx2::gelu(&x, &mut y) })
        });
        group.bench_function(BenchmarkId::new("gelu_backward", "avx2"), |b| {
            b.iter(|| unsafe { avx2::gelu_backward(&x, &gy, &mut y) })
        });
        group.bench_function(BenchmarkId::new("exp", "avx2"), |b| {
            b.iter(|| unsafe { avx2::exp(&x, &mut y) })
        });
    }
    #[cfg(target_arch = "x86_64")]
    if mclrec_tensor::kernels::avx512_enabled() {
        use mclrec_tensor::kernels::avx512;
        group.bench_function(BenchmarkId::new("gelu", "avx512"), |b| {
            b.iter(|| unsafe { avx512::gelu(&x, &mut y) })
        });
        group.bench_function(BenchmarkId::new("gelu_backward", "avx512"), |b| {
            b.iter(|| unsafe { avx512::gelu_backward(&x, &gy, &mut y) })
        });
        group.bench_function(BenchmarkId::new("exp", "avx512"), |b| {
            b.iter(|| unsafe { avx512::exp(&x, &mut y) })
        });
    }

    let (rows, cols) = (256, 12101);
    let s = data(rows * cols, 3);
    let mut out = vec![0.0f32; rows * cols];
    group.throughput(Throughput::Elements((rows * cols) as u64));
    let run_rows = |f: &dyn Fn(&[f32], &mut [f32]), out: &mut [f32]| {
        for (o, i) in out.chunks_mut(cols).zip(s.chunks(cols)) {
            f(i, o)
        }
    };
    group.bench_function(BenchmarkId::new("softmax_rows", "scalar"), |b| {
        b.iter(|| run_rows(&|i, o| scalar::softmax_row(i, o), &mut out))
    });
    group.bench_function(BenchmarkId::new("log_softmax_rows", "scalar"), |b| {
        b.iter(|| run_rows(&|i, o| scalar::log_softmax_row(i, o), &mut out))
    });
    #[cfg(target_arch = "x86_64")]
    if avx {
        use mclrec_tensor::kernels::avx2;
        group.bench_function(BenchmarkId::new("softmax_rows", "avx2"), |b| {
            b.iter(|| run_rows(&|i, o| unsafe { avx2::softmax_row(i, o) }, &mut out))
        });
        group.bench_function(BenchmarkId::new("log_softmax_rows", "avx2"), |b| {
            b.iter(|| run_rows(&|i, o| unsafe { avx2::log_softmax_row(i, o) }, &mut out))
        });
    }

    let (rows, d) = (12800, 64);
    let xl = data(rows * d, 4);
    let gamma = vec![1.0f32; d];
    let beta = vec![0.0f32; d];
    let mut yl = vec![0.0f32; rows * d];
    group.throughput(Throughput::Elements((rows * d) as u64));
    group.bench_function(BenchmarkId::new("layer_norm_rows", "scalar"), |b| {
        b.iter(|| {
            for (o, i) in yl.chunks_mut(d).zip(xl.chunks(d)) {
                scalar::layer_norm_row(i, &gamma, &beta, 1e-12, o);
            }
        })
    });
    #[cfg(target_arch = "x86_64")]
    if avx {
        use mclrec_tensor::kernels::avx2;
        group.bench_function(BenchmarkId::new("layer_norm_rows", "avx2"), |b| {
            b.iter(|| {
                for (o, i) in yl.chunks_mut(d).zip(xl.chunks(d)) {
                    unsafe { avx2::layer_norm_row(i, &gamma, &beta, 1e-12, o) };
                }
            })
        });
    }

    let np = 12103 * 64 + 110_000;
    let g = data(np, 5);
    let mut p = data(np, 6);
    let mut m = vec![0.0f32; np];
    let mut v = vec![0.0f32; np];
    let h = AdamParams {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        step: 10,
    };
    group.throughput(Throughput::Elements(np as u64));
    group.bench_function(BenchmarkId::new("adam", "scalar"), |b| {
        b.iter(|| scalar::adam(&mut p, &g, &mut m, &mut v, &h))
    });
    #[cfg(target_arch = "x86_64")]
    if avx {
        use mclrec_tensor::kernels::avx2;
        group.bench_function(BenchmarkId::new("adam", "avx2"), |b| {
            b.iter(|| unsafe { avx2::adam(&mut p, &g, &mut m, &mut v, &h) })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_kernels);
criterion_main!(benches);
