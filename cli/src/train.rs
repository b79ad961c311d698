//! `mclrec-cli run`: train a model of the family (BPR, GRU4Rec, Caser, SASRec, BERT4Rec,
//! S3-Rec, CL4SRec, MCLRec) and report validation and test metrics.
//!
//! Settings come from, in increasing priority: the paper's settings for the dataset, a TOML
//! file (`--config`, the same keys as the `config.toml` a run writes), and flags.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use mclrec_trainer::run::{changed_settings, RESUMABLE_CHANGES};
use mclrec_trainer::{
    EvalProtocol, LossKind, ModelKind, Preset, RunError, RunMode, Schedule, TrainConfig,
};
use serde::Deserialize;

use crate::datasets::{load_source, Source};
use crate::progress::Progress;

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

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PresetArg {
    Beauty,
    Sports,
    Yelp,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Self {
        match p {
            PresetArg::Beauty => Preset::Beauty,
            PresetArg::Sports => Preset::Sports,
            PresetArg::Yelp => Preset::Yelp,
        }
    }
}

/// The settings a TOML file may hold: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    dataset: Option<String>,
    init: Option<String>,
    dataset_sha256: Option<String>,
    preset: Option<Preset>,
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
    loss: Option<LossKind>,
    eval: Option<EvalProtocol>,
    eval_chunk: Option<usize>,
    mask_ratio: Option<f64>,
    pretrain_epochs: Option<usize>,
    pretrained: Option<String>,
    out: Option<String>,
}

/// Training options; every one is also a key of the `--config` file.
#[derive(Args, Clone, Debug, Default)]
pub struct TrainArgs {
    /// A TOML file of settings (flags override it; see docs/config.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// `beauty`, `sports` (built in), or a path to a "user item ..." or RecBole `.inter` file [default: beauty].
    #[arg(long)]
    pub dataset: Option<String>,
    /// The paper's settings of this dataset (lambda, beta) [default: the built-in dataset's,
    /// also for a copy of its file given by path; Beauty's for any other file].
    #[arg(long, value_enum)]
    pub preset: Option<PresetArg>,
    /// Start the encoder from these weights (a checkpoint, official safetensors or a PyTorch
    /// `.pth`) instead of a fresh initialisation.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// The model: bpr, gru4rec, caser, sasrec, bert4rec, s3rec-mip, cl4srec or mclrec
    /// [default: mclrec].
    #[arg(long)]
    pub model: Option<ModelKind>,
    /// MCLRec's per-batch schedule [default: three-step].
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// Maximum epochs [default: 100].
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Batch size [default: 256].
    #[arg(long, allow_negative_numbers = true)]
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
    /// Dropout [default: the model's paper's: 0.5 for the transformers but BERT4Rec's 0.2;
    /// GRU4Rec 0.3, Caser 0.4, BPR 0].
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f64>,
    /// Longest input sequence [default: 50; Caser's window 5].
    #[arg(long, allow_negative_numbers = true)]
    pub max_len: Option<usize>,
    /// Seed of every random draw [default: 2023].
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Worker threads, 0 = one per core [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// `cpu`, `cuda` or `cuda:N` [default: cpu].
    #[arg(long)]
    pub device: Option<String>,
    /// Validation metric for early stopping and the best checkpoint [default: mrr@10].
    #[arg(long)]
    pub early_stop_metric: Option<String>,
    /// Epochs without improvement before stopping [default: 10].
    #[arg(long, allow_negative_numbers = true)]
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
    /// Next-item loss: `ce` (softmax over all items), `bce` (one sampled negative per
    /// target) or `bpr` (pairwise, one sampled negative) [default: bpr for BPR, else ce].
    #[arg(long)]
    pub loss: Option<LossKind>,
    /// Validation and test ranking: `full` (all items), `uni100` / `pop100` (100 negatives
    /// drawn uniformly / by popularity, the same for every model) [default: full].
    #[arg(long)]
    pub eval: Option<EvalProtocol>,
    /// Users per evaluation chunk [default: 128].
    #[arg(long, allow_negative_numbers = true)]
    pub eval_chunk: Option<usize>,
    /// BERT4Rec, S3-Rec: probability that an item of a training sequence is masked
    /// [default: 0.2].
    #[arg(long, allow_negative_numbers = true)]
    pub mask_ratio: Option<f64>,
    /// S3-Rec: pre-training epochs before the --epochs of fine-tuning [default: 300].
    #[arg(long, allow_negative_numbers = true)]
    pub pretrain_epochs: Option<usize>,
    /// S3-Rec: fine-tune the last checkpoint of this pre-training run instead of
    /// pre-training first.
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// A first look: 3 epochs unless --epochs is given.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// The run directory (config.toml, metrics.jsonl, checkpoints, plots, results.json); one
    /// that holds a run is refused [default: runs/<model>-<dataset>, or the first of -2, -3,
    /// ... that is free].
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Replace the run in --out (its files are removed first).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Continue the run in this directory from its last checkpoint, with its own settings
    /// (only --epochs, --patience and --threads may be given).
    #[arg(long, conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Print results.json on stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
}

fn read_file_config(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read ({e})", path.display()))?;
    parse_file_config(&text, &path.display().to_string())
}

/// Parses a `--config` file's text (`label` names it in the one-line error).
fn parse_file_config(text: &str, label: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| {
        // toml's message spans several lines (with a caret); keep it to one.
        let msg = e.message().trim().replace('\n', " ");
        let line = e
            .span()
            .and_then(|s| text.get(..s.start))
            .map(|before| before.matches('\n').count() + 1);
        match line {
            Some(l) => format!("{label}:{l}: {msg}"),
            None => format!("{label}: {msg}"),
        }
    })
}

