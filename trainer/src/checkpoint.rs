//! Checkpoints: the model, both optimisers' states and the run's progress in one
//! safetensors file, written atomically.

use std::collections::HashMap;
use std::path::Path;

use mclrec_autograd::{Adam, AdamState, ParamStore};
use mclrec_models::weights::{decode, finite, to_bytes as to_bytes_of, write_atomic_with};
use mclrec_tensor::Tensor;
use safetensors::SafeTensors;

/// Where a run stands at the end of an epoch (stored in the checkpoint's metadata).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// The last completed epoch (1-based).
    pub epoch: usize,
    /// The epoch with the best validation metric so far.
    pub best_epoch: usize,
    /// That metric's value (`-inf` before the first epoch; JSON writes that as `null`).
    #[serde(deserialize_with = "null_as_neg_infinity")]
    pub best_value: f64,
    /// Epochs since the best one.
    pub bad_epochs: usize,
    /// Batches of epoch `epoch + 1` already trained (an interrupted epoch), else 0.
    #[serde(default)]
    pub batch: usize,
    /// The position of that epoch's random stream after those batches (ChaCha word
    /// position, as a decimal string: it is a u128).
    #[serde(default)]
    pub word_pos: String,
    /// The sums of the loss terms over those batches (`rec`, `cl1`, `cl2`, `reg`).
    #[serde(default)]
    pub partial: [f64; 4],
    /// The training seconds of those batches, so the resumed epoch's logged time is whole.
    #[serde(default)]
    pub partial_seconds: f64,
    /// The `metrics.jsonl` records of the completed epochs, so a resumed run rebuilds that
    /// file whole even if the process died between the checkpoint and the append.
    #[serde(default)]
    pub history: Vec<serde_json::Value>,
}

fn null_as_neg_infinity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
}

fn optimiser_tensors(
    prefix: &str,
    opt: &Adam<f32>,
    store: &ParamStore<f32>,
    out: &mut Vec<(String, Tensor<f32>)>,
    meta: &mut HashMap<String, String>,
) {
    for (id, st) in opt.state() {
        let name = &store.get(*id).name;
        out.push((format!("optim.{prefix}.{name}.m"), st.m.clone()));
        out.push((format!("optim.{prefix}.{name}.v"), st.v.clone()));
        meta.insert(format!("optim.{prefix}.{name}.step"), st.step.to_string());
    }
}

/// A checkpoint's bytes: parameters by name, `optim.{encoder,augmenters}.{name}.{m,v}`,
/// and metadata (`progress`, optimiser step counts, and the run's own `run_meta` such as
/// `config` and `item_tokens`).
pub fn to_bytes<'a>(
    store: &ParamStore<f32>,
    optimisers: impl IntoIterator<Item = (&'a str, &'a Adam<f32>)>,
    progress: &Progress,
    run_meta: &HashMap<String, String>,
) -> Vec<u8> {
    let mut tensors = mclrec_models::weights::named(store);
    let mut meta = run_meta.clone();
    for (prefix, opt) in optimisers {
        optimiser_tensors(prefix, opt, store, &mut tensors, &mut meta);
    }
    meta.insert(
        "progress".into(),
        serde_json::to_string(progress).expect("serialisable"),
    );
    meta.insert("format".into(), "mclrec-checkpoint-1".into());
    to_bytes_of(&tensors, &meta)
}

/// Writes checkpoint bytes atomically, with the crash-test points
/// ([`crate::fault`]) `{file}:before-write`, `{file}:temp-written` and `{file}:renamed`.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    write_atomic_with(path, bytes, |step| {
        crate::fault::point(&format!("{file}:{step}"))
    })
}

/// Writes a checkpoint ([`to_bytes`], then [`write()`]).
pub fn save<'a>(
    path: &Path,
    store: &ParamStore<f32>,
    optimisers: impl IntoIterator<Item = (&'a str, &'a Adam<f32>)>,
    progress: &Progress,
    run_meta: &HashMap<String, String>,
) -> std::io::Result<()> {
    write(path, &to_bytes(store, optimisers, progress, run_meta))
}

