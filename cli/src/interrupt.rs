//! Ctrl-C, SIGTERM (what `timeout` and cluster schedulers send) and SIGHUP during `run`:
//! finish the current batch, write a resumable checkpoint, exit 130.

use std::sync::atomic::Ordering;

use mclrec_trainer::run::STOP_REQUESTED;

/// Installs the handler (a second signal exits at once).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if STOP_REQUESTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing the current batch and writing a checkpoint (interrupt again to quit at once)");
    });
}