/// A resolved `run`: the configuration, where it goes, its data, and how the paper's
/// per-dataset settings were chosen.
pub struct Resolved {
    /// The configuration.
    pub config: TrainConfig,
    /// The run directory.
    pub out: PathBuf,
    /// The dataset.
    pub source: Source,
    /// Which preset applies and why (printed at the start of a run).
    pub preset: String,
}

/// Worker threads above this many per core only slow a run down (spin and wake-ups).
const MAX_THREADS_PER_CORE: usize = 4;

impl TrainArgs {
    /// Resolves defaults, the config file and the flags into one configuration, reads the
    /// dataset, and says where the run goes.
    pub fn resolve(&self, out: Option<&Path>) -> Result<Resolved, String> {
        let file = match &self.config {
            Some(p) => read_file_config(p)?,
            None => FileConfig::default(),
        };
        let dataset = self
            .dataset
            .clone()
            .or(file.dataset)
            .unwrap_or_else(|| "beauty".into());
        let source = load_source(&dataset)?;
        let init = match self.init.clone().or(file.init.map(PathBuf::from)) {
            Some(p) => std::fs::canonicalize(&p)
                .map_err(|e| format!("--init {}: {e}", p.display()))?
                .to_string_lossy()
                .into_owned(),
            None => String::new(),
        };
        if let Some(pinned) = file.dataset_sha256.filter(|h| *h != source.sha256) {
            return Err(format!(
                "{dataset} has changed: its SHA-256 is {} but {} expects {pinned}",
                source.sha256,
                self.config
                    .as_deref()
                    .unwrap_or(Path::new("the config"))
                    .display()
            ));
        }
        let (preset, preset_note) = match self.preset.map(Preset::from).or(file.preset) {
            Some(p) => (p, format!("preset {} (as given)", p.name())),
            None => match source.built_in {
                Some(p) if source.name == p.name() => (p, format!("preset {}", p.name())),
                Some(p) => (
                    p,
                    format!("preset {} (the file is the built-in {} data)", p.name(), p.name()),
                ),
                None => (
                    Preset::Beauty,
                    "preset beauty (the default for a dataset given by path; --preset sports|yelp for another)"
                        .to_string(),
                ),
            },
        };
        let model: ModelKind = self.model.or(file.model).unwrap_or(ModelKind::Mclrec);
        let paper = mclrec_trainer::registry::paper_defaults(model);
        let base = TrainConfig::for_preset(&source.name, preset);
        let lambda = self.lambda.or(file.lambda);
        let beta = self.beta.or(file.beta);
        let (lambda, beta) = match model {
            ModelKind::Sasrec => (0.0, 0.0),
            ModelKind::Cl4srec => (lambda.unwrap_or(0.1), 0.0),
            ModelKind::Mclrec => (lambda.unwrap_or(base.lambda), beta.unwrap_or(base.beta)),
            _ => (0.0, 0.0),
        };
        let pretrained = match self
            .pretrained
            .clone()
            .or(file.pretrained.map(PathBuf::from))
        {
            Some(_) if model != ModelKind::S3recMip => {
                return Err(format!(
                    "--pretrained is for s3rec-mip, not {}",
                    model.name()
                ))
            }
            Some(p) => std::fs::canonicalize(&p)
                .map_err(|e| format!("--pretrained {}: {e}", p.display()))?
                .to_string_lossy()
                .into_owned(),
            None => String::new(),
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
            dropout: self.dropout.or(file.dropout).unwrap_or(paper.dropout),
            max_len: self.max_len.or(file.max_len).unwrap_or(paper.max_len),
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
            loss: self.loss.or(file.loss).unwrap_or(paper.loss),
            eval: self.eval.or(file.eval).unwrap_or(base.eval),
            eval_chunk: self
                .eval_chunk
                .or(file.eval_chunk)
                .unwrap_or(base.eval_chunk),
            mask_ratio: self
                .mask_ratio
                .or(file.mask_ratio)
                .unwrap_or(base.mask_ratio),
            pretrain_epochs: self
                .pretrain_epochs
                .or(file.pretrain_epochs)
                .unwrap_or(base.pretrain_epochs),
            pretrained,
            dataset: source.name.clone(),
            dataset_sha256: source.sha256.clone(),
            init,
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
            mclrec_trainer::run_dir::fresh(&PathBuf::from(format!(
                "runs/{}-{stem}",
                config.model.name()
            )))
        };
        let out = out
            .map(Path::to_path_buf)
            .or(file.out.map(PathBuf::from))
            .unwrap_or_else(default_out);
        Ok(Resolved {
            config,
            out,
            source,
            preset: preset_note,
        })
    }
}

