//! A training run: epochs, validation, early stopping, checkpoints and the run directory.
//!
//! The run directory holds `config.toml` (the resolved configuration), `item_map.tsv`
//! (item tokens by internal id), `metrics.jsonl`
//! (one line per epoch), `last.safetensors` and `best.safetensors` (checkpoints), and at
//! the end `results.json` (`{"best_epoch": n, "protocol": {"loss": "ce", "eval": "full"},
//! "valid": {...}, "test": {...}}`).
//!
//! Every random draw of epoch `e` comes from a ChaCha8 stream fixed by `(seed, e)`, so a run
//! resumed from the checkpoint of epoch `k` continues exactly as the uninterrupted run.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use mclrec_models::{EpochRole, Recommender};
use mclrec_tensor::{ChaCha8Rng, Device};
use rand::SeedableRng;
use serde_json::json;

use crate::checkpoint::{self, Progress};
use crate::config::TrainConfig;
use crate::evaluate::{evaluate, EvalOptions};
use crate::run_dir::RunDir;
use crate::sampler::LengthBucketSampler;
use crate::split::whole_sequence_samples;
use crate::train_step::{BatchLosses, Learner};
use crate::{eval_cases, train_samples, Dataset, Metrics, Split};
use mclrec_models::weights::write_atomic;

/// What one epoch did (a line of `metrics.jsonl`).
#[derive(Clone, Debug)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean loss terms of the batches' first encoder step.
    pub losses: BatchLosses,
    /// Validation metrics after the epoch (`None` after a pre-training epoch, which is not
    /// validated).
    pub valid: Option<Metrics>,
    /// Training seconds (without validation).
    pub train_seconds: f64,
    /// Validation seconds.
    pub eval_seconds: f64,
    /// Training samples per second.
    pub samples_per_s: f64,
    /// Whether this epoch is the best so far.
    pub is_best: bool,
    /// The best epoch so far and its early-stopping metric.
    pub best: (usize, f64),
}

impl EpochLog {
    fn to_json(&self) -> serde_json::Value {
        let mut line = json!({
            "epoch": self.epoch,
            "loss_rec": self.losses.rec, "loss_cl1": self.losses.cl1,
            "loss_cl2": self.losses.cl2, "loss_reg": self.losses.reg,
            "seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
            "samples_per_s": self.samples_per_s,
        });
        match &self.valid {
            Some(v) => line["valid"] = v.to_json(),
            None => line["role"] = "pretrain".into(),
        }
        line
    }
}

/// The end of a run.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The epoch whose model is reported.
    pub best_epoch: usize,
    /// Its validation metrics.
    pub valid: Metrics,
    /// Its test metrics.
    pub test: Metrics,
    /// The epochs this run trained (a resumed run counts only its own).
    pub epochs_run: usize,
    /// The path of `results.json`.
    pub results_path: PathBuf,
}

/// Observers of a run (the CLI draws progress with these).
pub trait RunObserver {
    /// A batch finished: `(batch, of, running mean L_rec)`.
    fn batch(&mut self, _epoch: usize, _batch: usize, _batches: usize, _loss: f64) {}
    /// An epoch finished.
    fn epoch(&mut self, _log: &EpochLog) {}
}

/// An observer that does nothing.
pub struct Silent;
impl RunObserver for Silent {}

/// Set (e.g. from a Ctrl-C handler) to stop after the current batch with a resumable
/// checkpoint.
pub static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

/// Why a run ended early.
#[derive(Debug)]
pub enum RunError {
    /// Bad configuration or input; nothing was written.
    Invalid(String),
    /// A step's loss was NaN or infinite: that update was skipped and the run stopped; the
    /// last checkpoint (of the previous epoch) is untouched.
    NonFinite(String),
    /// Interrupted: the checkpoint of the last completed epoch is the one to resume from.
    Interrupted(String),
    /// A file could not be written.
    Io(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Invalid(m)
            | RunError::NonFinite(m)
            | RunError::Interrupted(m)
            | RunError::Io(m) => f.write_str(m),
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |e| RunError::Io(format!("{}: {e}", path.display()))
}

/// The ChaCha8 stream of `seed` for `epoch` (epoch 0 = initialisation).
pub fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    rng
}

