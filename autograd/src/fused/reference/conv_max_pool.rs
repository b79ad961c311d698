//! Caser's horizontal convolution max-pooled over time, written with general ops: what
//! [`FusedOps::conv_max_pool`](crate::fused::FusedOps::conv_max_pool) computes.

use mclrec_tensor::Element;

use crate::Var;

/// The convolution of `x` (`[b, l, d]`) with the filters `w` (`[n, h, d]`), max-pooled over
/// its `l - h + 1` windows, plus `bias` (`[n]`), from `index_select`, `reshape`,
/// `matmul_t`, `max_axis` and `add`:
///
/// ```text
/// U      = the windows x[b, t..t + h, :] unfolded     [b (l - h + 1), h d]
/// y      = U w^T                                      [b, l - h + 1, n]
/// out    = max_t y + bias                             [b, n]
/// ```
///
/// Autograd sends each output's gradient to its first maximising window only; the unfolded
/// windows (`h` copies of every row of `x`) are kept on the tape, which the fused op avoids.
///
/// # Panics
/// If `x` is not `[b, l, d]`, `w` not `[n, h, d]` with `1 <= h <= l`, or `bias` not `[n]`.
pub fn conv_max_pool<'t, E: Element>(x: Var<'t, E>, w: Var<'t, E>, bias: Var<'t, E>) -> Var<'t, E> {
    let (xs, ws) = (x.shape(), w.shape());
    assert!(
        xs.len() == 3 && ws.len() == 3 && ws[2] == xs[2] && ws[1] >= 1 && ws[1] <= xs[1],
        "conv_max_pool needs x [b, l, d] and filters [n, h, d] with 1 <= h <= l, got {xs:?} and {ws:?}"
    );
    let (b, l, d, n, h) = (xs[0], xs[1], xs[2], ws[0], ws[1]);
    let steps = l - h + 1;
    let rows: Vec<usize> = (0..steps).flat_map(|t| t..t + h).collect();
    x.index_select(1, &rows)
        .reshape(&[b * steps, h * d])
        .matmul_t(w.reshape(&[n, h * d]), false, true)
        .reshape(&[b, steps, n])
        .max_axis(1)
        .add(bias)
}
