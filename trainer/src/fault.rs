//! Fault injection for the crash tests: `MCLREC_KILL_AT=POINT[@N]` kills the process with
//! SIGKILL the `N`-th time (default the first) it reaches `POINT`, so a test can stop a run
//! at every file-system step of a checkpoint and check that it resumes to the same numbers.
//!
//! The points are `run:configured` (the run directory written, no epoch yet),
//! `{file}:before-write`, `{file}:temp-written` and `{file}:renamed` for
//! `last.safetensors` and `best.safetensors`, and `metrics:before-append` /
//! `metrics:appended`. Without the variable a point costs one relaxed load.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The environment variable that arms a point.
pub const KILL_AT: &str = "MCLREC_KILL_AT";

fn armed() -> Option<&'static (String, usize)> {
    static ARMED: OnceLock<Option<(String, usize)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(KILL_AT).ok()?;
            match spec.rsplit_once('@') {
                Some((point, n)) => Some((point.to_string(), n.parse().ok()?)),
                None => Some((spec, 1)),
            }
        })
        .as_ref()
}

/// Marks a step; kills the process here when the variable names it.
pub fn point(name: &str) {
    let Some((target, n)) = armed() else {
        return;
    };
    if target != name {
        return;
    }
    static SEEN: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let count = seen
        .get_or_insert_with(HashMap::new)
        .entry(name.to_string())
        .or_insert(0);
    *count += 1;
    if *count == *n {
        #[cfg(unix)]
        // SAFETY: sends a signal to this process; nothing is borrowed.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}
