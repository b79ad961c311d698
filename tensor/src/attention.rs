//! Causal self-attention over packed sequences: the description of where each sequence
//! lies ([`SeqLayout`]), which query rows are computed ([`QueryRows`]), and the fused
//! forward and backward as [`Tensor`] methods.
//!
//! A packed batch stores the positions of all its sequences one after the other (no
//! padding), so every linear layer works on exactly the real positions. Attention is the
//! one op that must know where a sequence starts: each query attends to the keys of its own
//! sequence at positions `<=` its own (causal, SASRec), or to all of them (bidirectional,
//! BERT4Rec: [`AttentionSpec::causal`]). Keys whose item is the padding id (a masked item in
//! an augmented view) get the official additive `-10000`, so a query whose visible keys are
//! all padding gets a softmax over their raw scores instead of NaN. (The official code,
//! whose batches are left-padded to `max_len` and whose causal mask is the same `-10000`,
//! spreads that query's softmax over every position of its padded window instead, the
//! future and the padding ones too: the one case where the two differ, met only by a query
//! whose every visible item was masked by the augmentation.)

use crate::dropout_mask::DropoutMask;
use crate::{Element, Tensor};

/// Where each sequence of a packed batch lies, and which of its keys are padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqLayout {
    offsets: Vec<usize>,
    key_blocked: Vec<bool>,
}

impl SeqLayout {
    /// Sequence `s` occupies rows `offsets[s]..offsets[s + 1]`; `key_blocked[t]` marks row
    /// `t` as a padding key.
    ///
    /// # Panics
    /// If `offsets` does not start at 0, decreases, or does not end at `key_blocked.len()`,
    /// or a sequence is empty.
    pub fn new(offsets: Vec<usize>, key_blocked: Vec<bool>) -> Self {
        assert!(
            offsets.first() == Some(&0) && offsets.last() == Some(&key_blocked.len()),
            "SeqLayout: offsets must run from 0 to the number of rows"
        );
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "SeqLayout: every sequence needs at least one position"
        );
        SeqLayout {
            offsets,
            key_blocked,
        }
    }

    /// The number of sequences.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there is no sequence.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of rows (positions) of all sequences.
    pub fn rows(&self) -> usize {
        self.key_blocked.len()
    }

    /// The rows of sequence `s`.
    pub fn range(&self, s: usize) -> std::ops::Range<usize> {
        self.offsets[s]..self.offsets[s + 1]
    }

    /// The row of each sequence's last position.
    pub fn last_rows(&self) -> Vec<usize> {
        self.offsets[1..].iter().map(|&o| o - 1).collect()
    }

    /// Whether row `t` is a padding key.
    pub fn blocked(&self, t: usize) -> bool {
        self.key_blocked[t]
    }

    /// Query rows of every sequence under `queries`.
    pub fn query_rows(&self, queries: QueryRows) -> usize {
        match queries {
            QueryRows::All => self.rows(),
            QueryRows::Last => self.len(),
        }
    }
}

/// Which positions' outputs an attention op computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryRows {
    /// Every position (queries `[rows, d]`).
    All,
    /// Only each sequence's last position (queries `[sequences, d]`): all the last
    /// transformer layer needs, since the model reads its output at `len - 1`.
    Last,
}

/// The settings of one fused attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttentionSpec<'a> {
    /// Where the sequences lie.
    pub layout: &'a SeqLayout,
    /// Which queries are computed.
    pub queries: QueryRows,
    /// The number of heads the hidden axis is split into.
    pub heads: usize,
    /// Dropout on the attention probabilities (training), or `None`.
    pub dropout: Option<DropoutMask>,
    /// `true`: each query sees the keys of its sequence up to its own position (SASRec's
    /// causal mask); `false`: every key of its sequence (BERT4Rec's bidirectional one).
    pub causal: bool,
}

