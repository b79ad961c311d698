//! The recurrence of a GRU layer over packed sequences, written with general ops: what
//! [`FusedOps::gru_recurrence`](crate::fused::FusedOps::gru_recurrence) computes.

use mclrec_tensor::attention::SeqLayout;
use mclrec_tensor::gru::GruSchedule;
use mclrec_tensor::Element;

use crate::Var;

/// The state after every position of `layout`'s packed sequences, from the input products
/// `gi` (`[rows, 3H]`, gates `r, z, n`), `w_hh` (`[3H, H]`) and `b_hh` (`[3H]`), with
/// `index_select`, `narrow`, `matmul_t`, `sigmoid`, `tanh` and `concat`, one step per
/// position over the sequences still going (longest first, a prefix of the state):
///
/// ```text
/// gh = h W_hh^T + b_hh
/// r  = sigmoid(gi_r + gh_r)     z = sigmoid(gi_z + gh_z)     n = tanh(gi_n + r gh_n)
/// h' = n + z (h - n)
/// ```
///
/// Autograd differentiates it through every step's nodes; the fused op keeps only
/// `[r, z, n, gh_n]` per position and runs the steps back in one kernel call.
///
/// # Panics
/// If `gi` is not `[layout.rows(), 3H]` or `w_hh` not `[3H, H]`.
pub fn gru_recurrence<'t, E: Element>(
    gi: Var<'t, E>,
    w_hh: Var<'t, E>,
    b_hh: Option<Var<'t, E>>,
    layout: &SeqLayout,
) -> Var<'t, E> {
    let h_dim = w_hh.shape()[1];
    assert_eq!(
        gi.shape(),
        [layout.rows(), 3 * h_dim],
        "gru_recurrence: gi is [rows, 3H]"
    );
    let schedule = GruSchedule::new(layout);
    let seqs = layout.len();
    let tape = gi.tape();
    let mut h = tape.constant(gi.value().full_like(&[seqs, h_dim], E::zero()));
    let mut steps = Vec::with_capacity(schedule.steps());
    for t in 0..schedule.steps() {
        let rows = schedule.step(t);
        let active = rows.len();
        let gi_t = gi.index_select(0, rows);
        let h_prev = h.narrow(0, 0, active);
        let gh = h_prev.matmul_t(w_hh, false, true);
        let gh = b_hh.map_or(gh, |b| gh.add(b));
        let gate = |v: Var<'t, E>, k: usize| v.narrow(1, k * h_dim, h_dim);
        let r = gate(gi_t, 0).add(gate(gh, 0)).sigmoid();
        let z = gate(gi_t, 1).add(gate(gh, 1)).sigmoid();
        let n = gate(gi_t, 2).add(r.mul(gate(gh, 2))).tanh();
        let h_new = n.add(z.mul(h_prev.sub(n)));
        h = if active == seqs {
            h_new
        } else {
            Var::concat(&[h_new, h.narrow(0, active, seqs - active)], 0)
        };
        steps.push(h_new);
    }
    // The steps' states in (step, sequence) order, back to the packed order.
    let mut packed = vec![0; schedule.step_rows.len()];
    for (i, &row) in schedule.step_rows.iter().enumerate() {
        packed[row] = i;
    }
    Var::concat(&steps, 0).index_select(0, &packed)
}
