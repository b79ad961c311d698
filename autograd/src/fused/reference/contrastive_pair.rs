//! MCLRec's two pair terms, InfoNCE and the regulariser term, written with general ops:
//! what [`FusedOps::contrastive_pair`](crate::fused::FusedOps::contrastive_pair) computes.

use mclrec_tensor::Element;

use crate::Var;

/// The partner of row `r` of a `[2n, 2n]` similarity matrix: the other view of the same
/// sequence.
fn partner(r: usize, n: usize) -> usize {
    if r < n {
        r + n
    } else {
        r - n
    }
}

/// `(InfoNCE, regulariser term)` of the pair whose similarity matrix is `s` (`[2n, 2n]`,
/// `S = [a; b][a; b]^T` for the two views `a`, `b` of `n` sequences), from `gather`,
/// `log_softmax`, `max_axis`, `sub`, `add`, `relu`, `sum_all` and `mul_scalar`.
///
/// Row `r` is one view of one sequence. Its positive is its partner `p(r)` (`r + n` or
/// `r - n`, the other view of the same sequence); its negatives are the `2n - 2` columns
/// other than `r` and `p(r)`; the diagonal `S_rr` (a view with itself) is no class at all.
/// With `k1 = 1 / 2n` and `k2 = 1 / (2n (2n - 2))`:
///
/// ```text
/// InfoNCE = k1 sum_r -log softmax_{c != r}(S_r)[p(r)]
///         = k1 sum_r (log sum_{c != r} exp S_rc - S_r,p(r))
///
/// m_r   = max over the negatives c of S_rc          (the hardest negative)
/// gap_r = relu(S_r,p(r) - m_r)                      (how far the positive wins)
/// hi_r  = m_r + gap_r                               (= max(S_r,p(r), m_r))
/// R     = k1 sum_r gap_r + k2 sum_r sum_{negatives c} relu(hi_r - S_rc)
/// ```
///
/// The diagonal is left out by gathering the `2n - 1` other columns of each row (in column
/// order), the negatives by gathering the `2n - 2` columns other than `r` and `p(r)`.
/// Subgradients are those of the ops: `relu'(0) = 0`, and `max_axis` sends the gradient to
/// the first maximum, so on ties the first hardest negative (in column order) gets it.
///
/// # Panics
/// If `s` is not `[2n, 2n]` with `n >= 2`.
pub fn contrastive_pair<'t, E: Element>(s: Var<'t, E>) -> (Var<'t, E>, Var<'t, E>) {
    let shape = s.shape();
    assert!(
        shape.len() == 2 && shape[0] == shape[1] && shape[0].is_multiple_of(2) && shape[0] >= 4,
        "contrastive_pair needs a square [2n, 2n] similarity matrix with n >= 2, got {shape:?}"
    );
    let m = shape[0];
    let n = m / 2;
    let (k1, k2) = (1.0 / m as f64, 1.0 / (m * (m - 2)) as f64);

    // InfoNCE: a softmax over every column but the diagonal; the partner's column is at
    // p(r) among them, one less when p(r) comes after r.
    let off_diagonal: Vec<usize> = (0..m)
        .flat_map(|r| (0..m).filter(move |&c| c != r))
        .collect();
    let classes = s.gather(1, &off_diagonal, &[m, m - 1]);
    let target: Vec<usize> = (0..m)
        .map(|r| {
            let p = partner(r, n);
            if p > r {
                p - 1
            } else {
                p
            }
        })
        .collect();
    let log_p = classes.log_softmax().gather(1, &target, &[m, 1]);
    let info_nce = log_p.sum_all().mul_scalar(E::from_f64(-k1));

    // The regulariser: the positive against the hardest negative, then hinges to hi_r.
    let partners: Vec<usize> = (0..m).map(|r| partner(r, n)).collect();
    let pos = s.gather(1, &partners, &[m, 1]);
    let negative_cols: Vec<usize> = (0..m)
        .flat_map(|r| (0..m).filter(move |&c| c != r && c != partner(r, n)))
        .collect();
    let negatives = s.gather(1, &negative_cols, &[m, m - 2]);
    let hardest = negatives.max_axis(1).reshape(&[m, 1]);
    let gap = pos.sub(hardest).relu();
    let hi = hardest.add(gap);
    let hinges = hi.sub(negatives).relu();
    let reg = gap
        .sum_all()
        .mul_scalar(E::from_f64(k1))
        .add(hinges.sum_all().mul_scalar(E::from_f64(k2)));
    (info_nce, reg)
}
