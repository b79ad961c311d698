//! The robustness study of the paper's Figure 7: test inputs with random items inserted.

use rand::Rng;

use crate::split::EvalCase;

/// Each case's input with `floor(len * ratio)` random items inserted at random places
/// (items drawn uniformly from `1..=n_items`, never the case's target), then cut to the last
/// `max_len` items. `ratio = 0` returns the cases unchanged.
///
/// ```
/// use mclrec_trainer::{noise::with_noise, EvalCase};
/// use rand::SeedableRng;
///
/// let case = EvalCase { user: 0, input: (1..=10).collect(), target: 11 };
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let noisy = with_noise(&[case], 0.3, 20, 50, &mut rng);
/// assert_eq!(noisy[0].input.len(), 13);
/// assert!(!noisy[0].input.contains(&11));
/// ```
pub fn with_noise(
    cases: &[EvalCase],
    ratio: f64,
    n_items: usize,
    max_len: usize,
    rng: &mut impl Rng,
) -> Vec<EvalCase> {
    assert!(
        ratio >= 0.0 && n_items >= 2,
        "noise needs ratio >= 0 and at least two items"
    );
    cases
        .iter()
        .map(|c| {
            let mut input = c.input.clone();
            let count = (input.len() as f64 * ratio).floor() as usize;
            for _ in 0..count {
                let item = loop {
                    let i = rng.gen_range(1..=n_items);
                    if i != c.target {
                        break i;
                    }
                };
                let at = rng.gen_range(0..=input.len());
                input.insert(at, item);
            }
            let start = input.len().saturating_sub(max_len);
            EvalCase {
                user: c.user,
                input: input[start..].to_vec(),
                target: c.target,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn inserts_floor_len_ratio_items_keeping_the_order_of_the_rest() {
        let cases: Vec<EvalCase> = (1..30)
            .map(|l| EvalCase {
                user: l,
                input: (100..100 + l).collect(),
                target: 7,
            })
            .collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let noisy = with_noise(&cases, 0.2, 50, 50, &mut rng);
        for (c, n) in cases.iter().zip(&noisy) {
            let added = (c.input.len() as f64 * 0.2).floor() as usize;
            assert_eq!(n.input.len(), c.input.len() + added);
            // The original items are still there, in order.
            let kept: Vec<usize> = n.input.iter().copied().filter(|&i| i >= 100).collect();
            assert_eq!(kept, c.input);
            assert!(n.input.iter().all(|&i| i != 7 && i >= 1));
        }
        assert_eq!(with_noise(&cases, 0.0, 50, 50, &mut rng), cases);
        // Cut to max_len from the left, like any input.
        let long = with_noise(&cases[28..], 1.0, 50, 40, &mut rng);
        assert_eq!(long[0].input.len(), 40);
    }
}
