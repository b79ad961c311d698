//! Weights in safetensors with the official parameter names, both ways.
//!
//! [`save`] writes every parameter of a store (plus optional extra tensors and string
//! metadata) under its name; [`load_into`] reads a file into a store and checks it against
//! the store: every name must be present, every shape and dtype must match, every value
//! must be finite (a NaN weight would rank its target first and report perfect metrics),
//! and names the store does not have are errors unless a prefix says to skip them.

use std::collections::HashMap;
use std::path::Path;

use mclrec_autograd::ParamStore;
use mclrec_tensor::{Element, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

/// Why weights could not be loaded.
#[derive(Debug)]
pub struct WeightsError(pub String);

impl std::fmt::Display for WeightsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WeightsError {}

fn dtype<E: Element>() -> Dtype {
    if E::NAME == "f64" {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

/// Decodes a little-endian tensor of `f32` / `f64`.
pub fn decode<E: Element>(view: &TensorView<'_>) -> Result<Tensor<E>, WeightsError> {
    let data = view.data();
    let values: Vec<E> = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| E::from_f64(f32::from_le_bytes(b.try_into().unwrap()) as f64))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| E::from_f64(f64::from_le_bytes(b.try_into().unwrap())))
            .collect(),
        other => return Err(WeightsError(format!("unsupported dtype {other:?}"))),
    };
    Ok(Tensor::from_vec(values, view.shape()))
}

/// Decodes an integer tensor (`I64` or `I32`) as indices.
pub fn decode_indices(view: &TensorView<'_>) -> Result<Vec<i64>, WeightsError> {
    let data = view.data();
    match view.dtype() {
        Dtype::I64 => Ok(data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect()),
        Dtype::I32 => Ok(data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64)
            .collect()),
        other => Err(WeightsError(format!(
            "expected integer tensor, got {other:?}"
        ))),
    }
}

fn encode<E: Element>(t: &Tensor<E>) -> Vec<u8> {
    let v = t.to_vec();
    let mut out = Vec::with_capacity(v.len() * std::mem::size_of::<E>());
    for x in v {
        if E::NAME == "f64" {
            out.extend_from_slice(&x.as_f64().to_le_bytes());
        } else {
            out.extend_from_slice(&(x.as_f64() as f32).to_le_bytes());
        }
    }
    out
}

/// `t` when every value is finite, else an error naming `label`, the tensor `name` and the
/// first bad value (a NaN weight would rank its target first and report perfect metrics).
/// `t` is a decoded, so CPU, tensor.
pub fn finite<E: Element>(
    t: Tensor<E>,
    label: &str,
    name: &str,
) -> Result<Tensor<E>, WeightsError> {
    match t.as_slice().iter().position(|v| !v.as_f64().is_finite()) {
        None => Ok(t),
        Some(at) => Err(WeightsError(format!(
            "{label}: tensor `{name}` holds a non-finite value ({} at flat index {at}); these weights are unusable",
            t.as_slice()[at].as_f64()
        ))),
    }
}

/// Serialises named tensors and metadata to safetensors bytes.
pub fn to_bytes<E: Element>(
    tensors: &[(String, Tensor<E>)],
    metadata: &HashMap<String, String>,
) -> Vec<u8> {
    let encoded: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), encode(t), t.shape().to_vec()))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = encoded
        .iter()
        .map(|(n, b, s)| {
            (
                n.clone(),
                TensorView::new(dtype::<E>(), s.clone(), b).expect("sizes agree"),
            )
        })
        .collect();
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata.clone())
    };
    safetensors::serialize(views, &meta).expect("serialising in memory")
}

/// The store's parameters as `(name, tensor)` pairs.
pub fn named<E: Element>(store: &ParamStore<E>) -> Vec<(String, Tensor<E>)> {
    store
        .iter()
        .map(|(_, p)| (p.name.clone(), p.value.clone()))
        .collect()
}

