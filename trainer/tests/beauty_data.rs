//! The embedded Amazon-Beauty data gives the paper's Table 2 and the official pipeline's
//! sample counts.

use mclrec_trainer::{eval_cases, train_samples, Dataset, Split};

#[test]
fn beauty_matches_the_paper_and_the_official_pipeline() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/amazon-beauty.txt");
    let d = Dataset::load(&path).unwrap();
    assert_eq!(
        (d.n_users(), d.n_items(), d.n_interactions()),
        (22_363, 12_101, 198_502)
    );
    let avg = d.n_interactions() as f64 / d.n_users() as f64;
    assert!((avg - 8.9).abs() < 0.05, "average length {avg}");
    let samples = train_samples(&d, 50);
    assert_eq!(samples.len(), 131_413);
    assert!(samples
        .iter()
        .all(|s| !s.input.is_empty() && s.input.len() <= 50));
    assert_eq!(eval_cases(&d, Split::Test, 50).len(), 22_363);
}
