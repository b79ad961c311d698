//! Dataset names: the embedded ones, or a path.

use std::path::Path;

use mclrec_trainer::Dataset;

const BEAUTY: &str = include_str!("../../data/amazon-beauty.txt");
const SPORTS: &str = include_str!("../../data/amazon-sports.txt");

/// `beauty` and `sports` are built into the binary; anything else is a file path.
pub fn load_dataset(name: &str) -> Result<Dataset, String> {
    let embedded = match name {
        "beauty" => Some(("amazon-beauty.txt", BEAUTY)),
        "sports" => Some(("amazon-sports.txt", SPORTS)),
        _ => None,
    };
    match embedded {
        Some((file, text)) => Dataset::from_text(text, file).map_err(|e| e.to_string()),
        None => {
            let path = Path::new(name);
            if !path.exists() {
                return Err(format!(
                    "{name}: no such file (datasets are `beauty`, `sports`, or a path)"
                ));
            }
            Dataset::load(path).map_err(|e| e.to_string())
        }
    }
}