/// Restores parameters, optimiser states and progress from a checkpoint into a model built
/// with the same configuration.
pub fn load<'a>(
    path: &Path,
    store: &mut ParamStore<f32>,
    optimisers: impl IntoIterator<Item = (&'a str, &'a mut Adam<f32>)>,
) -> Result<Progress, String> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{label}: cannot read ({e})"))?;
    mclrec_models::weights::load_bytes_into(store, &bytes, &label, &["optim."])
        .map_err(|e| e.to_string())?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format!("{label}: {e}"))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| format!("{label}: {e}"))?;
    let meta = header.metadata().clone().unwrap_or_default();
    for (prefix, opt) in optimisers {
        let mut state = Vec::new();
        for (id, p) in store.iter() {
            let key = format!("optim.{prefix}.{}", p.name);
            let Some(step) = meta.get(&format!("{key}.step")) else {
                continue;
            };
            let get = |s: &str| {
                st.tensor(&format!("{key}.{s}"))
                    .map_err(|e| format!("{label}: `{key}.{s}`: {e}"))
                    .and_then(|v| {
                        decode::<f32>(&v)
                            .and_then(|t| finite(t, &label, &format!("{key}.{s}")))
                            .map_err(|e| e.to_string())
                    })
                    // Beside the parameter, on its device.
                    .and_then(|t| {
                        t.to_device(p.value.device())
                            .map_err(|e| format!("{label}: `{key}.{s}`: {e}"))
                    })
            };
            let step = step
                .parse()
                .map_err(|_| format!("{label}: bad step count for `{key}`"))?;
            state.push((
                id,
                AdamState {
                    m: get("m")?,
                    v: get("v")?,
                    step,
                },
            ));
        }
        opt.set_state(state);
    }
    let progress = meta
        .get("progress")
        .ok_or_else(|| format!("{label}: not a training checkpoint (no progress)"))?;
    serde_json::from_str(progress).map_err(|e| format!("{label}: bad progress record ({e})"))
}

/// A checkpoint's metadata, read without its tensors.
pub fn metadata(path: &Path) -> Result<HashMap<String, String>, String> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{label}: cannot read ({e})"))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| format!("{label}: not a valid checkpoint ({e})"))?;
    Ok(header.metadata().clone().unwrap_or_default())
}

/// The resolved configuration stored in a checkpoint.
pub fn stored_config(path: &Path) -> Result<String, String> {
    metadata(path)?
        .remove("config")
        .ok_or_else(|| format!("{}: no configuration stored", path.display()))
}

/// The progress record stored in a checkpoint.
pub fn stored_progress(path: &Path) -> Result<Progress, String> {
    let label = path.display();
    let p = metadata(path)?
        .remove("progress")
        .ok_or_else(|| format!("{label}: not a training checkpoint (no progress)"))?;
    serde_json::from_str(&p).map_err(|e| format!("{label}: bad progress record ({e})"))
}

#[cfg(test)]
mod tests {
    use super::Progress;

    #[test]
    fn an_interrupted_epochs_seconds_survive_the_checkpoint_and_old_records_still_load() {
        let p = Progress {
            epoch: 4,
            best_epoch: 3,
            best_value: 0.25,
            bad_epochs: 1,
            batch: 477,
            word_pos: "123456789012345678901234567890".into(),
            partial: [1.5, 0.0, 2.5, 0.125],
            partial_seconds: 61.75,
            history: vec![serde_json::json!({"epoch": 1})],
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Progress>(&json).unwrap(), p);
        // A checkpoint written before the field existed resumes with no carried seconds.
        let old = r#"{"epoch":2,"best_epoch":2,"best_value":null,"bad_epochs":0}"#;
        let q: Progress = serde_json::from_str(old).unwrap();
        assert_eq!((q.epoch, q.batch, q.partial_seconds), (2, 0, 0.0));
        assert!(q.history.is_empty());
        assert_eq!(q.best_value, f64::NEG_INFINITY);
    }
}