/// Writes the store's parameters to `path` (atomically: a temporary file, then a rename).
pub fn save<E: Element>(
    store: &ParamStore<E>,
    path: &Path,
    metadata: &HashMap<String, String>,
) -> std::io::Result<()> {
    write_atomic(path, &to_bytes(&named(store), metadata))
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// a crash never leaves a half-written file where a good one was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, |_| {})
}

/// Where an atomic write of `path` puts its bytes first: `.NAME.tmpPID` beside it (the
/// run directory removes such files of crashed writes).
pub fn temporary_path(path: &Path) -> std::path::PathBuf {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.tmp{}", std::process::id()))
}

/// [`write_atomic`], calling `step` at each of its steps (`before-write`, `temp-written`,
/// `renamed`) so crash tests can stop the process there.
pub fn write_atomic_with(path: &Path, bytes: &[u8], step: impl Fn(&str)) -> std::io::Result<()> {
    let tmp = temporary_path(path);
    step("before-write");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    step("temp-written");
    std::fs::rename(&tmp, path)?;
    // The rename itself survives a power cut once the directory is synced.
    let dir = tmp.parent().unwrap_or(Path::new("."));
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    step("renamed");
    Ok(())
}

/// Loads the tensors of `bytes` into `store` by name. Names starting with one of
/// `skip_prefixes` are ignored; every other name must be a parameter of the store, and every
/// parameter must be in the file with its shape. `label` names the file in errors.
pub fn load_bytes_into<E: Element>(
    store: &mut ParamStore<E>,
    bytes: &[u8],
    label: &str,
    skip_prefixes: &[&str],
) -> Result<(), WeightsError> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| WeightsError(format!("{label}: not a valid safetensors file ({e})")))?;
    let mut problems = Vec::new();
    let mut seen = vec![false; store.len()];
    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    for name in names {
        if skip_prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let Some(id) = store.find(&name) else {
            problems.push(format!("unexpected tensor `{name}`"));
            continue;
        };
        seen[id.0] = true;
        let view = st
            .tensor(&name)
            .map_err(|e| WeightsError(format!("{label}: `{name}`: {e}")))?;
        let want = store.value(id).shape().to_vec();
        if view.shape() != want.as_slice() {
            problems.push(format!(
                "`{name}` has shape {:?}, the model needs {:?}",
                view.shape(),
                want
            ));
            continue;
        }
        if view.dtype() != dtype::<E>() {
            problems.push(format!(
                "`{name}` is {:?}, the model needs {:?}",
                view.dtype(),
                dtype::<E>()
            ));
            continue;
        }
        let value = finite(decode::<E>(&view)?, label, &name)?;
        // Onto the device the parameter already lives on.
        let device = store.value(id).device();
        store.get_mut(id).value = value
            .to_device(device)
            .map_err(|e| WeightsError(format!("{label}: `{name}`: {e}")))?;
    }
    for (id, p) in store.iter() {
        if !seen[id.0] {
            problems.push(format!("missing tensor `{}`", p.name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(WeightsError(format!(
            "{label}: weights do not fit the model: {}",
            problems.join("; ")
        )))
    }
}

/// [`load_bytes_into`] from a file.
pub fn load_into<E: Element>(
    store: &mut ParamStore<E>,
    path: &Path,
    skip_prefixes: &[&str],
) -> Result<(), WeightsError> {
    let bytes = std::fs::read(path)
        .map_err(|e| WeightsError(format!("{}: cannot read ({e})", path.display())))?;
    load_bytes_into(store, &bytes, &path.display().to_string(), skip_prefixes)
}

/// A weights file as safetensors bytes: a safetensors file as it is, a PyTorch checkpoint
/// (`.pth`, read by [`crate::pytorch`]) converted in memory. Either way the result goes
/// through the same name, shape, dtype and finiteness checks.
pub fn read_weights_file(path: &Path) -> Result<Vec<u8>, WeightsError> {
    let label = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| WeightsError(format!("{label}: cannot read ({e})")))?;
    if crate::pytorch::is_pytorch_zip(&bytes) {
        let tensors = crate::pytorch::read_state_dict(&bytes, &label)?;
        return Ok(to_bytes(&tensors, &HashMap::new()));
    }
    Ok(bytes)
}

/// Sets the encoder parameters of `store` (every parameter whose name does not start with
/// `aug_`) from weights: each must be in the file with its shape, except that an official
/// item table's extra last row (never used) is dropped. Other tensors in the file are
/// ignored; values must be finite.
pub fn init_encoder_from<E: Element>(
    store: &mut ParamStore<E>,
    bytes: &[u8],
    label: &str,
) -> Result<(), WeightsError> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| WeightsError(format!("{label}: not a valid safetensors file ({e})")))?;
    let ids: Vec<_> = store
        .iter()
        .filter(|(_, p)| !p.name.starts_with("aug_"))
        .map(|(id, p)| (id, p.name.clone()))
        .collect();
    for (id, name) in ids {
        let view = st
            .tensor(&name)
            .map_err(|_| WeightsError(format!("{label}: missing tensor `{name}`")))?;
        let want = store.value(id).shape().to_vec();
        let mut value = decode::<E>(&view)?;
        let one_extra_row = name == "item_embedding.weight"
            && value.shape().len() == 2
            && want.len() == 2
            && value.shape()[0] == want[0] + 1
            && value.shape()[1] == want[1];
        if one_extra_row {
            value = value.narrow(0, 0, want[0]);
        }
        if value.shape() != want.as_slice() {
            return Err(WeightsError(format!(
                "{label}: `{name}` has shape {:?}, the model needs {want:?}",
                value.shape()
            )));
        }
        let value = finite(value, label, &name)?;
        let device = store.value(id).device();
        store.get_mut(id).value = value
            .to_device(device)
            .map_err(|e| WeightsError(format!("{label}: `{name}`: {e}")))?;
    }
    Ok(())
}

