//! The recurrence of a GRU layer over packed sequences, fused: every time step's
//! hidden-to-hidden product and gates in one op, forward and backward (GRU4Rec's encoder).
//!
//! The input products `gi = x W_ih^T + b_ih` of all positions are one GEMM outside this op.
//! With `gh = h W_hh^T + b_hh` of the previous state `h` (zero at a sequence's start) and
//! the gates stacked `r, z, n` as PyTorch's `nn.GRU`:
//!
//! ```text
//! r  = sigmoid(gi_r + gh_r)        z = sigmoid(gi_z + gh_z)
//! n  = tanh(gi_n + r gh_n)         h' = n + z (h - n)        (= (1 - z) n + z h)
//! ```
//!
//! The forward keeps `[r, z, n, gh_n]` per position (`saved`, `[rows, 4 H]`). The backward
//! runs the steps in reverse with `dh` the state's gradient (the output's plus what the next
//! step sends back):
//!
//! ```text
//! dn = dh (1 - z)      dz = dh (h - n)      da_n = dn (1 - n^2)
//! da_z = dz z (1 - z)  da_r = da_n gh_n r (1 - r)
//! dgi = [da_r, da_z, da_n]       dgh = [da_r, da_z, da_n r]
//! dh_prev = dh z + dgh W_hh
//! ```
//!
//! and returns `dgi` and `dgh` per position; `dW_hh = dgh^T h_prev` and `db_hh = sum dgh`
//! are one product and one sum over all positions, left to the caller. Each step computes
//! only the sequences still going (sorted longest first, they are a prefix of the state):
//! no padding is computed.

use crate::attention::SeqLayout;
use crate::{Element, Tensor};

/// The order the recurrence takes: the sequences longest first (stable), and for each step
/// `t` the packed rows of the sequences still going at `t`, in that order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GruSchedule {
    /// Sequence indices, longest first.
    pub order: Vec<usize>,
    /// The rows of step `t` are `step_rows[step_offsets[t]..step_offsets[t + 1]]`.
    pub step_rows: Vec<usize>,
    /// `longest + 1` offsets into `step_rows`.
    pub step_offsets: Vec<usize>,
}

impl GruSchedule {
    /// The schedule of `layout`'s sequences.
    ///
    /// ```
    /// use mclrec_tensor::attention::SeqLayout;
    /// use mclrec_tensor::gru::GruSchedule;
    ///
    /// // Lengths 1, 3 and 2: rows 0 | 1 2 3 | 4 5.
    /// let s = GruSchedule::new(&SeqLayout::new(vec![0, 1, 4, 6], vec![false; 6]));
    /// assert_eq!(s.order, [1, 2, 0]);
    /// assert_eq!(s.step(0), [1, 4, 0]);
    /// assert_eq!(s.step(1), [2, 5]);
    /// assert_eq!(s.step(2), [3]);
    /// ```
    pub fn new(layout: &SeqLayout) -> Self {
        let mut order: Vec<usize> = (0..layout.len()).collect();
        order.sort_by_key(|&s| std::cmp::Reverse(layout.range(s).len()));
        let longest = order.first().map_or(0, |&s| layout.range(s).len());
        let mut step_rows = Vec::with_capacity(layout.rows());
        let mut step_offsets = Vec::with_capacity(longest + 1);
        step_offsets.push(0);
        for t in 0..longest {
            step_rows.extend(
                order
                    .iter()
                    .map(|&s| layout.range(s))
                    .take_while(|r| r.len() > t)
                    .map(|r| r.start + t),
            );
            step_offsets.push(step_rows.len());
        }
        GruSchedule {
            order,
            step_rows,
            step_offsets,
        }
    }

    /// Steps: the longest sequence's length.
    pub fn steps(&self) -> usize {
        self.step_offsets.len() - 1
    }

