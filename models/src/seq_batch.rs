//! A batch of item sequences packed end to end: no padding anywhere.

use std::sync::Arc;

use mclrec_tensor::attention::SeqLayout;

/// Sequences stored one after the other, each with its items in time order and position
/// ids counted from 0 at its first item.
///
/// The official code pads every sequence to 50 on the right; with causal attention a
/// sequence's outputs depend only on its own positions, so packing gives the same outputs
/// while every linear layer works on exactly the real positions. Item id 0 inside a
/// sequence (a masked item of an augmented view) is a padding key in attention, as in the
/// official code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqBatch {
    /// `[rows]` item ids of all sequences, concatenated.
    pub items: Vec<usize>,
    /// `[rows]` the position of each row within its sequence.
    pub positions: Vec<usize>,
    /// The length of each sequence (counting masked-to-zero items inside a view).
    pub lens: Vec<usize>,
    /// Where each sequence lies, for attention.
    pub layout: Arc<SeqLayout>,
}

impl SeqBatch {
    /// Packs sequences (each at least one item long).
    ///
    /// ```
    /// use mclrec_models::SeqBatch;
    ///
    /// let b = SeqBatch::new(&[vec![5, 6, 7], vec![8]]);
    /// assert_eq!(b.items, vec![5, 6, 7, 8]);
    /// assert_eq!(b.positions, vec![0, 1, 2, 0]);
    /// assert_eq!(b.layout.last_rows(), vec![2, 3]);
    /// ```
    ///
    /// # Panics
    /// If a sequence is empty.
    pub fn new<S: AsRef<[usize]>>(seqs: &[S]) -> Self {
        let rows = seqs.iter().map(|s| s.as_ref().len()).sum();
        let mut items = Vec::with_capacity(rows);
        let mut positions = Vec::with_capacity(rows);
        let mut lens = Vec::with_capacity(seqs.len());
        let mut offsets = Vec::with_capacity(seqs.len() + 1);
        offsets.push(0);
        for (b, s) in seqs.iter().enumerate() {
            let s = s.as_ref();
            assert!(!s.is_empty(), "SeqBatch: sequence {b} is empty");
            items.extend_from_slice(s);
            positions.extend(0..s.len());
            lens.push(s.len());
            offsets.push(items.len());
        }
        let blocked = items.iter().map(|&i| i == 0).collect();
        SeqBatch {
            items,
            positions,
            lens,
            layout: Arc::new(SeqLayout::new(offsets, blocked)),
        }
    }

    /// Packs several batches into one, in order (how a training step encodes a batch and
    /// its two augmented views in one forward pass).
    pub fn concat(batches: &[&SeqBatch]) -> Self {
        let seqs: Vec<&[usize]> = batches
            .iter()
            .flat_map(|b| (0..b.len()).map(move |s| &b.items[b.layout.range(s)]))
            .collect();
        SeqBatch::new(&seqs)
    }

    /// Builds a batch from a padded matrix and lengths (as the golden data stores it).
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

    /// The number of positions of all sequences.
    pub fn rows(&self) -> usize {
        self.items.len()
    }

    /// The longest sequence.
    pub fn max_len(&self) -> usize {
        self.lens.iter().copied().max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_keeps_every_sequence_in_order() {
        let a = SeqBatch::new(&[vec![1, 2], vec![3]]);
        let b = SeqBatch::new(&[vec![0, 4, 5]]);
        let c = SeqBatch::concat(&[&a, &b]);
        assert_eq!(c.items, vec![1, 2, 3, 0, 4, 5]);
        assert_eq!(c.lens, vec![2, 1, 3]);
        assert_eq!(c.positions, vec![0, 1, 0, 0, 1, 2]);
        assert!(c.layout.blocked(3) && !c.layout.blocked(4));
        assert_eq!(
            c,
            SeqBatch::from_padded(&[1, 2, 0, 3, 0, 0, 0, 4, 5], 3, &[2, 1, 3])
        );
    }
}
