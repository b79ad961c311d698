//! `mclrec-cli run`: train SASRec, CL4SRec or MCLRec and report validation and test metrics.
//!
//! Settings come from, in increasing priority: the paper's settings for the dataset, a TOML
//! file (`--config`, the same keys as the `config.toml` a run writes), and flags.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use mclrec_trainer::{ModelKind, RunError, Schedule, TrainConfig};
use serde::Deserialize;

use crate::datasets::load_dataset;
use crate::progress::Progress;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelArg {
    Mclrec,
    Sasrec,
    Cl4srec,
}

impl From<ModelArg> for ModelKind {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Mclrec => ModelKind::Mclrec,
            ModelArg::Sasrec => ModelKind::Sasrec,
            ModelArg::Cl4srec => ModelKind::Cl4srec,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScheduleArg {
    ThreeStep,
    TwoStage,
    Joint,
}

impl From<ScheduleArg> for Schedule {
    fn from(s: ScheduleArg) -> Self {
        match s {
            ScheduleArg::ThreeStep => Schedule::ThreeStep,
            ScheduleArg::TwoStage => Schedule::TwoStage,
            ScheduleArg::Joint => Schedule::Joint,
        }
    }
}

/// The settings a TOML file may hold: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    dataset: Option<String>,
    model: Option<ModelKind>,
    schedule: Option<Schedule>,
    epochs: Option<usize>,
    batch_size: Option<usize>,
    lr: Option<f64>,
    lr_augmenter: Option<f64>,
    lambda: Option<f64>,
    beta: Option<f64>,
    dropout: Option<f64>,
    max_len: Option<usize>,
    seed: Option<u64>,
    threads: Option<usize>,
    device: Option<String>,
    early_stop_metric: Option<String>,
    patience: Option<usize>,
    no_cl2: Option<bool>,
    no_reg: Option<bool>,
    shared_augmenter: Option<bool>,
    eval_chunk: Option<usize>,
    out: Option<String>,
}

/// Training options; every one is also a key of the `--config` file.
#[derive(Args, Debug, Default)]
pub struct TrainArgs {
    /// A TOML file of settings (flags override it; see docs/config.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// `beauty`, `sports` (built in), or a path to a "user item ..." or RecBole `.inter` file [default: beauty].
    #[arg(long)]
    pub dataset: Option<String>,
    /// The model [default: mclrec].
    #[arg(long, value_enum)]
    pub model: Option<ModelArg>,
    /// MCLRec's per-batch schedule [default: three-step].
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// Maximum epochs [default: 100].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size [default: 256].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate of the encoder [default: 0.001].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Adam learning rate of the augmenters [default: 0.001].
    #[arg(long, allow_negative_numbers = true)]
    pub lr_augmenter: Option<f64>,
    /// Weight of L_cl1 [default: paper's for the dataset; 0.1 for CL4SRec; 0 for SASRec].
    #[arg(long, allow_negative_numbers = true)]
    pub lambda: Option<f64>,
    /// Weight of L_cl2 + R in the encoder steps [default: paper's for the dataset; 0 for SASRec and CL4SRec].
    #[arg(long, allow_negative_numbers = true)]
    pub beta: Option<f64>,
    /// Hidden and attention dropout [default: 0.5].
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f64>,
    /// Longest input sequence [default: 50].
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Seed of every random draw [default: 2023].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads, 0 = one per core [default: 0].
    #[arg(long)]
    pub threads: Option<usize>,
    /// `cpu`, `cuda` or `cuda:N` [default: cpu].
    #[arg(long)]
    pub device: Option<String>,
    /// Validation metric for early stopping and the best checkpoint [default: mrr@10].
    #[arg(long)]
    pub early_stop_metric: Option<String>,
    /// Epochs without improvement before stopping [default: 10].
    #[arg(long)]
    pub patience: Option<usize>,
    /// Ablation: no L_cl2.
    #[arg(long)]
    pub no_cl2: bool,
    /// Ablation: no regulariser R.
    #[arg(long)]
    pub no_reg: bool,
    /// Ablation: one augmenter for both views.
    #[arg(long)]
    pub shared_augmenter: bool,
    /// Users per evaluation chunk [default: 128].
    #[arg(long)]
    pub eval_chunk: Option<usize>,
    /// A first look: 3 epochs unless --epochs is given.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// The run directory (config.toml, metrics.jsonl, checkpoints, plots, results.json) [default: runs/<model>-<dataset>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint (its settings are used;
    /// only --epochs may be changed).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Print results.json on stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
}

fn read_file_config(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read ({e})", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        // toml's message spans several lines (with a caret); keep it to one.
        let msg = e.message().to_string();
        let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
        match line {
            Some(l) => format!("{}:{l}: {msg}", path.display()),
            None => format!("{}: {msg}", path.display()),
        }
    })
}

