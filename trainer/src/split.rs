//! The leave-one-out split and the training samples.

use crate::Dataset;

/// One evaluation case: the input sequence (last `max_len` items) and the held-out target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalCase {
    /// The user's index in the dataset.
    pub user: usize,
    /// Input items, oldest first.
    pub input: Vec<usize>,
    /// The item to rank.
    pub target: usize,
}

/// Which held-out item is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Target = the second-to-last item; input = everything before it.
    Valid,
    /// Target = the last item; input = everything before it.
    Test,
}

impl Split {
    /// `valid` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

fn last(items: &[usize], max_len: usize) -> Vec<usize> {
    items[items.len().saturating_sub(max_len)..].to_vec()
}

/// The evaluation cases of every user for `split`, inputs truncated to the last `max_len`.
pub fn eval_cases(data: &Dataset, split: Split, max_len: usize) -> Vec<EvalCase> {
    data.sequences
        .iter()
        .enumerate()
        .map(|(user, s)| {
            let cut = s.len() - if split == Split::Test { 1 } else { 2 };
            EvalCase {
                user,
                input: last(&s[..cut], max_len),
                target: s[cut],
            }
        })
        .collect()
}

/// One training sample: a prefix of a user's training items and the item that follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainSample {
    /// The user's index in the dataset.
    pub user: usize,
    /// Input items (the last `max_len` of the prefix).
    pub input: Vec<usize>,
    /// The next item.
    pub target: usize,
}

/// Every prefix of each user's training part `i_1..i_{L-2}` (length >= 1) with the item
/// after it as target, truncated to the last `max_len` items (Beauty: 131,413 samples).
pub fn train_samples(data: &Dataset, max_len: usize) -> Vec<TrainSample> {
    let mut out = Vec::new();
    for (user, s) in data.sequences.iter().enumerate() {
        let train = &s[..s.len() - 2];
        for k in 1..train.len() {
            out.push(TrainSample {
                user,
                input: last(&train[..k], max_len),
                target: train[k],
            });
        }
    }
    out
}

/// One sample per user of their whole training part: its last item as target and the
/// `max_len - 1` items before it as input, so that input and target together fit
/// `max_len` (the pre-training epochs of S3-Rec, Beauty: 22,363 samples).
pub fn whole_sequence_samples(data: &Dataset, max_len: usize) -> Vec<TrainSample> {
    data.sequences
        .iter()
        .enumerate()
        .filter(|(_, s)| s.len() >= 4)
        .map(|(user, s)| {
            let train = &s[..s.len() - 2];
            let n = train.len() - 1;
            TrainSample {
                user,
                input: last(&train[..n], max_len.saturating_sub(1).max(1)),
                target: train[n],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_one_out() {
        let d = Dataset::from_text("u 1 2 3 4 5\n", "t").unwrap();
        let v = eval_cases(&d, Split::Valid, 50);
        assert_eq!((v[0].input.clone(), v[0].target), (vec![1, 2, 3], 4));
        let t = eval_cases(&d, Split::Test, 3);
        assert_eq!((t[0].input.clone(), t[0].target), (vec![2, 3, 4], 5));
        let s = train_samples(&d, 50);
        assert_eq!(
            s,
            vec![
                TrainSample {
                    user: 0,
                    input: vec![1],
                    target: 2
                },
                TrainSample {
                    user: 0,
                    input: vec![1, 2],
                    target: 3
                },
            ]
        );
        let w = whole_sequence_samples(&d, 3);
        assert_eq!((w[0].input.clone(), w[0].target), (vec![1, 2], 3));
    }
}
