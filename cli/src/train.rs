//! `mclrec-cli run`: train SASRec, CL4SRec or MCLRec and report validation and test metrics.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mclrec_trainer::run::{EpochLog, RunObserver};
use mclrec_trainer::{Dataset, ModelKind, RunError, Schedule, TrainConfig};

use crate::datasets::load_dataset;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelArg {
    Mclrec,
    Sasrec,
    Cl4srec,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScheduleArg {
    ThreeStep,
    TwoStage,
    Joint,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// `beauty`, `sports` (embedded), or a path to a "user item ..." or RecBole `.inter` file.
    #[arg(long, default_value = "beauty")]
    dataset: String,
    /// The model to train.
    #[arg(long, value_enum, default_value = "mclrec")]
    model: ModelArg,
    /// MCLRec's per-batch schedule.
    #[arg(long, value_enum, default_value = "three-step")]
    schedule: ScheduleArg,
    /// Maximum epochs.
    #[arg(long, default_value_t = 100)]
    epochs: usize,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 2023)]
    seed: u64,
    /// Weight of L_cl1 (default: 0 for MCLRec on Beauty, 0.1 for CL4SRec).
    #[arg(long)]
    lambda: Option<f64>,
    /// Weight of L_cl2 + R in the encoder steps (default 0.05; 0 for SASRec and CL4SRec).
    #[arg(long)]
    beta: Option<f64>,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Adam learning rate of the encoder.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Adam learning rate of the augmenters.
    #[arg(long, default_value_t = 1e-3)]
    lr_augmenter: f64,
    /// Hidden and attention dropout.
    #[arg(long, default_value_t = 0.5)]
    dropout: f64,
    /// Longest input sequence.
    #[arg(long, default_value_t = 50)]
    max_len: usize,
    /// Early-stopping metric on validation.
    #[arg(long, default_value = "mrr@10")]
    early_stop_metric: String,
    /// Epochs without improvement before stopping.
    #[arg(long, default_value_t = 10)]
    patience: usize,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Ablation: no L_cl2.
    #[arg(long)]
    no_cl2: bool,
    /// Ablation: no regulariser R.
    #[arg(long)]
    no_reg: bool,
    /// Ablation: one augmenter for both views.
    #[arg(long)]
    shared_augmenter: bool,
    /// The run directory (config.toml, metrics.jsonl, checkpoints, results.json).
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Print results.json on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// The paper's settings for a model, with the model's special cases applied (SASRec:
/// `lambda = beta = 0`; CL4SRec: `beta = 0`, `lambda` 0.1 unless given).
pub fn resolve(
    model: ModelArg,
    schedule: ScheduleArg,
    dataset: &str,
    lambda: Option<f64>,
    beta: Option<f64>,
) -> TrainConfig {
    let model = match model {
        ModelArg::Mclrec => ModelKind::Mclrec,
        ModelArg::Sasrec => ModelKind::Sasrec,
        ModelArg::Cl4srec => ModelKind::Cl4srec,
    };
    let (lambda, beta) = match model {
        ModelKind::Sasrec => (0.0, 0.0),
        ModelKind::Cl4srec => (lambda.unwrap_or(0.1), 0.0),
        ModelKind::Mclrec => (lambda.unwrap_or(0.0), beta.unwrap_or(0.05)),
    };
    let schedule = match schedule {
        ScheduleArg::ThreeStep => Schedule::ThreeStep,
        ScheduleArg::TwoStage => Schedule::TwoStage,
        ScheduleArg::Joint => Schedule::Joint,
    };
    TrainConfig {
        model,
        schedule,
        lambda,
        beta,
        ..TrainConfig::paper_beauty(dataset)
    }
}

impl RunArgs {
    /// The resolved configuration.
    fn config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            lr_augmenter: self.lr_augmenter,
            dropout: self.dropout,
            max_len: self.max_len,
            seed: self.seed,
            threads: self.threads,
            early_stop_metric: self.early_stop_metric.clone(),
            patience: self.patience,
            no_cl2: self.no_cl2,
            no_reg: self.no_reg,
            shared_augmenter: self.shared_augmenter,
            ..resolve(
                self.model,
                self.schedule,
                &self.dataset,
                self.lambda,
                self.beta,
            )
        }
    }
}

/// One summary line per epoch on stderr.
struct EpochLines;

impl RunObserver for EpochLines {
    fn epoch(&mut self, l: &EpochLog) {
        let v = |k: &str| l.valid.get(k).unwrap_or(f64::NAN);
        eprintln!(
            "epoch {:>3}  rec {:.4}  cl1 {:.4}  cl2 {:.4}  R {:.4} | valid HR@20 {:.4}  NDCG@20 {:.4}  MRR@10 {:.4}{} | best {} | {:.1}s ({:.0} samples/s) + eval {:.1}s",
            l.epoch,
            l.losses.rec,
            l.losses.cl1,
            l.losses.cl2,
            l.losses.reg,
            v("hr@20"),
            v("ndcg@20"),
            v("mrr@10"),
            if l.is_best { " *" } else { "" },
            l.best.0,
            l.train_seconds,
            l.samples_per_s,
            l.eval_seconds,
        );
    }
}

pub fn run(args: &RunArgs) -> Result<(), String> {
    let config = args.config();
    config.validate()?;
    if config.threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .build_global()
            .map_err(|e| e.to_string())?;
    }
    let data: Dataset = load_dataset(&config.dataset)?;
    let (out, resume) = match &args.resume {
        Some(dir) => (dir.clone(), true),
        None => (args.out.clone(), false),
    };
    {
        eprintln!(
            "training {:?} on {} ({} users, {} items) -> {}",
            config.model,
            data.name,
            data.n_users(),
            data.n_items(),
            out.display()
        );
    }
    let result = mclrec_trainer::run(&config, &data, &out, resume, &mut EpochLines).map_err(
        |e| match e {
            RunError::Invalid(m)
            | RunError::NonFinite(m)
            | RunError::Interrupted(m)
            | RunError::Io(m) => m,
        },
    )?;
    if args.json {
        print!(
            "{}",
            std::fs::read_to_string(&result.results_path).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "best epoch {} of {} (results in {})",
            result.best_epoch,
            result.epochs_run,
            result.results_path.display()
        );
        print!("{}", result.valid.table("valid"));
        print!("{}", result.test.table("test"));
    }
    Ok(())
}