/// Builds the model a configuration describes for `data` ([`crate::registry::build`]).
pub fn build_model(config: &TrainConfig, data: &Dataset) -> Box<dyn Recommender<f32>> {
    crate::registry::build(config, data.n_users(), data.n_items())
}

/// The weights a run starts from: `--init` (a checkpoint, official safetensors or a
/// PyTorch `.pth`), or the last checkpoint of the pre-training run `--pretrained`.
fn starting_weights(config: &TrainConfig) -> Result<Option<(Vec<u8>, String)>, RunError> {
    let invalid = |e: String| RunError::Invalid(e);
    if !config.pretrained.is_empty() {
        let path = Path::new(&config.pretrained).join("last.safetensors");
        let label = path.display().to_string();
        let stored = checkpoint::stored_config(&path).map_err(invalid)?;
        let pre: TrainConfig = toml::from_str(&stored)
            .map_err(|e| invalid(format!("{label}: bad config record ({})", e.message())))?;
        let done = checkpoint::stored_progress(&path).map_err(invalid)?.epoch;
        if pre.model != config.model || done < pre.pretrain_epochs || pre.pretrain_epochs == 0 {
            return Err(invalid(format!(
                "{label}: not a finished {} pre-training ({} run, {done} of {} pre-training epochs)",
                config.model.name(),
                pre.model.name(),
                pre.pretrain_epochs
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| invalid(format!("{label}: {e}")))?;
        return Ok(Some((bytes, label)));
    }
    if config.init.is_empty() {
        return Ok(None);
    }
    let bytes = mclrec_models::weights::read_weights_file(Path::new(&config.init))
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Some((bytes, config.init.clone())))
}

/// How [`run`] treats its directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// A new run; a directory that already holds a run is refused.
    New,
    /// A new run in place of the one in the directory, whose files are removed first.
    Overwrite,
    /// Continue the run in the directory from its last checkpoint; a run stopped before
    /// its first checkpoint starts again from epoch 1.
    Resume,
}

/// The settings a resumed run may change: they say how long or with how many threads,
/// not what is trained.
pub const RESUMABLE_CHANGES: [&str; 3] = ["epochs", "patience", "threads"];

/// The settings of `a` and `b` that differ (by key), leaving out [`RESUMABLE_CHANGES`].
/// A setting `a`'s model does not use, or a path or hash that `a` leaves empty (a run from
/// before it was stored), is not compared.
pub fn changed_settings(a: &TrainConfig, b: &TrainConfig) -> Vec<String> {
    a.entries()
        .into_iter()
        .zip(b.entries())
        .zip(crate::SETTINGS)
        .filter(|(((k, va), (_, vb)), s)| {
            !RESUMABLE_CHANGES.contains(k)
                && s.scope.used_by(a.model)
                && va.as_str() != Some("")
                && va != vb
        })
        .map(|(((k, _), _), _)| k.to_string())
        .collect()
}

/// The first parameter of `store` holding a NaN or an infinity.
fn non_finite_parameter(store: &mclrec_autograd::ParamStore<f32>) -> Option<String> {
    store
        .iter()
        .find(|(_, p)| p.value.to_vec().iter().any(|v| !v.is_finite()))
        .map(|(_, p)| p.name.clone())
}

/// Trains `config` on `data` in the run directory `out` (see [`RunMode`]), then evaluates
/// the best model on the test split. The configuration and the data are checked before
/// anything in `out` is written, and `out` is locked ([`RunDir`]) while the run goes on.
///
/// Each epoch ends with `last.safetensors` (then `best.safetensors` when it is the best)
/// and a `metrics.jsonl` line; a process killed at any instant leaves a directory that
/// resumes to the numbers of an uninterrupted run. Training never writes a checkpoint with
/// a non-finite value.
///
/// For speed, call it from a thread of the rayon pool and with subnormals flushed
/// ([`mclrec_tensor::flush_denormals`]), as `mclrec-cli run` does: on an Intel CPU an MCLRec
/// epoch is about 1.7x slower without the flush.
pub fn run(
    config: &TrainConfig,
    data: &Dataset,
    out: &Path,
    mode: RunMode,
    obs: &mut dyn RunObserver,
) -> Result<RunResult, RunError> {
    config.validate().map_err(RunError::Invalid)?;
    let device = Device::parse(&config.device)
        .map_err(|e| RunError::Invalid(format!("device {}: {e}", config.device)))?;
    let samples = train_samples(data, config.max_len);
    if samples.is_empty() {
        return Err(RunError::Invalid(format!(
            "{}: no training samples (a user gives some only with 4 or more interactions: \
             an input and a target before the validation and test items)",
            data.name
        )));
    }
    let mut model = build_model(config, data);
    // The starting weights are read and checked before the directory is touched (a run
    // resumed from a checkpoint does not need them).
    let from_checkpoint = mode == RunMode::Resume && out.join("last.safetensors").exists();
    if !from_checkpoint {
        if let Some((bytes, label)) = starting_weights(config)? {
            mclrec_models::weights::init_encoder_from(model.store_mut(), &bytes, &label)
                .map_err(|e| RunError::Invalid(e.to_string()))?;
        }
    }
    // Everything is checked: only now is the directory taken and written.
    let _held = match mode {
        RunMode::New => RunDir::create(out, false),
        RunMode::Overwrite => RunDir::create(out, true),
        RunMode::Resume => RunDir::resume(out),
    }
    .map_err(RunError::Invalid)?;
    let config_toml = toml::to_string(config).expect("serialisable");
    let run_meta = HashMap::from([
        ("config".to_string(), config_toml.clone()),
        (
            "item_tokens".to_string(),
            serde_json::to_string(&data.items[1..]).expect("serialisable"),
        ),
        ("n_users".to_string(), data.n_users().to_string()),
    ]);
    let (last_path, best_path) = (out.join("last.safetensors"), out.join("best.safetensors"));
    let metrics_path = out.join("metrics.jsonl");

    let mut learner = Learner::new(model, config);
    let mut progress = Progress {
        epoch: 0,
        best_epoch: 0,
        best_value: f64::NEG_INFINITY,
        bad_epochs: 0,
        batch: 0,
        word_pos: String::new(),
        partial: [0.0; 4],
        partial_seconds: 0.0,
        history: Vec::new(),
    };
    let mut metrics_lines = String::new();
    if from_checkpoint {
        let stored = checkpoint::stored_config(&last_path).map_err(RunError::Invalid)?;
        let changed = toml::from_str::<TrainConfig>(&stored)
            .map(|s| changed_settings(&s, config))
            .unwrap_or_else(|_| vec!["(unreadable)".into()]);
        if !changed.is_empty() {
            return Err(RunError::Invalid(format!(
                "{}: the run was started with other settings ({}); resume it with the same ones (only {} may change)",
                last_path.display(),
                changed.join(", "),
                RESUMABLE_CHANGES.join(", ")
            )));
        }
        let Learner { model, opt, .. } = &mut learner;
        progress = checkpoint::load(&last_path, model.store_mut(), opt.named_mut())
            .map_err(RunError::Invalid)?;
        metrics_lines = if progress.history.is_empty() && progress.epoch > 0 {
            // A checkpoint from before the records were kept in it: the file's own lines.
            let old = std::fs::read_to_string(&metrics_path).unwrap_or_default();
            old.lines()
                .take(progress.epoch)
                .map(|l| format!("{l}\n"))
                .collect()
        } else {
            progress.history.iter().map(|l| format!("{l}\n")).collect()
        };
        // A kill between `last` and `best` leaves `best` an epoch behind; `last` then is
        // the best model itself.
        if progress.best_epoch > 0 {
            let best_ok = checkpoint::stored_progress(&best_path)
                .is_ok_and(|b| b.epoch == progress.best_epoch);
            if !best_ok {
                if progress.best_epoch == progress.epoch && progress.batch == 0 {
                    let bytes = std::fs::read(&last_path).map_err(io(&last_path))?;
                    checkpoint::write(&best_path, &bytes).map_err(io(&best_path))?;
                } else {
                    return Err(RunError::Invalid(format!(
                        "{}: missing or not the checkpoint of epoch {}, the best one",
                        best_path.display(),
                        progress.best_epoch
                    )));
                }
            }
        }
    }
    write_atomic(&metrics_path, metrics_lines.as_bytes()).map_err(io(&metrics_path))?;
    let config_path = out.join("config.toml");
    write_atomic(&config_path, config_toml.as_bytes()).map_err(io(&config_path))?;
    let map_path = out.join("item_map.tsv");
    write_atomic(
        &map_path,
        crate::token_map_tsv("raw_item", &data.items[1..]).as_bytes(),
    )
    .map_err(io(&map_path))?;
    crate::fault::point("run:configured");
    // Built (or resumed) on the CPU, then moved: only batch indices go to the device per
    // step, and only logged scalars and evaluation counts come back.
    learner
        .to_device(device)
        .map_err(|e| RunError::Invalid(format!("device {device}: {e}")))?;

    let sampler = LengthBucketSampler::new(
        samples.iter().map(|s| s.input.len()).collect(),
        config.batch_size,
    );
    // Pre-training epochs (S3-Rec) see each user's whole training sequence once.
    let pretrain_epochs = (1..)
        .take_while(|&e| learner.model.epoch_role(e) == EpochRole::Pretrain)
        .count();
    let whole = if pretrain_epochs > 0 {
        whole_sequence_samples(data, config.max_len)
    } else {
        Vec::new()
    };
    let whole_sampler = LengthBucketSampler::new(
        whole.iter().map(|s| s.input.len()).collect(),
        config.batch_size,
    );
    let valid_cases = eval_cases(data, Split::Valid, config.max_len);
    let test_cases = eval_cases(data, Split::Test, config.max_len);
    // The protocol's negatives (none for full ranking), the same for every model and run.
    let opts_for = |cases: &[crate::EvalCase]| EvalOptions {
        chunk: config.eval_chunk,
        mask_history: false,
        negatives: crate::sampled_eval::sampled_negatives(data, cases, config.eval)
            .map(std::sync::Arc::new),
    };
    let eval_opts = opts_for(&valid_cases);
    let mut best_params = if progress.best_epoch > 0 {
        Some(load_params(&best_path, learner.model.store())?)
    } else {
        None
    };
    let last_good = |progress: &Progress| {
        if last_path.exists() {
            format!(
                "The last good checkpoint is {} (epoch {}).",
                last_path.display(),
                progress.epoch
            )
        } else {
            "No checkpoint was written yet.".to_string()
        }
    };
    let start_epoch = progress.epoch + 1;
    for epoch in start_epoch..=pretrain_epochs + config.epochs {
        if progress.bad_epochs >= config.patience {
            break;
        }
        let role = learner.model.epoch_role(epoch);
        let (samples, sampler) = match role {
            EpochRole::Pretrain => (&whole, &whole_sampler),
            EpochRole::Train => (&samples, &sampler),
        };
        let t0 = Instant::now();
        let mut rng = epoch_rng(config.seed, epoch);
        let batches = sampler.epoch(&mut rng);
        let mut sum = BatchLosses::default();
        // An interrupted epoch continues where it stopped, with the same random stream.
        let skip = std::mem::take(&mut progress.batch);
        let earlier_seconds = std::mem::take(&mut progress.partial_seconds);
        if skip > 0 {
            let pos = progress
                .word_pos
                .parse()
                .map_err(|_| RunError::Invalid("bad checkpoint: word_pos".into()))?;
            rng.set_word_pos(pos);
            let [rec, cl1, cl2, reg] = progress.partial;
            sum = BatchLosses { rec, cl1, cl2, reg };
        }
        for (b, idx) in batches.iter().enumerate().skip(skip) {
            if STOP_REQUESTED.load(Ordering::Relaxed) {
                // A resumable checkpoint of the epoch so far (the previous `last` is
                // replaced atomically).
                let mid = Progress {
                    batch: b,
                    word_pos: rng.get_word_pos().to_string(),
                    partial: [sum.rec, sum.cl1, sum.cl2, sum.reg],
                    partial_seconds: earlier_seconds + t0.elapsed().as_secs_f64(),
                    ..progress.clone()
                };
                let (store, opts) = (learner.model.store(), learner.opt.named());
                checkpoint::save(&last_path, store, opts, &mid, &run_meta)
                    .map_err(io(&last_path))?;
                return Err(RunError::Interrupted(interrupted_message(out, epoch, b)));
            }
            let l = learner.train_batch(samples, idx, epoch, &mut rng).map_err(|e| {
                RunError::NonFinite(format!(
                    "epoch {epoch}, batch {} of {}: the loss of step {} is {}; that update was skipped and the run \
                     stopped. {} Lower the learning rate or check the data.",
                    b + 1,
                    batches.len(),
                    e.step,
                    e.value,
                    last_good(&progress)
                ))
            })?;
            sum.rec += l.rec;
            sum.cl1 += l.cl1;
            sum.cl2 += l.cl2;
            sum.reg += l.reg;
            obs.batch(epoch, b + 1, batches.len(), sum.rec / (b + 1) as f64);
        }
        if let Some(name) = non_finite_parameter(learner.model.store()) {
            return Err(RunError::NonFinite(format!(
                "epoch {epoch}: parameter `{name}` holds a non-finite value, so no checkpoint of \
                 this epoch was written and the run stopped. {} Lower the learning rate or check the data.",
                last_good(&progress)
            )));
        }
        let n = batches.len() as f64;
        let losses = BatchLosses {
            rec: sum.rec / n,
            cl1: sum.cl1 / n,
            cl2: sum.cl2 / n,
            reg: sum.reg / n,
        };
        let train_seconds = earlier_seconds + t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let m = &learner.model;
        // A pre-training epoch is not validated: its model does not predict the next item.
        let valid = match role {
            EpochRole::Train => Some(evaluate(&**m, &valid_cases, &eval_opts).metrics),
            EpochRole::Pretrain => None,
        };
        let eval_seconds = t1.elapsed().as_secs_f64();
        progress.epoch = epoch;
        let mut is_best = false;
        if let Some(valid) = &valid {
            let value = valid.get(&config.early_stop_metric).expect("validated");
            is_best = value > progress.best_value;
            if is_best {
                progress.best_epoch = epoch;
                progress.best_value = value;
                progress.bad_epochs = 0;
                best_params = Some(m.store().iter().map(|(_, p)| p.value.clone()).collect());
            } else {
                progress.bad_epochs += 1;
            }
        }
        let log = EpochLog {
            epoch,
            losses,
            valid,
            train_seconds,
            eval_seconds,
            samples_per_s: samples.len() as f64 / train_seconds,
            is_best,
            best: (progress.best_epoch, progress.best_value),
        };
        let line = log.to_json();
        progress.history.push(line.clone());
        // `last` first: a kill before `best` is written is repaired from it on resume.
        let bytes = checkpoint::to_bytes(m.store(), learner.opt.named(), &progress, &run_meta);
        checkpoint::write(&last_path, &bytes).map_err(io(&last_path))?;
        if is_best {
            checkpoint::write(&best_path, &bytes).map_err(io(&best_path))?;
        }
        drop(bytes);
        crate::fault::point("metrics:before-append");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .map_err(io(&metrics_path))?;
        writeln!(f, "{line}").map_err(io(&metrics_path))?;
        crate::fault::point("metrics:appended");
        obs.epoch(&log);
    }

    // Report the best-validation model.
    let mut model = learner.model;
    if let Some(params) = best_params {
        let store = model.store_mut();
        let ids: Vec<_> = store.iter().map(|(id, _)| id).collect();
        for (id, v) in ids.into_iter().zip(params) {
            store.get_mut(id).value = v;
        }
    }
    let valid = evaluate(&*model, &valid_cases, &eval_opts).metrics;
    let test = evaluate(&*model, &test_cases, &opts_for(&test_cases)).metrics;
    let results_path = out.join("results.json");
    let results = json!({
        "best_epoch": progress.best_epoch,
        "protocol": {"loss": config.loss.name(), "eval": config.eval.name()},
        "valid": valid.to_json(),
        "test": test.to_json(),
    });
    write_atomic(&results_path, format!("{results:#}\n").as_bytes()).map_err(io(&results_path))?;
    Ok(RunResult {
        best_epoch: progress.best_epoch,
        valid,
        test,
        epochs_run: progress.epoch + 1 - start_epoch,
        results_path,
    })
}

fn interrupted_message(out: &Path, epoch: usize, batch: usize) -> String {
    format!(
        "interrupted in epoch {epoch} after {batch} batches; checkpoint written to {dir}/last.safetensors: \
         continue with `mclrec-cli run --resume {dir}`",
        dir = out.display()
    )
}

/// The parameter values of a checkpoint, in the store's order.
fn load_params(
    path: &Path,
    store: &mclrec_autograd::ParamStore<f32>,
) -> Result<Vec<mclrec_tensor::Tensor<f32>>, RunError> {
    let mut store = store.clone();
    mclrec_models::weights::load_into(&mut store, path, &["optim."])
        .map_err(|e| RunError::Invalid(e.to_string()))?;
    Ok(store.iter().map(|(_, p)| p.value.clone()).collect())
}