/// The settings that decide what a run computes, on one line.
fn settings_line(c: &TrainConfig, preset: &str) -> String {
    let mut line = format!(
        "settings: {preset}; model {} lambda {} beta {} lr {} batch {} dropout {} max-len {} epochs {} patience {} seed {} loss {} eval {} stop on {}",
        c.model.name(), c.lambda, c.beta, c.lr, c.batch_size, c.dropout, c.max_len, c.epochs, c.patience, c.seed,
        c.loss.name(), c.eval.name(), c.early_stop_metric
    );
    if c.model == ModelKind::Mclrec {
        line += &format!(" schedule {:?} lr-augmenter {}", c.schedule, c.lr_augmenter);
    }
    if matches!(c.model, ModelKind::Bert4rec | ModelKind::S3recMip) {
        line += &format!(" mask-ratio {}", c.mask_ratio);
    }
    if c.model == ModelKind::S3recMip {
        line += &match c.pretrained.as_str() {
            "" => format!(" pretrain-epochs {}", c.pretrain_epochs),
            dir => format!(" pretrained {dir}"),
        };
    }
    for (on, name) in [
        (c.no_cl2, "no-cl2"),
        (c.no_reg, "no-reg"),
        (c.shared_augmenter, "shared-augmenter"),
    ] {
        if on {
            line += &format!(" {name}");
        }
    }
    line
}

/// The flag of a configuration key (`batch_size` -> `--batch-size`).
fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// `--resume DIR`: the run's own settings with the flags given over them; a flag that
/// changes what the run computes is refused.
fn resolve_resume(dir: &Path, flags: &TrainArgs) -> Result<Resolved, String> {
    let stored_path = dir.join("config.toml");
    if !stored_path.is_file() {
        return Err(format!(
            "{}: not a run directory (no config.toml)",
            dir.display()
        ));
    }
    let text = std::fs::read_to_string(&stored_path)
        .map_err(|e| format!("{}: cannot read ({e})", stored_path.display()))?;
    let stored: TrainConfig =
        toml::from_str(&text).map_err(|e| format!("{}: {}", stored_path.display(), e.message()))?;
    let again = TrainArgs {
        config: Some(stored_path.clone()),
        ..flags.clone()
    };
    let mut r = again.resolve(Some(dir))?;
    // A run stored before paths were made absolute, or before the hash was kept, resumes
    // as it was written.
    if std::fs::canonicalize(&stored.dataset).is_ok_and(|p| p.to_string_lossy() == r.config.dataset)
    {
        r.config.dataset = stored.dataset.clone();
    }
    if stored.dataset_sha256.is_empty() {
        r.config.dataset_sha256.clear();
    }
    let changed: Vec<String> = changed_settings(&stored, &r.config)
        .iter()
        .map(|k| flag(k))
        .collect();
    if !changed.is_empty() {
        let allowed: Vec<String> = RESUMABLE_CHANGES.iter().map(|k| flag(k)).collect();
        return Err(format!(
            "{}: differ from the run's settings in {}; a resumed run keeps its settings (only {} may be given)",
            changed.join(", "),
            stored_path.display(),
            allowed.join(", ")
        ));
    }
    Ok(r)
}

