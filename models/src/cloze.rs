//! Masking items of sequences for the masked-item objectives: BERT4Rec's Cloze task and
//! S3-Rec's masked item prediction.

use rand::{Rng, RngCore};

use crate::SeqBatch;

/// A batch of sequences with some items replaced by the mask token.
#[derive(Clone, Debug)]
pub struct MaskedBatch {
    /// The sequences, masked.
    pub batch: SeqBatch,
    /// The packed rows that were masked.
    pub rows: Vec<usize>,
    /// The item each masked row held.
    pub items: Vec<usize>,
    /// The sequence each masked row is in.
    pub sequence: Vec<usize>,
}

/// Each sample's input followed by its target, cut to its last `max_len` items: the whole
/// sequence a masked-item model learns from.
pub fn whole_sequences(inputs: &[&[usize]], targets: &[usize], max_len: usize) -> Vec<Vec<usize>> {
    inputs
        .iter()
        .zip(targets)
        .map(|(s, &t)| {
            let mut v: Vec<usize> = s.iter().copied().chain([t]).collect();
            v.drain(..v.len().saturating_sub(max_len));
            v
        })
        .collect()
}

/// Masks every item of `seqs` with probability `ratio` (each draw independent, from
/// `rng`), replacing it by `mask_token`; a sequence left with no mask gets its last item
/// masked, so that every sequence teaches something and the last position, the one
/// evaluation asks about, is trained (BERT4Rec, Sun et al. Section 3.6).
pub fn mask_items(
    seqs: &[Vec<usize>],
    ratio: f64,
    mask_token: usize,
    rng: &mut dyn RngCore,
) -> MaskedBatch {
    let (mut rows, mut items, mut sequence) = (Vec::new(), Vec::new(), Vec::new());
    let mut masked = Vec::with_capacity(seqs.len());
    let mut offset = 0;
    for (k, s) in seqs.iter().enumerate() {
        let mut m = s.clone();
        let before = rows.len();
        for (j, it) in m.iter_mut().enumerate() {
            if rng.gen::<f64>() < ratio {
                rows.push(offset + j);
                items.push(*it);
                *it = mask_token;
            }
        }
        if rows.len() == before {
            let j = m.len() - 1;
            rows.push(offset + j);
            items.push(m[j]);
            m[j] = mask_token;
        }
        sequence.resize(rows.len(), k);
        offset += m.len();
        masked.push(m);
    }
    MaskedBatch {
        batch: SeqBatch::new(&masked),
        rows,
        items,
        sequence,
    }
}

/// The evaluation input of a masked-item model: the last `max_len - 1` items, then the
/// mask token, whose output scores the next item.
pub fn with_mask_appended(input: &[usize], max_len: usize, mask_token: usize) -> Vec<usize> {
    let keep = max_len.saturating_sub(1);
    input[input.len().saturating_sub(keep)..]
        .iter()
        .copied()
        .chain([mask_token])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_sequence_gets_a_mask_and_the_labels_are_the_items_it_replaced() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let seqs = vec![vec![1, 2, 3], vec![4], vec![5, 6]];
        for ratio in [0.0, 0.3, 1.0] {
            let m = mask_items(&seqs, ratio, 9, &mut rng);
            let flat: Vec<usize> = seqs.concat();
            for (&r, &it) in m.rows.iter().zip(&m.items) {
                assert_eq!(m.batch.items[r], 9);
                assert_eq!(flat[r], it);
            }
            for (s, range) in [(0, 0..3), (1, 3..4), (2, 4..6)] {
                assert!(m.rows.iter().any(|r| range.contains(r)), "sequence {s}");
            }
            if ratio == 1.0 {
                assert_eq!(m.rows, (0..6).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn whole_sequences_and_eval_inputs_respect_max_len() {
        let w = whole_sequences(&[&[1, 2, 3]], &[4], 3);
        assert_eq!(w, vec![vec![2, 3, 4]]);
        assert_eq!(with_mask_appended(&[1, 2, 3], 3, 9), vec![2, 3, 9]);
        assert_eq!(with_mask_appended(&[1], 3, 9), vec![1, 9]);
    }
}
