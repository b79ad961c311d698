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
    let mut d_nce = super::zeros(m * m);
    let mut d_reg = super::zeros(m * m);
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

/// Row `r` (partner `p`): its terms, and its gradient rows `dn`, `dr` (zeroed on entry).
fn row<E: Element>(
    x: &[E],
    r: usize,
    p: usize,
    k1: f64,
    k2: f64,
    dn: &mut [E],
    dr: &mut [E],
) -> RowTerms {
    // InfoNCE: a softmax over every column but the diagonal, its exponentials by the
    // slice kernel (SIMD for f32), `dr` serving as scratch until the regulariser's turn.
    let mut mx = E::neg_infinity();
    for (c, &v) in x.iter().enumerate() {
        if c != r && v > mx {
            mx = v;
        }
    }
    for (d, &v) in dr.iter_mut().zip(x) {
        *d = v - mx;
    }
    dr[r] = E::neg_infinity();
    E::exp_slice(dr, dn);
    let sum: f64 = dn.iter().map(|v| v.as_f64()).sum();
    let lse = mx.as_f64() + sum.ln();
    let pos = x[p].as_f64();
    let scale = E::from_f64(k1 / sum);
    dn.iter_mut().for_each(|d| *d *= scale);
    dn[p] -= E::from_f64(k1);
    dr.fill(E::zero());
    // Regulariser: the hardest negative (first on ties), the gap, the hinges.
    let (mut hard, mut at) = (f64::NEG_INFINITY, usize::MAX);
    for (c, &v) in x.iter().enumerate() {
        if c != r && c != p && v.as_f64() > hard {
            hard = v.as_f64();
            at = c;
        }
    }
    if at == usize::MAX {
        // No negative compares (NaN scores): a NaN loss, which the trainer reports.
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let wins = pos - hard > 0.0;
    let gap = if wins { pos - hard } else { 0.0 };
    let hi = hard + gap;
    let (mut hinge, mut active) = (0.0, 0usize);
    for (c, (d, &v)) in dr.iter_mut().zip(x).enumerate() {
        let h = hi - v.as_f64();
        if c != r && c != p && h > 0.0 {
            hinge += h;
            active += 1;
            *d = E::from_f64(-k2);
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