/// Tensor names with their shapes, sorted by name.
pub type Shapes = Vec<(String, Vec<usize>)>;

/// The names, shapes and metadata in a safetensors file, without loading the data.
pub fn inspect(bytes: &[u8]) -> Result<(Shapes, HashMap<String, String>), WeightsError> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| WeightsError(format!("not a valid safetensors file ({e})")))?;
    let mut shapes: Vec<(String, Vec<usize>)> = meta
        .tensors()
        .iter()
        .map(|(n, i)| (n.clone(), i.shape.clone()))
        .collect();
    shapes.sort();
    Ok((shapes, meta.metadata().clone().unwrap_or_default()))
}

/// Builds an encoder whose shapes are read from a safetensors file and loads its weights
/// (tensors whose names start with `aug_` or `optim.` are ignored). `n_real_items` comes
/// from the dataset: the item table must have `n_real_items + 1` rows (this project's
/// checkpoints) or `n_real_items + 2` (the official ones, whose last row is never used).
/// `heads` is read from the metadata key `n_heads` when present.
pub fn load_encoder<E: Element>(
    bytes: &[u8],
    label: &str,
    n_real_items: usize,
    default_heads: usize,
) -> Result<(ParamStore<E>, crate::SasRecEncoder), WeightsError> {
    let (shapes, meta) = inspect(bytes).map_err(|e| WeightsError(format!("{label}: {e}")))?;
    let shape = |n: &str| shapes.iter().find(|(k, _)| k == n).map(|(_, s)| s.clone());
    let need =
        |n: &str| shape(n).ok_or_else(|| WeightsError(format!("{label}: missing tensor `{n}`")));
    let items = need("item_embedding.weight")?;
    let pos = need("position_embedding.weight")?;
    let inner = need("trm_encoder.layer.0.feed_forward.dense_1.weight")?;
    if items.len() != 2 || pos.len() != 2 || inner.len() != 2 {
        return Err(WeightsError(format!(
            "{label}: embedding and linear weights must be 2-d"
        )));
    }
    let rows = items[0];
    if rows != n_real_items + 1 && rows != n_real_items + 2 {
        return Err(WeightsError(format!(
            "{label}: `item_embedding.weight` has {rows} rows but the dataset has {n_real_items} items \
             (expected {} rows, or {} for an official checkpoint): wrong dataset for these weights?",
            n_real_items + 1,
            n_real_items + 2
        )));
    }
    let layers = (0..)
        .take_while(|i| {
            shape(&format!(
                "trm_encoder.layer.{i}.feed_forward.dense_1.weight"
            ))
            .is_some()
        })
        .count();
    let heads = meta
        .get("n_heads")
        .and_then(|h| h.parse().ok())
        .unwrap_or(default_heads);
    let config = crate::SasRecConfig {
        item_rows: rows,
        n_classes: n_real_items + 1,
        max_len: pos[0],
        hidden: items[1],
        inner: inner[0],
        layers,
        heads,
        ..crate::SasRecConfig::for_items(n_real_items)
    };
    if [
        config.max_len,
        config.hidden,
        config.inner,
        config.layers,
        config.heads,
    ]
    .contains(&0)
    {
        return Err(WeightsError(format!(
            "{label}: a dimension of the encoder is 0 (max_len {}, hidden {}, inner {}, layers {}, heads {})",
            config.max_len, config.hidden, config.inner, config.layers, config.heads
        )));
    }
    if !config.hidden.is_multiple_of(config.heads) {
        return Err(WeightsError(format!(
            "{label}: hidden size {} is not a multiple of {} heads",
            config.hidden, config.heads
        )));
    }
    let mut store = ParamStore::new();
    let group = store.group(crate::ENCODER_GROUP);
    // Values are overwritten by the load; the init only fixes names and shapes.
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let encoder = crate::SasRecEncoder::new(&mut store, group, config, &mut rng);
    load_bytes_into(&mut store, bytes, label, &["aug_", "optim."])?;
    Ok((store, encoder))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-layer encoder over 6 items as safetensors bytes.
    fn tiny_bytes(meta: &HashMap<String, String>) -> Vec<u8> {
        let mut store = ParamStore::<f32>::new();
        let group = store.group(crate::ENCODER_GROUP);
        let config = crate::SasRecConfig {
            max_len: 4,
            hidden: 4,
            inner: 8,
            ..crate::SasRecConfig::for_items(6)
        };
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        crate::SasRecEncoder::new(&mut store, group, config, &mut rng);
        to_bytes(&named(&store), meta)
    }

    #[test]
    fn a_non_finite_weight_is_refused_naming_the_tensor() {
        let good = tiny_bytes(&HashMap::new());
        assert!(load_encoder::<f32>(&good, "w", 6, 2).is_ok());
        let mut store = load_encoder::<f32>(&good, "w", 6, 2).unwrap().0;
        let id = store
            .find("trm_encoder.layer.1.feed_forward.LayerNorm.weight")
            .unwrap();
        let mut v = store.value(id).to_vec();
        v[2] = f32::NAN;
        store.get_mut(id).value = Tensor::from_vec(v, &[4]);
        let bad = to_bytes(&named(&store), &HashMap::new());
        let e = load_encoder::<f32>(&bad, "w.safetensors", 6, 2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "w.safetensors: tensor `trm_encoder.layer.1.feed_forward.LayerNorm.weight` holds a non-finite value (NaN at flat index 2); these weights are unusable"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Random bytes and random edits of a valid file are errors, never a panic.
        #[test]
        fn loading_never_panics(
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..6),
            heads in 0usize..5,
        ) {
            let _ = load_encoder::<f32>(&noise, "w", 6, 2);
            let meta = HashMap::from([("n_heads".to_string(), heads.to_string())]);
            let mut bytes = tiny_bytes(&meta);
            // Most edits land in the header (names, shapes, offsets), the rest in the data.
            let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            for &(at, b) in &edits {
                let at = if b % 4 == 0 { at % bytes.len() } else { at % header };
                bytes[at] = b;
            }
            let _ = load_encoder::<f32>(&bytes, "w", 6, 2);
        }
    }
}
