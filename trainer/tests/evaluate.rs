//! Properties of full-ranking evaluation on a small random model.

use mclrec_models::{MclrecModel, MclrecSettings, Recommender, SasRecConfig};
use mclrec_tensor::ChaCha8Rng;
use mclrec_trainer::evaluate::{evaluate, EvalOptions};
use mclrec_trainer::{eval_cases, Dataset, Split};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

fn model(n_items: usize, seed: u64) -> MclrecModel<f32> {
    let config = SasRecConfig {
        max_len: 12,
        init_std: 0.5,
        ..SasRecConfig::for_items(n_items)
    };
    let rng = &mut ChaCha8Rng::seed_from_u64(seed);
    MclrecModel::new(config, MclrecSettings::sasrec(), rng)
}

fn data(users: usize, n_items: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let text: String = (0..users)
        .map(|u| {
            let len = rng.gen_range(3..20);
            let items: Vec<String> = (0..len)
                .map(|_| rng.gen_range(1..=n_items).to_string())
                .collect();
            format!("{u} {}\n", items.join(" "))
        })
        .collect();
    Dataset::from_text(&text, "random").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    #[test]
    fn ranks_do_not_depend_on_the_chunk_size(seed in 0u64..1000, chunk in 1usize..40) {
        let m = model(40, seed);
        let cases = eval_cases(&data(60, 40, seed), Split::Test, 12);
        let whole = evaluate(&m, &cases, &EvalOptions { chunk: 4096, ..Default::default() });
        let parts = evaluate(&m, &cases, &EvalOptions { chunk, ..Default::default() });
        prop_assert_eq!(&whole.ranks, &parts.ranks);
        prop_assert_eq!(whole.metrics, parts.metrics);
    }
}

#[test]
fn ranks_match_a_brute_force_count_and_history_masking_only_lifts() {
    let m = model(30, 3);
    let cases = eval_cases(&data(25, 30, 9), Split::Valid, 12);
    let plain = evaluate(&m, &cases, &EvalOptions::default());
    let masked = evaluate(
        &m,
        &cases,
        &EvalOptions {
            mask_history: true,
            ..Default::default()
        },
    );
    for (i, c) in cases.iter().enumerate() {
        let s = m.scores(&[c.user], &[c.input.as_slice()]).to_vec();
        let score = |j: usize| s[j - 1];
        let t = score(c.target);
        let brute = 1 + (1..=30).filter(|&j| score(j) > t + 1e-5).count();
        let brute_hi = 1 + (1..=30).filter(|&j| score(j) > t - 1e-5).count();
        assert!(
            plain.ranks[i] >= brute && plain.ranks[i] <= brute_hi,
            "user {i}"
        );
        assert!(masked.ranks[i] <= plain.ranks[i]);
    }
    assert!(
        masked.ranks.iter().zip(&plain.ranks).any(|(m, p)| m < p),
        "masking changed nothing"
    );
}
