//! MCLRec's two contrastive terms of one pair of views, fused: InfoNCE and the
//! regulariser's `meta_contrast_rl` term, both read from the pair's similarity matrix
//! `S = [a; b][a; b]^T` (`[2n, 2n]`), with their gradients.
//!
//! Row `r`'s positive is its partner `p(r)` (`r + n` or `r - n`), its negatives the `2n - 2`
//! other columns except `r` itself. With `k1 = 1 / 2n` and `k2 = 1 / (2n (2n - 2))`:
//!
//! - InfoNCE: `k1 sum_r (log sum_{c != r} exp S[r, c] - S[r, p(r)])`.
//! - Regulariser: with `pos_r = S[r, p(r)]`, `m_r` the hardest negative (first on ties),
//!   `gap_r = relu(pos_r - m_r)`, `hi_r = m_r + gap_r` (= `max(pos_r, m_r)`):
//!   `k1 sum_r gap_r + k2 sum_r sum_{negatives c} relu(hi_r - S[r, c])`.
//!
//! Subgradients follow the composite ops (`relu'(0) = 0`, the max's gradient to its first
//! maximum), so the fused op equals the written-out graph exactly, as the golden parity test
//! against PyTorch checks.

use crate::{Element, Tensor};

/// The partner of row `r` of a `[2n, 2n]` similarity matrix.
#[inline]
pub(crate) fn partner(r: usize, n: usize) -> usize {
    if r < n {
        r + n
    } else {
        r - n
    }
}

impl<E: Element> Tensor<E> {
    /// The pair's `[InfoNCE, regulariser term]` (a `[2]` tensor) and their gradients with
    /// respect to `self`, the similarity matrix `[2n, 2n]`.
    ///
    /// ```
    /// use mclrec_tensor::Tensor;
    ///
    /// // n = 2: row 0's partner is column 2, its negatives are columns 1 and 3.
    /// let s = Tensor::<f64>::from_f64s(&[
    ///     9.0, 0.0, 5.0, 1.0,
    ///     0.0, 9.0, 1.0, 5.0,
    ///     5.0, 1.0, 9.0, 0.0,
    ///     1.0, 5.0, 0.0, 9.0,
    /// ], &[4, 4]);
    /// let (v, d_nce, _) = s.contrastive_pair();
    /// let nce = (0f64.exp() + 5f64.exp() + 1f64.exp()).ln() - 5.0;
    /// assert!((v.to_f64s()[0] - nce).abs() < 1e-12);
    /// // Every positive (5) beats its hardest negative (1): gap 4, and the hinges
    /// // relu(5 - 1) + relu(5 - 0) = 9 per row, averaged over 2n (2n - 2) = 8 entries.
    /// assert!((v.to_f64s()[1] - (4.0 + 4.0 * 9.0 / 8.0)).abs() < 1e-12);
    /// assert_eq!(d_nce.to_f64s()[0], 0.0); // the diagonal is not a class
    /// ```
    ///
    /// # Panics
    /// If `self` is not square with an even side of at least 4.
    pub fn contrastive_pair(&self) -> (Self, Self, Self) {
        let s = self.shape();
        assert!(
            s.len() == 2 && s[0] == s[1] && s[0].is_multiple_of(2) && s[0] >= 4,
            "contrastive_pair needs a square [2n, 2n] similarity matrix with n >= 2, got {s:?}"
        );
        self.backend().contrastive_pair(self)
    }
}