impl AttentionSpec<'_> {
    /// How many keys (from the sequence's first) query `i` of block `b` sees.
    #[inline]
    pub(crate) fn visible(&self, b: &SeqBlock, i: usize) -> usize {
        if self.causal {
            b.query_pos(i) + 1
        } else {
            b.len
        }
    }

    /// For sequence `s`: its first key row, its length, its number of queries, its first
    /// query row, and the offset of its probability block (`heads x queries x len`).
    pub(crate) fn blocks(&self) -> Vec<SeqBlock> {
        let mut prob = 0;
        (0..self.layout.len())
            .map(|s| {
                let r = self.layout.range(s);
                let (len, queries, q_row) = match self.queries {
                    QueryRows::All => (r.len(), r.len(), r.start),
                    QueryRows::Last => (r.len(), 1, s),
                };
                let block = SeqBlock {
                    key_row: r.start,
                    len,
                    queries,
                    q_row,
                    prob,
                };
                prob += self.heads * queries * len;
                block
            })
            .collect()
    }

    /// The number of stored probabilities.
    pub(crate) fn prob_len(&self) -> usize {
        (0..self.layout.len())
            .map(|s| {
                let l = self.layout.range(s).len();
                self.heads * l * if self.queries == QueryRows::All { l } else { 1 }
            })
            .sum()
    }
}

/// One sequence's place in the inputs, outputs and probability buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeqBlock {
    pub key_row: usize,
    pub len: usize,
    pub queries: usize,
    pub q_row: usize,
    pub prob: usize,
}

impl SeqBlock {
    /// The position (within the sequence) of query `i`.
    pub fn query_pos(&self, i: usize) -> usize {
        self.len - self.queries + i
    }
}

impl<E: Element> Tensor<E> {
    /// Fused multi-head attention over packed sequences, causal or bidirectional
    /// ([`AttentionSpec::causal`]): `softmax(q k^T / sqrt(d_h) + mask) v` per sequence and
    /// head, with optional dropout on the probabilities.
    ///
    /// `self` is the queries `[query rows, d]` (see [`QueryRows`]), `kv` the keys and
    /// values side by side, `[rows, 2d]`. Returns the context `[query rows, d]` and the
    /// probabilities (before dropout) that [`attention_backward`](Self::attention_backward)
    /// needs.
    ///
    /// ```
    /// use mclrec_tensor::attention::{AttentionSpec, QueryRows, SeqLayout};
    /// use mclrec_tensor::Tensor;
    ///
    /// // Two sequences of lengths 1 and 2, one head of width 1.
    /// let layout = SeqLayout::new(vec![0, 1, 3], vec![false; 3]);
    /// let spec = AttentionSpec { layout: &layout, queries: QueryRows::Last, heads: 1, dropout: None, causal: true };
    /// let q = Tensor::<f64>::from_f64s(&[1.0, 0.0], &[2, 1]);
    /// let kv = Tensor::from_f64s(&[0.0, 5.0, 0.0, 1.0, 0.0, 3.0], &[3, 2]);
    /// let (ctx, _) = q.attention(&kv, &spec);
    /// // Sequence 2's last query sees both of its keys with equal scores: the mean value.
    /// assert_eq!(ctx.to_f64s(), vec![5.0, 2.0]);
    /// ```
    pub fn attention(&self, kv: &Self, spec: &AttentionSpec<'_>) -> (Self, Self) {
        check_attention(self, kv, spec);
        self.backend().attention(self, kv, spec)
    }

    /// The gradients `(d q, d kv)` of [`attention`](Self::attention) given the gradient of
    /// its context, `self`; `probs` is what the forward returned.
    pub fn attention_backward(
        &self,
        q: &Self,
        kv: &Self,
        probs: &Self,
        spec: &AttentionSpec<'_>,
    ) -> (Self, Self) {
        check_attention(q, kv, spec);
        assert_eq!(
            self.shape(),
            q.shape(),
            "attention_backward: gradient shape"
        );
        assert_eq!(
            probs.numel(),
            spec.prob_len(),
            "attention_backward: probabilities"
        );
        self.backend().attention_backward(self, q, kv, probs, spec)
    }
}

fn check_attention<E: Element>(q: &Tensor<E>, kv: &Tensor<E>, spec: &AttentionSpec<'_>) {
    assert!(
        q.rank() == 2 && kv.rank() == 2,
        "attention: q and kv must be 2-d"
    );
    let d = q.shape()[1];
    assert!(
        spec.heads > 0 && d.is_multiple_of(spec.heads),
        "attention: width {d} is not a multiple of {} heads",
        spec.heads
    );
    assert_eq!(
        q.shape()[0],
        spec.layout.query_rows(spec.queries),
        "attention: query rows"
    );
    assert_eq!(
        kv.shape(),
        [spec.layout.rows(), 2 * d],
        "attention: kv must be [rows, 2 * d]"
    );
}
