//! Finding `../shared/reference/`, which CI has beside the repository.

use std::path::PathBuf;

/// `../shared/reference` (or `$MCLREC_SHARED/reference`), or `None` with a visible message;
/// with `MCLREC_REQUIRE_REFERENCE` set (as `.ci/run` sets it) a missing folder fails the test.
pub fn reference_dir(test: &str) -> Option<PathBuf> {
    let shared = std::env::var_os("MCLREC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("reference");
    if dir.is_dir() {
        Some(dir)
    } else {
        assert!(
            std::env::var_os("MCLREC_REQUIRE_REFERENCE").is_none(),
            "{test}: {} is absent and MCLREC_REQUIRE_REFERENCE is set",
            dir.display()
        );
        eprintln!("skipped {test}: {} is absent", dir.display());
        None
    }
}
