//! `mclrec-cli run`: train a model of the family (BPR, GRU4Rec, Caser, SASRec, BERT4Rec,
//! S3-Rec, CL4SRec, MCLRec) and report validation and test metrics.
//!
//! Settings come from, in increasing priority: the paper's settings for the dataset and the
//! model, a TOML file (`--config`, the layout of the `config.toml` a run writes), and flags.
//! Every setting, its flag and its default come from the table `mclrec_trainer::SETTINGS`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use mclrec_trainer::run::{changed_settings, RESUMABLE_CHANGES};
use mclrec_trainer::settings::{flag_of, line_of};
use mclrec_trainer::{
    ModelKind, PartialConfig, Preset, RunError, RunMode, Scope, Setting, TrainConfig, SETTINGS,
};

use crate::datasets::{load_source, Source};
use crate::progress::Progress;

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

/// A `--config` file: the settings, and the two keys that are not settings of a run
/// (`preset`, and `out` for the run directory).
#[derive(Debug, Default)]
struct FileConfig {
    /// The file's text (for the line of an error found later).
    text: String,
    settings: PartialConfig,
    preset: Option<Preset>,
    out: Option<String>,
}

/// The flags of every setting of [`SETTINGS`] but those a run writes itself, each with
/// the setting's help and default.
#[derive(Clone, Debug, Default)]
pub struct SettingFlags(pub PartialConfig);

/// The settings that have a flag.
fn flagged() -> impl Iterator<Item = &'static Setting> {
    SETTINGS
        .iter()
        .filter(|s| !matches!(s.scope, Scope::Stored))
}

impl clap::Args for SettingFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        flagged().fold(cmd, |cmd, s| {
            // clap keeps `&'static str` names; the table is static, its flags are made once.
            let long: &'static str = Box::leak(s.key.replace('_', "-").into_boxed_str());
            let arg = clap::Arg::new(s.key).long(long).help(s.help());
            let arg = if s.switch {
                arg.action(clap::ArgAction::SetTrue)
            } else {
                let key = s.key;
                let name: &'static str = Box::leak(s.key.to_uppercase().into_boxed_str());
                arg.action(clap::ArgAction::Set)
                    .allow_negative_numbers(true)
                    .value_name(name)
                    .value_parser(move |text: &str| {
                        PartialConfig::default()
                            .set_text(key, text)
                            .map(|()| text.to_string())
                    })
            };
            cmd.arg(arg)
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for SettingFlags {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = SettingFlags::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for s in flagged() {
            let text = if s.switch {
                matches.get_flag(s.key).then(|| "true".to_string())
            } else {
                matches.get_one::<String>(s.key).cloned()
            };
            if let Some(text) = text {
                self.0.set_text(s.key, &text).map_err(|e| {
                    clap::Error::raw(clap::error::ErrorKind::ValueValidation, e + "\n")
                })?;
            }
        }
        Ok(())
    }
}

/// Training options; every setting is also a key of the `--config` file.
#[derive(Args, Clone, Debug, Default)]
pub struct TrainArgs {
    /// A TOML file of settings (flags override it; see docs/config.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The paper's settings of this dataset (lambda, beta) [default: the built-in dataset's,
    /// also for a copy of its file given by path; Beauty's for any other file].
    #[arg(long, value_enum)]
    pub preset: Option<PresetArg>,
    /// A first look: 3 epochs unless --epochs is given.
    #[arg(long)]
    pub quick: bool,
    /// The settings.
    #[command(flatten)]
    pub settings: SettingFlags,
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
    let mut table: toml::Table = toml::from_str(text).map_err(|e| {
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
    })?;
    let at = |key: &str, msg: String| match line_of(text, None, key) {
        Some(l) => format!("{label}:{l}: {key}: {msg}"),
        None => format!("{label}: {key}: {msg}"),
    };
    let preset = match table.remove("preset") {
        Some(v) => {
            let name = v.as_str().unwrap_or_default();
            Some(Preset::parse(name).ok_or_else(|| {
                at(
                    "preset",
                    format!("`{v}` is not a preset (beauty, sports, yelp)"),
                )
            })?)
        }
        None => None,
    };
    let out = match table.remove("out") {
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| at("out", format!("`{v}` is not a path")))?
                .to_string(),
        ),
        None => None,
    };
    let settings = PartialConfig::from_table(&table, Some(text), label)?;
    Ok(FileConfig {
        text: text.to_string(),
        settings,
        preset,
        out,
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
        let pinned = file.settings.dataset_sha256.clone();
        let mut flags = self.settings.0.clone();
        if self.quick && flags.epochs.is_none() {
            flags.epochs = Some(3);
        }
        let mut given = flags.or(file.settings.clone());
        let dataset = given.dataset.clone().unwrap_or_else(|| "beauty".into());
        let source = load_source(&dataset)?;
        if let Some(pinned) = pinned.filter(|h| *h != source.sha256) {
            return Err(format!(
                "{dataset} has changed: its SHA-256 is {} but {} expects {pinned}",
                source.sha256,
                self.config
                    .as_deref()
                    .unwrap_or(Path::new("the config"))
                    .display()
            ));
        }
        given.dataset = Some(source.name.clone());
        given.dataset_sha256 = Some(source.sha256.clone());
        // Paths are stored absolute, so that a run resumes from any folder.
        for (key, path) in [
            ("init", &mut given.init),
            ("pretrained", &mut given.pretrained),
        ] {
            if let Some(p) = path.as_mut().filter(|p| !p.is_empty()) {
                *p = std::fs::canonicalize(&*p)
                    .map_err(|e| format!("--{key} {p}: {e}"))?
                    .to_string_lossy()
                    .into_owned();
            }
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
        // A file's setting that the model does not use is named with its line.
        let model = given.model.unwrap_or(ModelKind::Mclrec);
        if let (Some(path), Err((key, e))) = (&self.config, file.settings.check_used(model, preset))
        {
            let text = &file.text;
            let line = line_of(text, Some("model"), key).or(line_of(text, None, key));
            return Err(match line {
                Some(l) => format!("{}:{l}: {e}", path.display()),
                None => format!("{}: {e}", path.display()),
            });
        }
        let config = given.resolve(preset)?;
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
        line += &format!(
            " schedule {} lr-augmenter {}",
            c.schedule.name(),
            c.lr_augmenter
        );
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

/// The error for flags that change a resumed run (none: fine).
fn refuse_changes(changed: &[String], stored_path: &Path) -> Result<(), String> {
    if changed.is_empty() {
        return Ok(());
    }
    let allowed: Vec<String> = RESUMABLE_CHANGES.iter().map(|k| flag_of(k)).collect();
    Err(format!(
        "{}: differ from the run's settings in {}; a resumed run keeps its settings (only {} may be given)",
        changed.join(", "),
        stored_path.display(),
        allowed.join(", ")
    ))
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
    // A flag that changes what the run computes is refused before anything is resolved.
    let stored_values = stored.entries();
    let mut changed: Vec<String> = flags
        .settings
        .0
        .given()
        .into_iter()
        .filter(|(key, value)| {
            !RESUMABLE_CHANGES.contains(key)
                && stored_values.iter().any(|(k, v)| k == key && v != value)
        })
        .map(|(key, _)| flag_of(key))
        .collect();
    if flags.preset.is_some() {
        changed.push("--preset".into());
    }
    refuse_changes(&changed, &stored_path)?;
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
        .map(|k| flag_of(k))
        .collect();
    refuse_changes(&changed, &stored_path)?;
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
        assert!(
            e.starts_with("c.toml:2: unknown setting `batch_sise`"),
            "{e}"
        );
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