impl TrainArgs {
    /// Resolves defaults, the config file and the flags into one configuration, and where
    /// the run goes.
    pub fn resolve(&self, out: Option<&Path>) -> Result<(TrainConfig, PathBuf), String> {
        let file = match &self.config {
            Some(p) => read_file_config(p)?,
            None => FileConfig::default(),
        };
        let dataset = self
            .dataset
            .clone()
            .or(file.dataset)
            .unwrap_or_else(|| "beauty".into());
        let model: ModelKind = self
            .model
            .map(Into::into)
            .or(file.model)
            .unwrap_or(ModelKind::Mclrec);
        let base = TrainConfig::paper(&dataset);
        let lambda = self.lambda.or(file.lambda);
        let beta = self.beta.or(file.beta);
        let (lambda, beta) = match model {
            ModelKind::Sasrec => (0.0, 0.0),
            ModelKind::Cl4srec => (lambda.unwrap_or(0.1), 0.0),
            ModelKind::Mclrec => (lambda.unwrap_or(base.lambda), beta.unwrap_or(base.beta)),
        };
        let quick_epochs = if self.quick { Some(3) } else { None };
        let config = TrainConfig {
            model,
            schedule: self
                .schedule
                .map(Into::into)
                .or(file.schedule)
                .unwrap_or(base.schedule),
            epochs: self
                .epochs
                .or(quick_epochs)
                .or(file.epochs)
                .unwrap_or(base.epochs),
            batch_size: self
                .batch_size
                .or(file.batch_size)
                .unwrap_or(base.batch_size),
            lr: self.lr.or(file.lr).unwrap_or(base.lr),
            lr_augmenter: self
                .lr_augmenter
                .or(file.lr_augmenter)
                .unwrap_or(base.lr_augmenter),
            lambda,
            beta,
            dropout: self.dropout.or(file.dropout).unwrap_or(base.dropout),
            max_len: self.max_len.or(file.max_len).unwrap_or(base.max_len),
            seed: self.seed.or(file.seed).unwrap_or(base.seed),
            threads: self.threads.or(file.threads).unwrap_or(base.threads),
            device: self
                .device
                .clone()
                .or(file.device)
                .unwrap_or(base.device.clone()),
            early_stop_metric: self
                .early_stop_metric
                .clone()
                .or(file.early_stop_metric)
                .unwrap_or(base.early_stop_metric.clone()),
            patience: self.patience.or(file.patience).unwrap_or(base.patience),
            no_cl2: self.no_cl2 || file.no_cl2.unwrap_or(false),
            no_reg: self.no_reg || file.no_reg.unwrap_or(false),
            shared_augmenter: self.shared_augmenter || file.shared_augmenter.unwrap_or(false),
            eval_chunk: self
                .eval_chunk
                .or(file.eval_chunk)
                .unwrap_or(base.eval_chunk),
            dataset,
        };
        config.validate()?;
        // Checked here so that a bad device fails before anything is written.
        mclrec_tensor::Device::parse(&config.device)
            .map_err(|e| format!("--device {}: {e}", config.device))?;
        let default_out = || {
            let stem = Path::new(&config.dataset)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            PathBuf::from(format!(
                "runs/{}-{stem}",
                format!("{:?}", config.model).to_lowercase()
            ))
        };
        let out = out
            .map(Path::to_path_buf)
            .or(file.out.map(PathBuf::from))
            .unwrap_or_else(default_out);
        Ok((config, out))
    }
}

/// Builds the process's worker pool once (`threads` = 0: one per core), with the calling
/// thread as its worker 0, and flushes subnormal floats to zero on all of them
/// ([`mclrec_tensor::flush_denormals`]: an MCLRec epoch 1.7x faster on an AVX-512 Xeon).
/// A parallel op called from outside the pool is queued to a worker and the caller sleeps
/// until it is done, a wake-up of tens of microseconds for each of the thousands of ops in
/// a training batch; from a worker, the op's first half runs at once on the caller and the
/// other worker steals the rest.
pub fn set_threads(threads: usize) -> Result<(), String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .use_current_thread()
        .build_global()
        .map_err(|e| format!("cannot start {threads} worker threads: {e}"))?;
    mclrec_tensor::flush_denormals(true);
    Ok(())
}

/// Exit code 130: interrupted by Ctrl-C, resumable.
pub const INTERRUPTED: u8 = 130;

pub fn run(args: &RunArgs) -> Result<(), (String, u8)> {
    let fail = |m: String| (m, 2u8);
    let (config, out, resume) = match &args.resume {
        Some(dir) => {
            // The run's own settings; --epochs may extend it.
            let stored = dir.join("config.toml");
            if !stored.is_file() {
                return Err(fail(format!(
                    "{}: not a run directory (no config.toml)",
                    dir.display()
                )));
            }
            let again = TrainArgs {
                config: Some(stored),
                epochs: args.train.epochs,
                ..Default::default()
            };
            let (c, _) = again.resolve(Some(dir)).map_err(fail)?;
            (c, dir.clone(), true)
        }
        None => {
            let (c, o) = args.train.resolve(args.out.as_deref()).map_err(fail)?;
            (c, o, false)
        }
    };
    set_threads(config.threads).map_err(fail)?;
    let data = load_dataset(&config.dataset).map_err(fail)?;
    crate::interrupt::install();
    eprintln!(
        "training {} on {} ({} users, {} items, {} threads) -> {}",
        format!("{:?}", config.model).to_lowercase(),
        data.name,
        data.n_users(),
        data.n_items(),
        rayon::current_num_threads(),
        out.display()
    );
    let mut progress = Progress::new(&config);
    let result = mclrec_trainer::run(&config, &data, &out, resume, &mut progress);
    progress.finish();
    let result = match result {
        Ok(r) => r,
        Err(RunError::Interrupted(m)) => return Err((m, INTERRUPTED)),
        Err(e) => return Err(fail(e.to_string())),
    };
    if let Err(e) = crate::plots::draw(&out) {
        eprintln!("warning: plots not drawn: {e}");
    }
    if args.json {
        print!(
            "{}",
            std::fs::read_to_string(&result.results_path).map_err(|e| fail(e.to_string()))?
        );
    } else {
        println!(
            "best epoch {} ({} trained this run); results in {}",
            result.best_epoch,
            result.epochs_run,
            result.results_path.display()
        );
        print!("{}", result.valid.table("valid"));
        print!("{}", result.test.table("test"));
    }
    Ok(())
}
