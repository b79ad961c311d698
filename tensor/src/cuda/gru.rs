//! The GRU recurrence ([`Tensor::gru_recurrence`]) and its backward, one launch per step
//! forward (`gru_fwd_step`: hidden products, gates and new state, ping-ponging between two
//! state buffers) and two backward (`gru_bwd_gates`, then `gru_bwd_carry` for the previous
//! state's gradient). The schedule's rows go up once per call.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::{buf, CudaBackend};
use crate::attention::SeqLayout;
use crate::gru::{gru_dims, GruSchedule};
use crate::{Element, Tensor};

pub(super) fn gru_recurrence<E: Element>(
    b: &CudaBackend,
    gi: &Tensor<E>,
    w_hh: &Tensor<E>,
    b_hh: Option<&Tensor<E>>,
    layout: &SeqLayout,
) -> (Tensor<E>, Tensor<E>) {
    let (rows, h) = gru_dims(gi, w_hh, layout);
    let schedule = GruSchedule::new(layout);
    let step_rows = b.upload_idx(&schedule.step_rows);
    let seqs = layout.len();
    let (mut state_a, mut state_b) = (b.zeros::<E>(seqs * h), b.zeros::<E>(seqs * h));
    let mut states = b.alloc::<E>(rows * h);
    let mut saved = b.alloc::<E>(rows * 4 * h);
    let (has_bias, h64) = (b_hh.is_some() as i32, h as u64);
    // Without a bias the kernel never reads it: any buffer stands in.
    let bias = b_hh.map_or(buf(w_hh), buf);
    let f = b.func::<E>("gru_fwd_step");
    for t in 0..schedule.steps() {
        let (lo, hi) = (schedule.step_offsets[t], schedule.step_offsets[t + 1]);
        let active = (hi - lo) as u64;
        let (state_in, state_out) = if t % 2 == 0 {
            (&state_a, &mut state_b)
        } else {
            (&state_b, &mut state_a)
        };
        let rows_t = step_rows.slice(lo..hi);
        if let Some(cfg) = CudaBackend::grid(active as usize * h) {
            let mut l = b.stream.launch_builder(&f);
            l.arg(buf(gi))
                .arg(buf(w_hh))
                .arg(bias)
                .arg(&has_bias)
                .arg(state_in)
                .arg(state_out)
                .arg(&mut states)
                .arg(&mut saved)
                .arg(&rows_t)
                .arg(&active)
                .arg(&h64);
            // SAFETY: gi holds rows 3H elements, w_hh 3H H, bias 3H (when read), the state
            // buffers seqs H >= active H, states rows H, saved rows 4H; rows_t holds active
            // packed rows below `rows`.
            b.check("gru_fwd_step", unsafe { l.launch(cfg) });
        }
    }
    (b.wrap(states, &[rows, h]), b.wrap(saved, &[rows, 4 * h]))
}

pub(super) fn gru_recurrence_backward<E: Element>(
    b: &CudaBackend,
    g: &Tensor<E>,
    w_hh: &Tensor<E>,
    states: &Tensor<E>,
    saved: &Tensor<E>,
    layout: &SeqLayout,
) -> (Tensor<E>, Tensor<E>) {
    let (rows, h) = (layout.rows(), w_hh.shape()[1]);
    let schedule = GruSchedule::new(layout);
    let step_rows = b.upload_idx(&schedule.step_rows);
    let seqs = layout.len();
    // Rows a step has not reached yet stay zero: sequences join the backward at their end.
    let mut carry: CudaSlice<E> = b.zeros(seqs * h);
    let mut direct = b.alloc::<E>(seqs * h);
    let mut dstep = b.alloc::<E>(seqs * 3 * h);
    let mut dgi = b.alloc::<E>(rows * 3 * h);
    let mut dgh = b.alloc::<E>(rows * 3 * h);
    let h64 = h as u64;
    let (gates, carry_f) = (b.func::<E>("gru_bwd_gates"), b.func::<E>("gru_bwd_carry"));
    for t in (0..schedule.steps()).rev() {
        let (lo, hi) = (schedule.step_offsets[t], schedule.step_offsets[t + 1]);
        let active = (hi - lo) as u64;
        let rows_t = step_rows.slice(lo..hi);
        let first = (t == 0) as i32;
        let Some(cfg) = CudaBackend::grid(active as usize * h) else {
            continue;
        };
        let mut l = b.stream.launch_builder(&gates);
        l.arg(buf(g))
            .arg(buf(states))
            .arg(buf(saved))
            .arg(&carry)
            .arg(&mut direct)
            .arg(&mut dstep)
            .arg(&mut dgi)
            .arg(&mut dgh)
            .arg(&rows_t)
            .arg(&active)
            .arg(&h64)
            .arg(&first);
        // SAFETY: g and states hold rows H elements, saved rows 4H, carry and direct seqs H,
        // dstep seqs 3H, dgi and dgh rows 3H; rows_t holds active rows, each after its
        // sequence's first when t > 0.
        b.check("gru_bwd_gates", unsafe { l.launch(cfg) });
        let mut l = b.stream.launch_builder(&carry_f);
        l.arg(buf(w_hh))
            .arg(&direct)
            .arg(&dstep)
            .arg(&mut carry)
            .arg(&active)
            .arg(&h64);
        // SAFETY: w_hh holds 3H H elements, direct and carry seqs H, dstep seqs 3H.
        b.check("gru_bwd_carry", unsafe { l.launch(cfg) });
    }
    (b.wrap(dgi, &[rows, 3 * h]), b.wrap(dgh, &[rows, 3 * h]))
}
