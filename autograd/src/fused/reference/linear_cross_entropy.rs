//! Cross-entropy over the scores of a linear layer, written with general ops: what
//! [`FusedOps::linear_cross_entropy`](crate::fused::FusedOps::linear_cross_entropy)
//! computes.

use mclrec_tensor::Element;

use crate::Var;

/// Mean cross-entropy of the scores `h w^T` (`h`: `[n, d]`, `w`: `[classes, d]`) against
/// `targets` (`n` class indices), from `matmul_t`, `log_softmax`, `gather`, `sum_all` and
/// `mul_scalar`:
///
/// ```text
/// scores = h w^T                                   [n, classes]
/// L      = -1/n sum_r log softmax(scores_r)[t_r]
/// ```
///
/// Autograd then gives, with `G = (softmax(h w^T) - onehot(t)) / n` and `g` the gradient of
/// `L`: `dh = g G w` and `dw = g G^T h`, through the `[n, classes]` scores and their
/// gradient, which the fused op never stores.
///
/// # Panics
/// If the shapes disagree or a target is out of range.
pub fn linear_cross_entropy<'t, E: Element>(
    h: Var<'t, E>,
    w: Var<'t, E>,
    targets: &[usize],
) -> Var<'t, E> {
    let n = h.shape()[0];
    assert_eq!(targets.len(), n, "linear_cross_entropy: one target per row");
    let scores = h.matmul_t(w, false, true);
    let classes = scores.shape()[1];
    assert!(
        targets.iter().all(|&t| t < classes),
        "linear_cross_entropy: target out of range for {classes} classes"
    );
    scores
        .log_softmax()
        .gather(1, targets, &[n, 1])
        .sum_all()
        .mul_scalar(E::from_f64(-1.0 / n as f64))
}
