//! Fused causal attention on the CPU: one task per sequence (all its heads), parallel over
//! the batch. Sequences are short (at most `max_len` = 50), so a `(sequence, head)` block
//! lives in L1 and every inner loop is an axpy over keys or over the head width, which
//! vectorises without reassociating a sum.

use rayon::prelude::*;

use crate::attention::{AttentionSpec, SeqBlock};
use crate::{Element, Tensor};

/// The additive mask of a padding key (the official value).
const BLOCKED: f64 = -10000.0;

pub(super) fn forward<E: Element>(
    q: &Tensor<E>,
    kv: &Tensor<E>,
    spec: &AttentionSpec<'_>,
) -> (Tensor<E>, Tensor<E>) {
    let d = q.shape()[1];
    let blocks = spec.blocks();
    let mut ctx = super::zeros(q.numel());
    let mut probs = super::zeros(spec.prob_len());
    let tasks = split_rows(&blocks, &mut ctx, d, |b| b.q_row, |b| b.queries);
    let tasks: Vec<_> = tasks
        .into_iter()
        .zip(split_probs(&blocks, &mut probs, spec.heads))
        .collect();
    let (qs, kvs) = (q.as_slice(), kv.as_slice());
    tasks.into_par_iter().with_min_len(8).for_each_init(
        || vec![E::zero(); 2 * d * 64],
        |scratch, ((b, ctx), probs)| {
            #[cfg(target_arch = "x86_64")]
            if crate::kernels::avx512_enabled() {
                // SAFETY: avx512_enabled() checked that the CPU has AVX-512F, AVX2 and FMA.
                return unsafe { forward_seq_avx512(qs, kvs, spec, d, b, ctx, probs, scratch) };
            } else if crate::kernels::simd_enabled() {
                // SAFETY: simd_enabled() checked that the CPU has AVX2 and FMA.
                return unsafe { forward_seq_avx2(qs, kvs, spec, d, b, ctx, probs, scratch) };
            }
            forward_seq(qs, kvs, spec, d, b, ctx, probs, scratch)
        },
    );
    (
        Tensor::from_buffer(ctx, q.shape()),
        Tensor::from_buffer(probs, &[spec.prob_len()]),
    )
}

pub(super) fn backward<E: Element>(
    g: &Tensor<E>,
    q: &Tensor<E>,
    kv: &Tensor<E>,
    probs: &Tensor<E>,
    spec: &AttentionSpec<'_>,
) -> (Tensor<E>, Tensor<E>) {
    let d = q.shape()[1];
    let blocks = spec.blocks();
    let mut dq = super::zeros(q.numel());
    let mut dkv = super::zeros(kv.numel());
    let dq_parts = split_rows(&blocks, &mut dq, d, |b| b.q_row, |b| b.queries);
    let dkv_parts = split_rows(&blocks, &mut dkv, 2 * d, |b| b.key_row, |b| b.len);
    let tasks: Vec<_> = dq_parts
        .into_iter()
        .zip(dkv_parts)
        .map(|((b, dq), (_, dkv))| (b, dq, dkv))
        .collect();
    let (gs, qs, kvs, ps) = (g.as_slice(), q.as_slice(), kv.as_slice(), probs.as_slice());
    tasks.into_par_iter().with_min_len(8).for_each_init(
        || vec![E::zero(); 2 * d * 64],
        |scratch, (b, dq, dkv)| {
            #[cfg(target_arch = "x86_64")]
            if crate::kernels::avx512_enabled() {
                // SAFETY: avx512_enabled() checked that the CPU has AVX-512F, AVX2 and FMA.
                return unsafe {
                    backward_seq_avx512(gs, qs, kvs, ps, spec, d, b, dq, dkv, scratch)
                };
            } else if crate::kernels::simd_enabled() {
                // SAFETY: simd_enabled() checked that the CPU has AVX2 and FMA.
                return unsafe { backward_seq_avx2(gs, qs, kvs, ps, spec, d, b, dq, dkv, scratch) };
            }
            backward_seq(gs, qs, kvs, ps, spec, d, b, dq, dkv, scratch)
        },
    );
    (
        Tensor::from_buffer(dq, q.shape()),
        Tensor::from_buffer(dkv, kv.shape()),
    )
}

