//! Finding `../shared/reference/`, which CI has beside the repository.

use std::path::PathBuf;

/// `../shared/reference` (or `$MCLREC_SHARED/reference`), or `None` with a visible message.
pub fn reference_dir(test: &str) -> Option<PathBuf> {
    let shared = std::env::var_os("MCLREC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("reference");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped {test}: {} is absent", dir.display());
        None
    }
}
