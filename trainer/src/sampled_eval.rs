//! Sampled-negative evaluation (`uni100`, `pop100`): each target is ranked among 100 items
//! the user never interacted with, drawn uniformly or by popularity.
//!
//! Many papers of this family report such numbers; they are not comparable with full
//! ranking (the paper's protocol) and are always higher. The negatives depend only on the
//! dataset, the user and the protocol (a fixed seed and one random stream per user), so
//! every model and every run is ranked against the same items.

use rand::{Rng, SeedableRng};

use crate::config::EvalProtocol;
use crate::{Dataset, EvalCase};

/// Negatives per user.
pub const NEGATIVES: usize = 100;

/// The seed of the negatives, fixed so that numbers compare across models and runs.
pub const NEGATIVES_SEED: u64 = 0x5EED_0100;

/// For each case, the negatives it is ranked against (`None` for full ranking): up to
/// [`NEGATIVES`] distinct items outside the user's whole sequence, in the order drawn.
pub fn sampled_negatives(
    data: &Dataset,
    cases: &[EvalCase],
    protocol: EvalProtocol,
) -> Option<Vec<Vec<usize>>> {
    let n = data.n_items();
    // Popularity: interaction counts over the whole dataset, as a cumulative table.
    let cumulative: Vec<u64> = match protocol {
        EvalProtocol::Full => return None,
        EvalProtocol::Uni100 => Vec::new(),
        EvalProtocol::Pop100 => {
            let mut count = vec![0u64; n + 1];
            for &i in data.sequences.iter().flatten() {
                count[i] += 1;
            }
            count
                .iter()
                .skip(1)
                .scan(0u64, |acc, &c| {
                    *acc += c;
                    Some(*acc)
                })
                .collect()
        }
    };
    let draw = |rng: &mut rand_chacha::ChaCha8Rng| -> usize {
        if cumulative.is_empty() {
            rng.gen_range(1..=n)
        } else {
            let u = rng.gen_range(0..*cumulative.last().expect("items"));
            1 + cumulative.partition_point(|&c| c <= u)
        }
    };
    Some(
        cases
            .iter()
            .map(|c| {
                let seen = &data.sequences[c.user];
                let mut taken = vec![false; n + 1];
                for &i in seen {
                    taken[i] = true;
                }
                let free = taken.iter().skip(1).filter(|t| !**t).count();
                if free <= NEGATIVES {
                    return (1..=n).filter(|&i| !taken[i]).collect();
                }
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(NEGATIVES_SEED);
                rng.set_stream(c.user as u64);
                let mut out = Vec::with_capacity(NEGATIVES);
                // Rejection; popular items may be taken already, so after many draws the
                // rest come uniformly from the free items.
                let mut attempts = 0;
                while out.len() < NEGATIVES {
                    attempts += 1;
                    let j = if attempts < 50 * NEGATIVES {
                        draw(&mut rng)
                    } else {
                        rng.gen_range(1..=n)
                    };
                    if !taken[j] {
                        taken[j] = true;
                        out.push(j);
                    }
                }
                out
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{eval_cases, Split};

    fn data() -> Dataset {
        let text: String = (0..50)
            .map(|u| {
                let items: Vec<String> = (0..6)
                    .map(|k| ((u * 7 + k * k) % 300 + 1).to_string())
                    .collect();
                format!("u{u} {}\n", items.join(" "))
            })
            .collect();
        Dataset::from_text(&text, "t").unwrap()
    }

    #[test]
    fn negatives_are_fixed_distinct_and_outside_the_history() {
        let d = data();
        let cases = eval_cases(&d, Split::Test, 50);
        for p in [EvalProtocol::Uni100, EvalProtocol::Pop100] {
            let a = sampled_negatives(&d, &cases, p).unwrap();
            assert_eq!(
                a,
                sampled_negatives(&d, &cases, p).unwrap(),
                "deterministic"
            );
            for (c, negs) in cases.iter().zip(&a) {
                assert_eq!(negs.len(), NEGATIVES);
                let mut sorted = negs.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), NEGATIVES, "distinct");
                assert!(negs.iter().all(|i| !d.sequences[c.user].contains(i)));
                assert!(negs.iter().all(|&i| i >= 1 && i <= d.n_items()));
            }
        }
        let uni = sampled_negatives(&d, &cases, EvalProtocol::Uni100).unwrap();
        let pop = sampled_negatives(&d, &cases, EvalProtocol::Pop100).unwrap();
        assert_ne!(uni, pop);
        assert!(sampled_negatives(&d, &cases, EvalProtocol::Full).is_none());
    }
}
