//! Fused causal attention over packed sequences, forward and backward, one thread block per
//! (sequence, head) (`attention_fwd`, `attention_bwd` in `kernels.cu`).
//!
//! The host sends the batch's layout (five numbers per sequence and one padding flag per
//! row, a few kilobytes) with each call; the activations never leave the device.

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};

use super::{buf, CudaBackend};
use crate::attention::AttentionSpec;
use crate::{Element, Tensor};

/// Threads per (sequence, head) block: one per query row (sequences are at most 50 long in
/// the model; longer ones loop).
const ATT_THREADS: u32 = 64;

/// The layout on the device, the launch shape and the dropout arguments.
struct Prepared<E> {
    seqs: CudaSlice<u64>,
    cfg: Option<LaunchConfig>,
    d: u64,
    heads: u64,
    scale: E,
    dropout: i32,
    lo: u32,
    hi: u32,
    threshold: u32,
    drop_scale: E,
    causal: i32,
}

fn prepare<E: Element>(b: &CudaBackend, d: usize, spec: &AttentionSpec<'_>) -> Prepared<E> {
    let blocks = spec.blocks();
    let seqs: Vec<u64> = blocks
        .iter()
        .flat_map(|s| [s.key_row, s.len, s.queries, s.q_row, s.prob].map(|v| v as u64))
        .collect();
    let (dropout, lo, hi, threshold, drop_scale) = match &spec.dropout {
        Some(m) => {
            let (seed, th) = m.seed_threshold();
            (
                1,
                seed as u32,
                (seed >> 32) as u32,
                th,
                E::from_f64(m.scale),
            )
        }
        None => (0, 0, 0, 0, E::one()),
    };
    let dh = d / spec.heads;
    Prepared {
        seqs: b.upload_u64(&seqs),
        cfg: (!blocks.is_empty() && dh > 0).then_some(LaunchConfig {
            grid_dim: (blocks.len() as u32, spec.heads as u32, 1),
            block_dim: (ATT_THREADS, 1, 1),
            shared_mem_bytes: 0,
        }),
        d: d as u64,
        heads: spec.heads as u64,
        scale: E::from_f64(1.0 / (dh as f64).sqrt()),
        causal: spec.causal as i32,
        dropout,
        lo,
        hi,
        threshold,
        drop_scale,
    }
}

pub(super) fn forward<E: Element>(
    b: &CudaBackend,
    q: &Tensor<E>,
    kv: &Tensor<E>,
    spec: &AttentionSpec<'_>,
) -> (Tensor<E>, Tensor<E>) {
    let d = q.shape()[1];
    let p = prepare::<E>(b, d, spec);
    let rows = spec.layout.rows();
    let blocked: Vec<u32> = (0..rows).map(|t| spec.layout.blocked(t) as u32).collect();
    let blocked = if blocked.is_empty() {
        b.zeros::<u32>(1)
    } else {
        b.stream
            .clone_htod(&blocked)
            .unwrap_or_else(|e| panic!("cuda:{}: upload: {e}", b.ordinal))
    };
    let mut ctx = b.alloc::<E>(q.numel());
    // Zeros: the probabilities past each query's causal horizon are never written.
    let mut probs = b.zeros::<E>(spec.prob_len());
    if let Some(cfg) = p.cfg {
        let f = b.func::<E>("attention_fwd");
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(q))
            .arg(buf(kv))
            .arg(&mut ctx)
            .arg(&mut probs)
            .arg(&p.seqs)
            .arg(&blocked)
            .arg(&p.d)
            .arg(&p.heads)
            .arg(&p.scale)
            .arg(&p.dropout)
            .arg(&p.lo)
            .arg(&p.hi)
            .arg(&p.threshold)
            .arg(&p.drop_scale)
            .arg(&p.causal);
        // SAFETY: shapes checked by Tensor::attention; the layout covers kv's rows, the
        // query rows cover q, and the probability offsets stay below prob_len.
        b.check("attention_fwd", unsafe { l.launch(cfg) });
    }
    (b.wrap(ctx, q.shape()), b.wrap(probs, &[spec.prob_len()]))
}

pub(super) fn backward<E: Element>(
    b: &CudaBackend,
    g: &Tensor<E>,
    q: &Tensor<E>,
    kv: &Tensor<E>,
    probs: &Tensor<E>,
    spec: &AttentionSpec<'_>,
) -> (Tensor<E>, Tensor<E>) {
    let d = q.shape()[1];
    let p = prepare::<E>(b, d, spec);
    // dq and dkv accumulate in place, so they start at zero.
    let mut dq = b.zeros::<E>(q.numel());
    let mut dkv = b.zeros::<E>(kv.numel());
    let mut dp = b.alloc::<E>(spec.prob_len());
    let mut dots = b.alloc::<E>(q.shape()[0] * spec.heads);
    if let Some(cfg) = p.cfg {
        let f = b.func::<E>("attention_bwd");
        let mut l = b.stream.launch_builder(&f);
        l.arg(buf(g))
            .arg(buf(q))
            .arg(buf(kv))
            .arg(buf(probs))
            .arg(&mut dq)
            .arg(&mut dkv)
            .arg(&mut dp)
            .arg(&mut dots)
            .arg(&p.seqs)
            .arg(&p.d)
            .arg(&p.heads)
            .arg(&p.scale)
            .arg(&p.dropout)
            .arg(&p.lo)
            .arg(&p.hi)
            .arg(&p.threshold)
            .arg(&p.drop_scale)
            .arg(&p.causal);
        // SAFETY: as in the forward; dp has prob_len entries and dots one per query row
        // and head.
        b.check("attention_bwd", unsafe { l.launch(cfg) });
    }
    (b.wrap(dq, q.shape()), b.wrap(dkv, kv.shape()))
}
