//! Training progress on the terminal: a bar per epoch (batches, samples/s, ETA, running
//! loss) and one summary line per epoch; plain lines only when stderr is not a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use mclrec_trainer::run::{EpochLog, RunObserver};
use mclrec_trainer::TrainConfig;

pub struct Progress {
    bar: Option<ProgressBar>,
    terminal: bool,
    batch_size: usize,
}

impl Progress {
    pub fn new(config: &TrainConfig) -> Self {
        Progress {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            batch_size: config.batch_size,
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl RunObserver for Progress {
    fn batch(&mut self, epoch: usize, batch: usize, batches: usize, loss: f64) {
        if !self.terminal {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(batches as u64);
            b.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix:>3} [{bar:30}] {pos}/{len} batches  {msg}  eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_prefix(epoch.to_string());
            b
        });
        bar.set_position(batch as u64);
        let rate = bar.per_sec() * self.batch_size as f64;
        bar.set_message(format!("{rate:>6.0} samples/s  L_rec {loss:.4}"));
    }

    fn epoch(&mut self, l: &EpochLog) {
        self.finish();
        let Some(valid) = &l.valid else {
            eprintln!(
                "epoch {:>3}  pre-training loss {:.4} | {:.1}s ({:.0} samples/s)",
                l.epoch, l.losses.rec, l.train_seconds, l.samples_per_s
            );
            return;
        };
        let v = |k: &str| valid.get(k).unwrap_or(f64::NAN);
        eprintln!(
            "epoch {:>3}  L_rec {:.4}  L_cl1 {:.4}  L_cl2 {:.4}  R {:.4} | valid HR@20 {:.4}  NDCG@20 {:.4}  MRR@10 {:.4}{} | best epoch {} | {:.1}s ({:.0} samples/s) + eval {:.1}s",
            l.epoch,
            l.losses.rec,
            l.losses.cl1,
            l.losses.cl2,
            l.losses.reg,
            v("hr@20"),
            v("ndcg@20"),
            v("mrr@10"),
            if l.is_best { " *" } else { "  " },
            l.best.0,
            l.train_seconds,
            l.samples_per_s,
            l.eval_seconds,
        );
    }
}