/// `$name`: `$inner` compiled with the target features `$features`: the same generic code,
/// with wider vectors in its inlined loops. No FMA contraction and no reassociation either
/// way, so every build gives the same bits (`tests::every_compiled_variant_gives_the_same_bits`).
macro_rules! compiled_for {
    ($($name:ident = $inner:ident [$features:literal] ($($arg:ident : $ty:ty),*);)*) => {$(
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name<E: Element>($($arg: $ty),*) {
            $inner($($arg),*)
        }
    )*};
}

compiled_for! {
    forward_seq_avx2 = forward_seq ["avx2,fma"] (
        q: &[E], kv: &[E], spec: &AttentionSpec<'_>, d: usize, b: SeqBlock,
        ctx: &mut [E], probs: &mut [E], scratch: &mut Vec<E>
    );
    forward_seq_avx512 = forward_seq ["avx512f,avx2,fma"] (
        q: &[E], kv: &[E], spec: &AttentionSpec<'_>, d: usize, b: SeqBlock,
        ctx: &mut [E], probs: &mut [E], scratch: &mut Vec<E>
    );
    backward_seq_avx2 = backward_seq ["avx2,fma"] (
        g: &[E], q: &[E], kv: &[E], probs: &[E], spec: &AttentionSpec<'_>, d: usize,
        b: SeqBlock, dq: &mut [E], dkv: &mut [E], scratch: &mut Vec<E>
    );
    backward_seq_avx512 = backward_seq ["avx512f,avx2,fma"] (
        g: &[E], q: &[E], kv: &[E], probs: &[E], spec: &AttentionSpec<'_>, d: usize,
        b: SeqBlock, dq: &mut [E], dkv: &mut [E], scratch: &mut Vec<E>
    );
}

/// Cuts `buf` (rows of width `w`) into each block's rows, in block order.
fn split_rows<'a, E>(
    blocks: &[SeqBlock],
    buf: &'a mut [E],
    w: usize,
    first: impl Fn(&SeqBlock) -> usize,
    count: impl Fn(&SeqBlock) -> usize,
) -> Vec<(SeqBlock, &'a mut [E])> {
    let mut rest = buf;
    let mut at = 0;
    blocks
        .iter()
        .map(|b| {
            let skip = (first(b) - at) * w;
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(skip);
            let (mine, tail) = tail.split_at_mut(count(b) * w);
            rest = tail;
            at = first(b) + count(b);
            (*b, mine)
        })
        .collect()
}

fn split_probs<'a, E>(blocks: &[SeqBlock], buf: &'a mut [E], heads: usize) -> Vec<&'a mut [E]> {
    let mut rest = buf;
    blocks
        .iter()
        .map(|b| {
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(heads * b.queries * b.len);
            rest = tail;
            mine
        })
        .collect()
}

/// `dst[j] += a * src[j]`.
#[inline(always)]
fn axpy<E: Element>(dst: &mut [E], a: E, src: &[E]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += a * s;
    }
}

