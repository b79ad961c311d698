//! A batch of item sequences, right-padded to the batch's longest sequence.

use mclrec_tensor::{Element, Tensor};

/// Sequences laid out as the official code does: items at positions `0..len`, zeros (the
/// padding id) after, position ids counted from 0 at the first item. Only the batch's
/// longest length is materialised: with causal attention and right padding that gives the
/// same outputs as padding to `max_len`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqBatch {
    /// `[batch * width]` item ids, row-major.
    pub items: Vec<usize>,
    /// The length of each sequence (counting masked-to-zero items inside a view).
    pub lens: Vec<usize>,
    /// The padded width: the longest length in the batch.
    pub width: usize,
}

impl SeqBatch {
    /// Builds a batch from sequences (each at least one item long).
    ///
    /// # Panics
    /// If a sequence is empty.
    pub fn new<S: AsRef<[usize]>>(seqs: &[S]) -> Self {
        let width = seqs
            .iter()
            .map(|s| s.as_ref().len())
            .max()
            .unwrap_or(1)
            .max(1);
        let mut items = vec![0; seqs.len() * width];
        let mut lens = Vec::with_capacity(seqs.len());
        for (b, s) in seqs.iter().enumerate() {
            let s = s.as_ref();
            assert!(!s.is_empty(), "SeqBatch: sequence {b} is empty");
            items[b * width..b * width + s.len()].copy_from_slice(s);
            lens.push(s.len());
        }
        SeqBatch { items, lens, width }
    }

    /// Builds a batch from a padded matrix and lengths (as the golden data stores it),
    /// trimmed to the longest length.
    pub fn from_padded(items: &[usize], width: usize, lens: &[usize]) -> Self {
        let seqs: Vec<&[usize]> = lens
            .iter()
            .enumerate()
            .map(|(b, &l)| &items[b * width..b * width + l])
            .collect();
        SeqBatch::new(&seqs)
    }

    /// The number of sequences.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The additive attention mask `[batch, 1, width, width]`: `0` where query `q` may see
    /// key `k` (`k <= q` and the key is not padding), `-10000` elsewhere (not `-inf`: a
    /// query whose keys are all padding then gets a softmax over raw scores, as in the
    /// official code, instead of NaN).
    pub fn attention_mask<E: Element>(&self) -> Tensor<E> {
        let w = self.width;
        let blocked = E::from_f64(-10000.0);
        let mut m = vec![E::zero(); self.len() * w * w];
        for b in 0..self.len() {
            for q in 0..w {
                for k in 0..w {
                    if k > q || self.items[b * w + k] == 0 {
                        m[(b * w + q) * w + k] = blocked;
                    }
                }
            }
        }
        Tensor::from_vec(m, &[self.len(), 1, w, w])
    }

    /// The flat index (`b * width + len_b - 1`) of each sequence's last position.
    pub fn last_positions(&self) -> Vec<usize> {
        self.lens
            .iter()
            .enumerate()
            .map(|(b, &l)| b * self.width + l - 1)
            .collect()
    }
}
