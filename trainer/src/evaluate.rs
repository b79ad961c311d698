//! Full-ranking evaluation over all items, with the official conventions.
//!
//! Scores are the model's ([`Recommender::scores`]; for SASRec `h . E[j]`) for every real item `j` (the padding item never ranks); history
//! items are not masked unless asked; `rank = 1 + #{items with a strictly greater score}`.
//! Only the count is needed, so no row is sorted. Users are scored in chunks (sorted by
//! input length, so a chunk pads little), in parallel; memory stays at one
//! `chunk x items` block per thread, never a users x items matrix. Each user's numbers
//! depend only on that user's input, so the result does not depend on the chunk size.
//! With [`EvalOptions::negatives`] a target is ranked among its sampled negatives instead
//! (the `uni100` / `pop100` protocols).

use mclrec_models::Recommender;
use mclrec_tensor::{Device, Element};
use rayon::prelude::*;

use crate::split::EvalCase;
use crate::Metrics;

/// The smallest chunk of users scored at once on a GPU.
const GPU_MIN_CHUNK: usize = 4096;

/// How to evaluate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Users per chunk.
    pub chunk: usize,
    /// Exclude items of the input sequence (other than the target) from the ranking. Off
    /// in the official protocol.
    pub mask_history: bool,
    /// Rank each case's target among these items only (one list per case, in the order of
    /// the cases: [`crate::sampled_eval`]) instead of among all items.
    pub negatives: Option<std::sync::Arc<Vec<Vec<usize>>>>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            chunk: 128,
            mask_history: false,
            negatives: None,
        }
    }
}

/// Per-user ranks and their metrics.
#[derive(Clone, Debug)]
pub struct EvalResult {
    /// The rank of each case's target, in the order of the cases given.
    pub ranks: Vec<usize>,
    /// The averaged metrics.
    pub metrics: Metrics,
}

/// Ranks every case's target among all real items.
pub fn evaluate<E: Element>(
    model: &dyn Recommender<E>,
    cases: &[EvalCase],
    opts: &EvalOptions,
) -> EvalResult {
    let n_items = model.n_items();
    let mut order: Vec<usize> = (0..cases.len()).collect();
    order.sort_by_key(|&i| cases[i].input.len());
    // A GPU needs blocks large enough to fill it; each user's numbers do not depend on
    // the chunk, so this changes nothing but the speed.
    let chunk = match model.store().device() {
        Device::Cpu => opts.chunk.max(1),
        _ => opts.chunk.max(GPU_MIN_CHUNK),
    };
    let ranked: Vec<Vec<(usize, usize)>> = order
        .par_chunks(chunk)
        .map(|idx| {
            let inputs: Vec<&[usize]> = idx.iter().map(|&i| cases[i].input.as_slice()).collect();
            let users: Vec<usize> = idx.iter().map(|&i| cases[i].user).collect();
            let scores = model.scores(&users, &inputs);
            let targets: Vec<usize> = idx.iter().map(|&i| cases[i].target - 1).collect();
            if let Some(negs) = &opts.negatives {
                // A sampled protocol: the target against its own negatives only.
                let s = scores.to_vec();
                return idx
                    .iter()
                    .enumerate()
                    .map(|(r, &i)| {
                        let row = &s[r * n_items..(r + 1) * n_items];
                        let target = row[cases[i].target - 1];
                        let greater = negs[i].iter().filter(|&&j| row[j - 1] > target).count();
                        (i, greater + 1)
                    })
                    .collect();
            }
            // Counted where the scores are: one number per user comes back from a GPU.
            let mut greater = scores.count_greater(&targets);
            if opts.mask_history {
                let s = scores.to_vec();
                for (r, &i) in idx.iter().enumerate() {
                    let row = &s[r * n_items..(r + 1) * n_items];
                    let c = &cases[i];
                    let target = row[c.target - 1];
                    let mut hist: Vec<usize> = c
                        .input
                        .iter()
                        .copied()
                        .filter(|&j| j != 0 && j != c.target)
                        .collect();
                    hist.sort_unstable();
                    hist.dedup();
                    greater[r] -= hist.iter().filter(|&&j| row[j - 1] > target).count();
                }
            }
            idx.iter().zip(greater).map(|(&i, g)| (i, g + 1)).collect()
        })
        .collect();
    let mut ranks = vec![0; cases.len()];
    for (i, r) in ranked.into_iter().flatten() {
        ranks[i] = r;
    }
    let metrics = Metrics::from_ranks(&ranks);
    EvalResult { ranks, metrics }
}

/// The `k` best items for each user's input sequence, best first, with scores (items in
/// `exclude[i]` are skipped for input `i`).
pub fn recommend<E: Element>(
    model: &dyn Recommender<E>,
    users: &[usize],
    inputs: &[&[usize]],
    exclude: &[Vec<usize>],
    k: usize,
) -> Vec<Vec<(usize, E)>> {
    let n_items = model.n_items();
    // A few users: their scores are marked on the host.
    let mut scores = model
        .scores(users, inputs)
        .to_device(Device::Cpu)
        .expect("the CPU is always available");
    let s = scores.as_mut_slice();
    for (r, ex) in exclude.iter().enumerate() {
        for &j in ex.iter().filter(|&&j| j >= 1 && j <= n_items) {
            s[r * n_items + j - 1] = E::neg_infinity();
        }
    }
    let k = k.min(n_items);
    let (vals, idx) = scores.topk_rows(k);
    let v = vals.to_vec();
    (0..inputs.len())
        .map(|r| {
            (0..k)
                .map(|p| (idx[r * k + p] + 1, v[r * k + p]))
                .filter(|(_, s)| s.is_finite())
                .collect()
        })
        .collect()
}
