//! The fused pair terms of [`crate::contrastive`], parallel over rows.

use rayon::prelude::*;

use crate::contrastive::partner;
use crate::{Element, Tensor};

/// One row's contributions: `(InfoNCE_r, gap_r, hinge sum_r)`.
type RowTerms = (f64, f64, f64);

pub(super) fn contrastive_pair<E: Element>(s: &Tensor<E>) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let m = s.shape()[0];
    let n = m / 2;
    let (k1, k2) = (1.0 / m as f64, 1.0 / (m * (m - 2)) as f64);
    let sv = s.as_slice();
    // Every element of both is written by `row`.
    let mut d_nce = super::output(m * m);
    let mut d_reg = super::output(m * m);
    let terms: Vec<RowTerms> = d_nce
        .par_chunks_mut(m)
        .zip(d_reg.par_chunks_mut(m))
        .enumerate()
        .with_min_len(16)
        .map(|(r, (dn, dr))| row(&sv[r * m..(r + 1) * m], r, partner(r, n), k1, k2, dn, dr))
        .collect();
    let (mut nce, mut gaps, mut hinges) = (0.0, 0.0, 0.0);
    for (a, b, c) in terms {
        nce += a;
        gaps += b;
        hinges += c;
    }
    let values = [k1 * nce, k1 * gaps + k2 * hinges].map(E::from_f64);
    (
        Tensor::from_vec(values.to_vec(), &[2]),
        Tensor::from_buffer(d_nce, &[m, m]),
        Tensor::from_buffer(d_reg, &[m, m]),
    )
}

/// `sum f(x_i)` in f64 over eight independent lanes, so that the loop vectorises (the
/// lanes are added at the end: a reassociation of the plain sum).
fn lane_sum<E: Element>(x: &[E], f: impl Fn(E) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    acc.iter().sum::<f64>() + tail
}

/// Row `r` (partner `p`): its terms, and its gradient rows `dn`, `dr` (overwritten). Every
/// pass over the row is a SIMD kernel or a branch-free loop: the rows are 512 long and
/// there are a dozen pairs per batch.
fn row<E: Element>(
    x: &[E],
    r: usize,
    p: usize,
    k1: f64,
    k2: f64,
    dn: &mut [E],
    dr: &mut [E],
) -> RowTerms {
    // InfoNCE: a softmax over every column but the diagonal.
    let mx = E::row_max(&x[..r]).max(E::row_max(&x[r + 1..]));
    E::exp_shifted_sum(&x[..r], mx, &mut dn[..r]);
    E::exp_shifted_sum(&x[r + 1..], mx, &mut dn[r + 1..]);
    dn[r] = E::zero();
    let sum = lane_sum(dn, E::as_f64);
    let lse = mx.as_f64() + sum.ln();
    let pos = x[p].as_f64();
    let scale = E::from_f64(k1 / sum);
    dn.iter_mut().for_each(|d| *d *= scale);
    dn[p] -= E::from_f64(k1);
    // Regulariser: the hardest negative (first on ties), the gap, the hinges.
    let (lo, hi) = (r.min(p), r.max(p));
    let hard = E::row_max(&x[..lo])
        .max(E::row_max(&x[lo + 1..hi]))
        .max(E::row_max(&x[hi + 1..]));
    let Some(at) = (0..x.len()).find(|&c| c != r && c != p && x[c] == hard) else {
        // No negative compares (NaN scores): a NaN loss, which the trainer reports.
        return (f64::NAN, f64::NAN, f64::NAN);
    };
    let hard = hard.as_f64();
    let wins = pos - hard > 0.0;
    let gap = if wins { pos - hard } else { 0.0 };
    // The hinges `max(0, top - x_c)` over the negatives, `top = hard + gap`: every column
    // first, then the diagonal and the partner taken back out.
    let top = hard + gap;
    let hinge_of = |v: E| (top - v.as_f64()).max(0.0);
    let minus_k2 = E::from_f64(-k2);
    for (d, &v) in dr.iter_mut().zip(x) {
        *d = if top - v.as_f64() > 0.0 {
            minus_k2
        } else {
            E::zero()
        };
    }
    let mut hinge = lane_sum(x, hinge_of);
    let mut active = dr.iter().filter(|&&d| d != E::zero()).count();
    for c in [r, p] {
        if dr[c] != E::zero() {
            hinge -= hinge_of(x[c]);
            active -= 1;
            dr[c] = E::zero();
        }
    }
    let hinge_total = k2 * active as f64;
    let (d_pos, d_hard) = if wins {
        (k1 + hinge_total, -k1)
    } else {
        (0.0, hinge_total)
    };
    dr[p] += E::from_f64(d_pos);
    dr[at] += E::from_f64(d_hard);
    (lse - pos, gap, hinge)
}
