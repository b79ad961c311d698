//! The recurrence of a GRU layer fused: one tape node over the kernel
//! [`mclrec_tensor::Tensor::gru_recurrence`], instead of about fifteen nodes per time step.
//! The maths is in [`mclrec_tensor::gru`]; the same recurrence in general ops is
//! [`reference::gru_recurrence`](super::reference::gru_recurrence).
//!
//! The node keeps the states and `[r, z, n, gh_n]` per position. Its backward gets `dgi`
//! and `dgh` from the kernel, then `dW_hh = dgh^T h_prev` (one product over every position,
//! `h_prev` the states shifted by one within each sequence, zero at its start) and
//! `db_hh = sum dgh`.

use std::sync::Arc;

use mclrec_tensor::attention::SeqLayout;
use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

struct GruBackward<E: Element> {
    gi: NodeId,
    w_hh: (NodeId, Tensor<E>),
    b_hh: Option<NodeId>,
    states: Tensor<E>,
    saved: Tensor<E>,
    layout: Arc<SeqLayout>,
}

impl<E: Element> Backward<E> for GruBackward<E> {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        let (dgi, dgh) =
            g.gru_recurrence_backward(&self.w_hh.1, &self.states, &self.saved, &self.layout);
        // h_prev of row r is the state of row r - 1 of its sequence: row r of
        // [0; states], and the zero row 0 at a sequence's start.
        let h = self.states.shape()[1];
        let mut prev: Vec<usize> = (0..self.layout.rows()).collect();
        for s in 0..self.layout.len() {
            if let Some(start) = self.layout.range(s).next() {
                prev[start] = 0;
            }
        }
        let zero = self.states.full_like(&[1, h], E::zero());
        let h_prev = Tensor::concat(&[&zero, &self.states], 0).index_select(0, &prev);
        grads.add(self.w_hh.0, dgh.matmul_t(&h_prev, true, false));
        if let Some(b) = self.b_hh {
            grads.add(b, dgh.sum_axis(0));
        }
        grads.add(self.gi, dgi);
    }
}

/// [`FusedOps::gru_recurrence`](super::FusedOps::gru_recurrence): the kernel's states, and
/// a backward that keeps what the kernel saved.
pub(super) fn gru_recurrence<'t, E: Element>(
    gi: Var<'t, E>,
    w_hh: Var<'t, E>,
    b_hh: Option<Var<'t, E>>,
    layout: &Arc<SeqLayout>,
) -> Var<'t, E> {
    let w_value = w_hh.value();
    let b_value = b_hh.map(|b| b.value());
    let (states, saved) = gi
        .value()
        .gru_recurrence(&w_value, b_value.as_ref(), layout);
    let mut inputs = vec![gi, w_hh];
    inputs.extend(b_hh);
    gi.tape()
        .record("gru_recurrence", states.clone(), &inputs, || {
            Box::new(GruBackward {
                gi: gi.node(),
                w_hh: (w_hh.node(), w_value),
                b_hh: b_hh.map(|b| b.node()),
                states,
                saved,
                layout: layout.clone(),
            })
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::agreement::agree;
    use crate::fused::{reference, FusedOps};
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::tensor;
    use mclrec_tensor::attention::SeqLayout;
    use proptest::prelude::*;

    /// Packed sequences of the given lengths (each at least 1).
    fn layout(lens: &[usize]) -> Arc<SeqLayout> {
        let mut offsets = vec![0];
        for l in lens {
            offsets.push(offsets.last().unwrap() + l);
        }
        let rows = *offsets.last().unwrap();
        Arc::new(SeqLayout::new(offsets, vec![false; rows]))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn equals_the_reference_on_random_inputs(
            lens in proptest::collection::vec(1usize..5, 1..5),
            h in 1usize..4,
            bias in any::<bool>(),
            seed in 0u64..1000,
        ) {
            let lay = layout(&lens);
            let mut inputs = vec![tensor(&[lay.rows(), 3 * h], seed, -2.0, 2.0), tensor(&[3 * h, h], seed + 1, -1.0, 1.0)];
            if bias {
                inputs.push(tensor(&[3 * h], seed + 2, -1.0, 1.0));
            }
            agree(
                &inputs,
                |v| v[0].gru_recurrence(v[1], v.get(2).copied(), &lay),
                |v| reference::gru_recurrence(v[0], v[1], v.get(2).copied(), &lay),
                1e-12,
            ).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn grad_gru_recurrence(lens in proptest::collection::vec(1usize..4, 1..4), h in 1usize..3, seed in 0u64..1000) {
            let lay = layout(&lens);
            check_gradients(
                &[tensor(&[lay.rows(), 3 * h], seed, -2.0, 2.0), tensor(&[3 * h, h], seed + 1, -1.0, 1.0), tensor(&[3 * h], seed + 2, -1.0, 1.0)],
                |v| v[0].gru_recurrence(v[1], Some(v[2]), &lay),
            ).map_err(TestCaseError::fail)?;
        }
    }
}