    /// The packed rows computed at step `t` (one per sequence still going).
    pub fn step(&self, t: usize) -> &[usize] {
        &self.step_rows[self.step_offsets[t]..self.step_offsets[t + 1]]
    }
}

/// `(rows, H)` of valid GRU recurrence inputs.
pub(crate) fn gru_dims<E: Element>(
    gi: &Tensor<E>,
    w_hh: &Tensor<E>,
    layout: &SeqLayout,
) -> (usize, usize) {
    let (gs, ws) = (gi.shape(), w_hh.shape());
    assert!(
        ws.len() == 2 && ws[0] == 3 * ws[1] && gs.len() == 2 && gs[1] == ws[0],
        "gru_recurrence needs gi [rows, 3H] and w_hh [3H, H], got {gs:?} and {ws:?}"
    );
    assert_eq!(
        gs[0],
        layout.rows(),
        "gru_recurrence: one row of gi per packed position"
    );
    (gs[0], ws[1])
}

impl<E: Element> Tensor<E> {
    /// The GRU recurrence over the packed sequences of `layout`, `self` being the input
    /// products `gi` (`[rows, 3H]`, gates `r, z, n`) and `w_hh` (`[3H, H]`), `b_hh`
    /// (`[3H]`) PyTorch's `weight_hh_l0` / `bias_hh_l0`: the state after every position
    /// (`[rows, H]`, packed as `self`) and what the backward needs (`[rows, 4H]`).
    ///
    /// ```
    /// use mclrec_tensor::attention::SeqLayout;
    /// use mclrec_tensor::Tensor;
    ///
    /// // One sequence of two positions, H = 1; w_hh = 0, so gh = 0 and each state is
    /// // n + z (h - n) with r, z, n from gi alone.
    /// let gi = Tensor::<f64>::from_f64s(&[0.0, 0.0, 1.0, 0.0, 0.0, -1.0], &[2, 3]);
    /// let layout = SeqLayout::new(vec![0, 2], vec![false; 2]);
    /// let (h, _) = gi.gru_recurrence(&Tensor::zeros(&[3, 1]), None, &layout);
    /// let h1 = 1f64.tanh() / 2.0; // z = 1/2, previous state 0
    /// let h2 = (-1f64).tanh() + 0.5 * (h1 - (-1f64).tanh());
    /// let got = h.to_f64s();
    /// assert!((got[0] - h1).abs() < 1e-15 && (got[1] - h2).abs() < 1e-15);
    /// ```
    ///
    /// # Panics
    /// If the shapes disagree with each other or with `layout`.
    pub fn gru_recurrence(
        &self,
        w_hh: &Self,
        b_hh: Option<&Self>,
        layout: &SeqLayout,
    ) -> (Self, Self) {
        let h = gru_dims(self, w_hh, layout).1;
        if let Some(b) = b_hh {
            assert_eq!(b.shape(), &[3 * h], "gru_recurrence: b_hh is [3H]");
        }
        self.backend().gru_recurrence(self, w_hh, b_hh, layout)
    }

    /// `(dgi, dgh)` (`[rows, 3H]` each) of [`gru_recurrence`](Self::gru_recurrence) given
    /// the gradient `self` of its states (`[rows, H]`), the states and `saved` it returned
    /// and `w_hh`: see the [module](crate::gru) for the equations.
    ///
    /// # Panics
    /// If the shapes disagree with each other or with `layout`.
    pub fn gru_recurrence_backward(
        &self,
        w_hh: &Self,
        states: &Self,
        saved: &Self,
        layout: &SeqLayout,
    ) -> (Self, Self) {
        let h = w_hh.shape()[1];
        let rows = layout.rows();
        assert!(
            self.shape() == [rows, h]
                && states.shape() == [rows, h]
                && saved.shape() == [rows, 4 * h],
            "gru_recurrence_backward: g and states [rows, H], saved [rows, 4H]"
        );
        self.backend()
            .gru_recurrence_backward(self, w_hh, states, saved, layout)
    }
}