/// Builds the process's worker pool once (`threads` = 0: one per core), with the calling
/// thread as its worker 0, and flushes subnormal floats to zero on all of them
/// ([`mclrec_tensor::flush_denormals`]: an MCLRec epoch 1.7x faster on an AVX-512 Xeon).
/// A parallel op called from outside the pool is queued to a worker and the caller sleeps
/// until it is done, a wake-up of tens of microseconds for each of the thousands of ops in
/// a training batch; from a worker, the op's first half runs at once on the caller and the
/// other worker steals the rest.
pub fn set_threads(threads: usize) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads > MAX_THREADS_PER_CORE * cores {
        return Err(format!(
            "threads {threads} is more than {MAX_THREADS_PER_CORE} per core ({cores} cores here): \
             oversubscribed workers make an epoch many times slower (0 = one per core)"
        ));
    }
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
    let (r, mode) = match &args.resume {
        Some(dir) => (
            resolve_resume(dir, &args.train).map_err(fail)?,
            RunMode::Resume,
        ),
        None => {
            let r = args.train.resolve(args.out.as_deref()).map_err(fail)?;
            // Said before anything is printed (the trainer checks again under the lock).
            if !args.overwrite {
                mclrec_trainer::run_dir::ensure_free(&r.out).map_err(fail)?;
            }
            let mode = if args.overwrite {
                RunMode::Overwrite
            } else {
                RunMode::New
            };
            (r, mode)
        }
    };
    let Resolved {
        config,
        out,
        source,
        preset,
    } = r;
    let data = source.data;
    set_threads(config.threads).map_err(fail)?;
    crate::interrupt::install();
    eprintln!(
        "training {} on {} ({} users, {} items, {} threads) -> {}",
        config.model.name(),
        data.name,
        data.n_users(),
        data.n_items(),
        rayon::current_num_threads(),
        out.display()
    );
    eprintln!("{}", settings_line(&config, &preset));
    if let Some(w) = data.learning_signal_warning() {
        eprintln!("warning: {w}");
    }
    if mode == RunMode::Resume && !out.join("last.safetensors").exists() {
        eprintln!(
            "{}: no checkpoint yet (stopped before its first epoch ended): starting from epoch 1",
            out.display()
        );
    }
    let mut progress = Progress::new(&config);
    let result = mclrec_trainer::run(&config, &data, &out, mode, &mut progress);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = "dataset = \"beauty\"\nmodel = \"mclrec\"\nschedule = \"three-step\"\nepochs = 3\nbatch_size = 64\nlr = 0.001\nlambda = 0.1\nseed = 7\npreset = \"sports\"\nno_cl2 = true\n";

    #[test]
    fn a_config_error_is_one_line_with_its_line_number() {
        let e = parse_file_config("epochs = 3\nbatch_sise = 64\n", "c.toml").unwrap_err();
        assert!(e.starts_with("c.toml:2: unknown field `batch_sise`"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert!(parse_file_config(VALID, "c.toml").is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Random text and random edits of a valid file give a config or a one-line error.
        #[test]
        fn parsing_a_config_never_panics(
            noise in "\\PC{0,80}",
            edits in proptest::collection::vec((any::<usize>(), any::<char>()), 1..6),
        ) {
            let _ = parse_file_config(&noise, "c.toml");
            let mut text: Vec<char> = VALID.chars().collect();
            for &(at, c) in &edits {
                let at = at % text.len();
                text[at] = c;
            }
            let text: String = text.into_iter().collect();
            if let Err(e) = parse_file_config(&text, "c.toml") {
                prop_assert!(!e.contains('\n'), "{}", e);
            }
        }
    }
}
