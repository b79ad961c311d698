//! This machine's FP32 FMA peak: independent FMA chains that keep both FMA ports busy, on
//! one thread and on every rayon thread, with 8-lane AVX2 and, where the processor has it,
//! 16-lane AVX-512 (the wider figure is the machine's peak). GFLOP/s quoted elsewhere are
//! shares of this. Criterion's "elem/s" here counts floating-point operations (an FMA is 2).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;

// Long enough (milliseconds) that waking the other threads is a small part of an iteration.
const ITERS: usize = 1 << 20;
const CHAINS: usize = 10; // enough independent accumulators to cover FMA latency x ports

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop(seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(seed); CHAINS];
    for _ in 0..ITERS {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    let mut s = _mm256_setzero_ps();
    for r in acc {
        s = _mm256_add_ps(s, r);
    }
    let mut out = [0.0f32; 8];
    _mm256_storeu_ps(out.as_mut_ptr(), s);
    out.iter().sum()
}

/// The same chains 16 lanes wide.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop_512(seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(seed); CHAINS];
    for _ in 0..ITERS {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_ps(*r, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for r in acc {
        s = _mm512_add_ps(s, r);
    }
    _mm512_reduce_add_ps(s)
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn fma_loop(seed: f32) -> f32 {
    let mut acc = [seed; CHAINS * 8];
    for _ in 0..ITERS {
        for r in acc.iter_mut() {
            *r = r.mul_add(0.999_999, 1e-7);
        }
    }
    acc.iter().sum()
}

/// One thread and every rayon thread running `fma` (`lanes` wide), under `name`.
fn bench_width(c: &mut Criterion, name: &str, lanes: usize, fma: unsafe fn(f32) -> f32) {
    let flops_one = (ITERS * CHAINS * lanes * 2) as u64;
    let mut group = c.benchmark_group("fma_peak_f32");
    group.sample_size(20);
    group.throughput(Throughput::Elements(flops_one));
    group.bench_function(BenchmarkId::new(name, "1 thread"), |b| {
        b.iter(|| unsafe { fma(std::hint::black_box(1.0)) })
    });
    let threads = rayon::current_num_threads();
    group.throughput(Throughput::Elements(flops_one * threads as u64));
    group.bench_function(BenchmarkId::new(name, format!("{threads} threads")), |b| {
        b.iter(|| {
            (0..threads)
                .into_par_iter()
                .map(|i| unsafe { fma(i as f32) })
                .sum::<f32>()
        })
    });
    group.finish();
}

fn bench_peak(c: &mut Criterion) {
    bench_width(c, "avx2", 8, fma_loop);
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        bench_width(c, "avx512", 16, fma_loop_512);
    }
}

criterion_group!(benches, bench_peak);
criterion_main!(benches);
