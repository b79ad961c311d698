//! A 1-D convolution over the time axis whose filters span the whole feature width,
//! max-pooled over time: Caser's horizontal convolutions (and Kim's text CNN).
//!
//! With `x` `[b, l, d]` (`l` positions of `d` features), `w` `[n, h, d]` (`n` filters of
//! height `h <= l`) and `bias` `[n]`, over the `l - h + 1` windows `t`:
//!
//! ```text
//! y[b, t, f] = sum_{j < h, c < d} x[b, t + j, c] w[f, j, c]
//! out[b, f]  = max_t y[b, t, f] + bias[f]        t*[b, f] = the first t that attains it
//! ```
//!
//! Only the maximising window of each `(b, f)` receives gradient, so the backward is
//! sparse: with `g` the gradient of `out`,
//! `dx[b, t* + j, c] += g[b, f] w[f, j, c]`, `dw[f, j, c] = sum_b g[b, f] x[b, t* + j, c]`,
//! `dbias[f] = sum_b g[b, f]`. Neither pass keeps the `[b, l - h + 1, n]` activations or the
//! unfolded windows.

use crate::{Element, Tensor};

/// `(b, l, d, n, h)` of a valid `x` and `w`.
pub(crate) fn conv_dims<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
) -> (usize, usize, usize, usize, usize) {
    let (xs, ws) = (x.shape(), w.shape());
    assert!(
        xs.len() == 3 && ws.len() == 3 && ws[2] == xs[2] && ws[1] >= 1 && ws[1] <= xs[1],
        "conv_max_pool needs x [b, l, d] and filters [n, h, d] with 1 <= h <= l, got {xs:?} and {ws:?}"
    );
    (xs[0], xs[1], xs[2], ws[0], ws[1])
}

impl<E: Element> Tensor<E> {
    /// The convolution of `self` (`[b, l, d]`) with the filters `w` (`[n, h, d]`),
    /// max-pooled over its `l - h + 1` windows, plus `bias` (`[n]`): `[b, n]`, and the
    /// window `t*` each maximum came from (`b * n` starts, row-major), which
    /// [`conv_max_pool_backward`](Self::conv_max_pool_backward) needs.
    ///
    /// ```
    /// use mclrec_tensor::Tensor;
    ///
    /// // One sequence of three positions with one feature; one filter of height 2.
    /// let x = Tensor::<f64>::from_f64s(&[1.0, 3.0, -2.0], &[1, 3, 1]);
    /// let w = Tensor::from_f64s(&[1.0, 0.5], &[1, 2, 1]);
    /// let (out, at) = x.conv_max_pool(&w, &Tensor::from_f64s(&[0.25], &[1]));
    /// // Windows: 1 + 1.5 = 2.5 and 3 - 1 = 2; the first is the larger.
    /// assert_eq!((out.to_f64s(), at), (vec![2.75], vec![0]));
    /// ```
    ///
    /// # Panics
    /// If `self` is not `[b, l, d]`, `w` not `[n, h, d]` with `1 <= h <= l`, or `bias` not
    /// `[n]`.
    pub fn conv_max_pool(&self, w: &Self, bias: &Self) -> (Self, Vec<usize>) {
        let n = conv_dims(self, w).3;
        assert_eq!(bias.shape(), &[n], "conv_max_pool: one bias per filter");
        self.backend().conv_max_pool(self, w, bias)
    }

    /// `(dx, dw, dbias)` of [`conv_max_pool`](Self::conv_max_pool) at `self` (its input
    /// `x`) given the gradient `g` (`[b, n]`) of its output and the windows `at` it chose.
    ///
    /// # Panics
    /// As [`conv_max_pool`](Self::conv_max_pool), or if `g` is not `[b, n]` or `at` does
    /// not hold `b * n` windows below `l - h + 1`.
    pub fn conv_max_pool_backward(&self, w: &Self, at: &[usize], g: &Self) -> (Self, Self, Self) {
        let (b, l, _, n, h) = conv_dims(self, w);
        assert_eq!(g.shape(), &[b, n], "conv_max_pool_backward: g is [b, n]");
        assert!(
            at.len() == b * n && at.iter().all(|&t| t + h <= l),
            "conv_max_pool_backward: {} windows for [{b}, {n}], each below {}",
            at.len(),
            l - h + 1
        );
        self.backend().conv_max_pool_backward(self, w, at, g)
    }
}