/// Copies head `h`'s columns of the `len` rows from `row0` of `kv` (row width `2d`, column
/// offset `col`) transposed into `out`: `out[c * len + j] = kv[row0 + j][col + c]`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn transpose_head<E: Element>(
    kv: &[E],
    row0: usize,
    len: usize,
    d: usize,
    col: usize,
    dh: usize,
    out: &mut [E],
) {
    for j in 0..len {
        let row = &kv[(row0 + j) * 2 * d + col..][..dh];
        for (c, &x) in row.iter().enumerate() {
            out[c * len + j] = x;
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_seq<E: Element>(
    q: &[E],
    kv: &[E],
    spec: &AttentionSpec<'_>,
    d: usize,
    b: SeqBlock,
    ctx: &mut [E],
    probs: &mut [E],
    scratch: &mut Vec<E>,
) {
    let (heads, len) = (spec.heads, b.len);
    let dh = d / heads;
    let scale = E::from_f64(1.0 / (dh as f64).sqrt());
    let blocked = E::from_f64(BLOCKED);
    if scratch.len() < dh * len + len {
        scratch.resize(dh * len + len, E::zero());
    }
    let (kt, scores) = scratch.split_at_mut(dh * len);
    let scores = &mut scores[..len];
    for h in 0..heads {
        transpose_head(kv, b.key_row, len, d, h * dh, dh, kt);
        for i in 0..b.queries {
            let n = spec.visible(&b, i);
            let q_row = &q[(b.q_row + i) * d + h * dh..][..dh];
            let s = &mut scores[..n];
            s.fill(E::zero());
            for (c, &qc) in q_row.iter().enumerate() {
                axpy(s, qc * scale, &kt[c * len..c * len + n]);
            }
            for (j, x) in s.iter_mut().enumerate() {
                if spec.layout.blocked(b.key_row + j) {
                    *x += blocked;
                }
            }
            let p_at = (h * b.queries + i) * len;
            let p = &mut probs[p_at..p_at + n];
            E::softmax_row(s, p);
            let out = &mut ctx[i * d + h * dh..][..dh];
            for (j, &pj) in p.iter().enumerate() {
                let w = match &spec.dropout {
                    Some(m) => pj * m.factor(b.prob + p_at + j, E::from_f64(m.scale)),
                    None => pj,
                };
                axpy(out, w, &kv[(b.key_row + j) * 2 * d + d + h * dh..][..dh]);
            }
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_seq<E: Element>(
    g: &[E],
    q: &[E],
    kv: &[E],
    probs: &[E],
    spec: &AttentionSpec<'_>,
    d: usize,
    b: SeqBlock,
    dq: &mut [E],
    dkv: &mut [E],
    scratch: &mut Vec<E>,
) {
    let (heads, len) = (spec.heads, b.len);
    let dh = d / heads;
    let scale = E::from_f64(1.0 / (dh as f64).sqrt());
    if scratch.len() < dh * len + len {
        scratch.resize(dh * len + len, E::zero());
    }
    let (vt, dp) = scratch.split_at_mut(dh * len);
    let dp = &mut dp[..len];
    for h in 0..heads {
        transpose_head(kv, b.key_row, len, d, d + h * dh, dh, vt);
        for i in 0..b.queries {
            let n = spec.visible(&b, i);
            let g_row = &g[(b.q_row + i) * d + h * dh..][..dh];
            let p_at = (h * b.queries + i) * len;
            let p = &probs[b.prob + p_at..][..n];
            // d(dropped probs) = g . v_j, then through the dropout mask.
            let dpn = &mut dp[..n];
            dpn.fill(E::zero());
            for (c, &gc) in g_row.iter().enumerate() {
                axpy(dpn, gc, &vt[c * len..c * len + n]);
            }
            for j in 0..n {
                let m = match &spec.dropout {
                    Some(mask) => mask.factor(b.prob + p_at + j, E::from_f64(mask.scale)),
                    None => E::one(),
                };
                dpn[j] *= m;
                // d v_j += (p_j m_j) g
                axpy(&mut dkv[j * 2 * d + d + h * dh..][..dh], p[j] * m, g_row);
            }
            // Softmax backward, then the score scale.
            let dot = p
                .iter()
                .zip(dpn.iter())
                .fold(E::zero(), |a, (&x, &y)| a + x * y);
            let q_row = &q[(b.q_row + i) * d + h * dh..][..dh];
            for j in 0..n {
                let ds = p[j] * (dpn[j] - dot) * scale;
                if ds == E::zero() {
                    continue;
                }
                let k_row = &kv[(b.key_row + j) * 2 * d + h * dh..][..dh];
                axpy(&mut dq[i * d + h * dh..][..dh], ds, k_row);
                axpy(&mut dkv[j * 2 * d + h * dh..][..dh], ds, q_row);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::attention::{QueryRows, SeqLayout};
    use crate::dropout_mask::DropoutMask;

    /// Forward and backward of every sequence through the portable, AVX2 and AVX-512
    /// builds of the same code: the bits agree (no FMA contraction, no reassociation).
    #[test]
    fn every_compiled_variant_gives_the_same_bits() {
        if !crate::kernels::simd_enabled() {
            return;
        }
        let (d, heads) = (64, 2);
        let lens = [1, 7, 50, 23];
        let mut offsets = vec![0];
        for l in lens {
            offsets.push(offsets.last().unwrap() + l);
        }
        let rows = *offsets.last().unwrap();
        let blocked: Vec<bool> = (0..rows).map(|t| t % 11 == 3).collect();
        let layout = SeqLayout::new(offsets, blocked);
        let spec = AttentionSpec {
            layout: &layout,
            queries: QueryRows::All,
            heads,
            dropout: Some(DropoutMask::new(0.5, 9)),
            causal: true,
        };
        let val = |i: usize| ((i as f32) * 0.618).sin();
        let q: Vec<f32> = (0..rows * d).map(val).collect();
        let kv: Vec<f32> = (0..rows * 2 * d).map(|i| val(i + 99)).collect();
        let g: Vec<f32> = (0..rows * d).map(|i| val(i + 7)).collect();
        let blocks = spec.blocks();
        type Fwd = unsafe fn(
            &[f32],
            &[f32],
            &AttentionSpec<'_>,
            usize,
            SeqBlock,
            &mut [f32],
            &mut [f32],
            &mut Vec<f32>,
        );
        type Bwd = unsafe fn(
            &[f32],
            &[f32],
            &[f32],
            &[f32],
            &AttentionSpec<'_>,
            usize,
            SeqBlock,
            &mut [f32],
            &mut [f32],
            &mut Vec<f32>,
        );
        let run = |variant: usize| {
            let (fwd, bwd): (Fwd, Bwd) = match variant {
                0 => (forward_seq::<f32>, backward_seq::<f32>),
                1 => (forward_seq_avx2::<f32>, backward_seq_avx2::<f32>),
                _ => (forward_seq_avx512::<f32>, backward_seq_avx512::<f32>),
            };
            let mut out = Vec::new();
            let mut scratch = Vec::new();
            for b in &blocks {
                let mut ctx = vec![0f32; b.queries * d];
                let mut probs = vec![0f32; heads * b.queries * b.len];
                let mut dq = vec![0f32; b.queries * d];
                let mut dkv = vec![0f32; b.len * 2 * d];
                // The probabilities as the backward indexes them (from offset b.prob).
                let mut all_probs = vec![0f32; spec.prob_len()];
                // SAFETY: the AVX2 and AVX-512 builds run only where the processor has them.
                unsafe {
                    fwd(&q, &kv, &spec, d, *b, &mut ctx, &mut probs, &mut scratch);
                    all_probs[b.prob..b.prob + probs.len()].copy_from_slice(&probs);
                    bwd(
                        &g,
                        &q,
                        &kv,
                        &all_probs,
                        &spec,
                        d,
                        *b,
                        &mut dq,
                        &mut dkv,
                        &mut scratch,
                    );
                }
                out.extend(
                    ctx.iter()
                        .chain(&probs)
                        .chain(&dq)
                        .chain(&dkv)
                        .map(|v| v.to_bits()),
                );
            }
            out
        };
        let portable = run(0);
        assert!(portable.iter().any(|&b| b != 0));
        assert_eq!(portable, run(1));
        if crate::kernels::avx512_enabled() {
            assert_eq!(portable, run(2));
        }
    }
}
