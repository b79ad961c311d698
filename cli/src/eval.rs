//! `mclrec-cli eval`: full-ranking metrics of a checkpoint on a dataset split.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use mclrec_models::weights::{inspect, load_bytes_into, read_weights_file};
use mclrec_models::{MclrecModel, Recommender};
use mclrec_trainer::evaluate::{evaluate, EvalOptions};
use mclrec_trainer::noise::with_noise;
use mclrec_trainer::TrainConfig;
use mclrec_trainer::{eval_cases, Dataset, EvalCase, Metrics, Split};
use rand::SeedableRng;

/// Which split to evaluate.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SplitArg {
    /// The last item of each user.
    Test,
    /// The second-to-last item of each user.
    Valid,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Weights: a run's checkpoint, official weights in safetensors, or a PyTorch `.pth`
    /// (a state dict, or a dict holding one under `state_dict`), with the official names.
    #[arg(long)]
    weights: PathBuf,
    /// The dataset: `beauty`, `sports`, a "user item item ..." text file or a RecBole `.inter` file.
    #[arg(long, default_value = "beauty")]
    dataset: String,
    /// A TSV `raw_item<TAB>internal_id` (with a header) mapping the dataset's item tokens to
    /// the rows of the weights' item table [default: the tokens stored in a checkpoint of
    /// this project; for other weights, a token's id is its row].
    #[arg(long)]
    item_map: Option<PathBuf>,
    /// The split to evaluate.
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    /// The ranking protocol: `full` (all items), `uni100` / `pop100` (100 negatives drawn
    /// uniformly / by popularity per user, fixed for every model).
    #[arg(long, default_value = "full")]
    eval: mclrec_trainer::EvalProtocol,
    /// Exclude each user's history items from the ranking (off in the official protocol).
    #[arg(long)]
    mask_history: bool,
    /// Insert `floor(len * R)` random items into every input sequence before ranking (the
    /// paper's robustness study, Figure 7).
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    noise: Option<f64>,
    /// The seed of the inserted items.
    #[arg(long, default_value_t = 2023, allow_negative_numbers = true)]
    seed: u64,
    /// Also report the metrics of users grouped by sequence length (= 5, 6-8, > 8
    /// interactions; the paper's Figure 8), from the same evaluation.
    #[arg(long)]
    by_length: bool,
    /// Print `{"test": {"hr@5": ..}}` as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The user groups of `--by-length`: a label and the sequence lengths it holds.
pub const LENGTH_GROUPS: [(&str, usize, usize); 3] =
    [("=5", 0, 5), ("6-8", 6, 8), (">8", 9, usize::MAX)];

/// A loaded model: any of the family, behind its [`Recommender`] interface.
pub type Encoder = Box<dyn Recommender<f32>>;

/// Weights (safetensors, or a PyTorch `.pth` converted in memory) as a model for `data`:
/// [`encoder_for`] of the file's bytes.
pub fn load_weights(
    path: &Path,
    data: &mut Dataset,
    item_map: Option<&Path>,
) -> Result<Encoder, String> {
    let bytes = read_weights_file(path).map_err(|e| e.to_string())?;
    encoder_for(&bytes, &path.display().to_string(), data, item_map)
}

/// Weights' safetensors bytes as a model for `data`. The dataset's item tokens are mapped
/// to the rows of the weights' item table: through `item_map` when given, else through the
/// tokens a checkpoint of this project stores (`item_tokens`), else id = row.
pub fn encoder_for(
    bytes: &[u8],
    label: &str,
    data: &mut Dataset,
    item_map: Option<&Path>,
) -> Result<Encoder, String> {
    let (shapes, meta) = inspect(bytes).map_err(|e| format!("{label}: {e}"))?;
    // The rows a token may map to (an official table has one unused row more: allowed).
    let rows = shapes
        .iter()
        .find(|(n, _)| n == "item_embedding.weight")
        .and_then(|(_, s)| s.first().copied())
        .unwrap_or(0);
    if let Some(p) = item_map {
        apply_item_map(
            data,
            &read_item_map(p)?,
            &p.display().to_string(),
            rows.saturating_sub(1),
        )?;
    } else if let Some(tokens) = meta.get("item_tokens") {
        let tokens: Vec<String> = serde_json::from_str(tokens)
            .map_err(|e| format!("{label}: bad item_tokens record ({e})"))?;
        if tokens[..] != data.items[1..] {
            let map = tokens.into_iter().zip(1..).collect();
            let what = format!("{label} (the item tokens it was trained with)");
            apply_item_map(data, &map, &what, rows.saturating_sub(1))?;
        }
    }
    model_from_bytes(bytes, label, data.n_items(), Some(data.n_users()))
}

/// The model of weights' bytes for `n_items` items: a checkpoint of this project is rebuilt
/// from the configuration it stores (any model of the family); weights without one (the
/// official checkpoint, a `.pth`) are a SASRec-shaped encoder read from their shapes.
/// `n_users` is the dataset's, for the models with a user table (a checkpoint stores its
/// own).
pub fn model_from_bytes(
    bytes: &[u8],
    label: &str,
    n_items: usize,
    n_users: Option<usize>,
) -> Result<Encoder, String> {
    let (_, meta) = inspect(bytes).map_err(|e| format!("{label}: {e}"))?;
    if let Some(text) = meta.get("config") {
        let config: TrainConfig = toml::from_str(text)
            .map_err(|e| format!("{label}: bad config record ({})", e.message()))?;
        let n_users = meta
            .get("n_users")
            .and_then(|n| n.parse().ok())
            .or(n_users)
            .ok_or_else(|| {
                format!(
                    "{label}: a {} model needs the dataset it was trained on (--dataset)",
                    config.model.name()
                )
            })?;
        let mut model = mclrec_trainer::registry::build(&config, n_users, n_items);
        load_bytes_into(model.store_mut(), bytes, label, &["optim."]).map_err(|e| e.to_string())?;
        return Ok(model);
    }
    let model = MclrecModel::<f32>::from_encoder_weights(bytes, label, n_items)
        .map_err(|e| e.to_string())?;
    Ok(Box::new(model))
}

/// The safetensors bytes of weights of this project, which carry their item tokens, as a
/// model without a dataset: the model and the tokens by row (`[PAD]` first).
pub fn encoder_alone(bytes: &[u8], label: &str) -> Result<(Encoder, Vec<String>), String> {
    let (_, meta) = inspect(bytes).map_err(|e| format!("{label}: {e}"))?;
    let tokens = meta.get("item_tokens").ok_or_else(|| {
        format!("{label}: these weights carry no item tokens; give the dataset they were trained on (--dataset)")
    })?;
    let tokens: Vec<String> = serde_json::from_str(tokens)
        .map_err(|e| format!("{label}: bad item_tokens record ({e})"))?;
    let model = model_from_bytes(bytes, label, tokens.len(), None)?;
    let items = std::iter::once("[PAD]".to_string()).chain(tokens).collect();
    Ok((model, items))
}

/// `cases` with `floor(len * r)` random items inserted into each input (seeded).
pub fn noisy(
    cases: Vec<EvalCase>,
    r: f64,
    seed: u64,
    data: &Dataset,
    max_len: usize,
) -> Result<Vec<EvalCase>, String> {
    if !(0.0..=1.0).contains(&r) {
        return Err(format!("the noise ratio must be in [0, 1], got {r}"));
    }
    let mut rng = mclrec_tensor::ChaCha8Rng::seed_from_u64(seed);
    Ok(with_noise(&cases, r, data.n_items(), max_len, &mut rng))
}

/// The metrics of each length group (label, users, metrics) from one evaluation's ranks.
pub fn by_length(
    cases: &[EvalCase],
    ranks: &[usize],
    data: &Dataset,
) -> Vec<(&'static str, usize, Metrics)> {
    LENGTH_GROUPS
        .iter()
        .map(|&(label, lo, hi)| {
            let ranks: Vec<usize> = cases
                .iter()
                .zip(ranks)
                .filter(|(c, _)| (lo..=hi).contains(&data.sequences[c.user].len()))
                .map(|(_, &r)| r)
                .collect();
            (label, ranks.len(), Metrics::from_ranks(&ranks))
        })
        .collect()
}

/// Reads a `raw<TAB>id` map with a header line.
fn read_item_map(path: &Path) -> Result<HashMap<String, usize>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read ({e})", path.display()))?;
    let mut map = HashMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut f = line.split('\t');
        let (Some(raw), Some(id), None) = (f.next(), f.next(), f.next()) else {
            return Err(format!(
                "{}:{}: expected `raw_item<TAB>internal_id`",
                path.display(),
                i + 1
            ));
        };
        let id: usize = id.trim().parse().ok().filter(|&v| v > 0).ok_or_else(|| {
            format!(
                "{}:{}: internal id `{id}` is not a positive integer",
                path.display(),
                i + 1
            )
        })?;
        map.insert(raw.trim().to_string(), id);
    }
    Ok(map)
}

/// Renumbers the dataset's items through an item map whose ids are rows `1..=max_id` of
/// the weights' item table (`what` names the map in errors).
fn apply_item_map(
    data: &mut Dataset,
    map: &HashMap<String, usize>,
    what: &str,
    max_id: usize,
) -> Result<(), String> {
    if let Some((tok, id)) = map.iter().find(|(_, &id)| id > max_id) {
        return Err(format!(
            "{what}: item `{tok}` maps to row {id}, but the weights' item table has rows 1 to {max_id}"
        ));
    }
    let old = data.items.clone();
    for seq in &mut data.sequences {
        for it in seq.iter_mut() {
            let tok = &old[*it];
            *it = *map
                .get(tok)
                .ok_or_else(|| format!("{what}: item `{tok}` of the dataset is not in the map"))?;
        }
    }
    let n = map.values().copied().max().unwrap_or(0);
    data.items = vec!["[PAD]".to_string(); n + 1];
    for (tok, &id) in map {
        data.items[id] = tok.clone();
    }
    Ok(())
}

pub fn run(args: &EvalArgs) -> Result<(), String> {
    let mut data = crate::datasets::load_dataset(&args.dataset)?;
    if let Some(w) = data.learning_signal_warning() {
        eprintln!("warning: {w}");
    }
    let model = load_weights(&args.weights, &mut data, args.item_map.as_deref())?;
    let split = match args.split {
        SplitArg::Test => Split::Test,
        SplitArg::Valid => Split::Valid,
    };
    let mut cases = eval_cases(&data, split, model.max_len());
    if let Some(r) = args.noise {
        cases = noisy(cases, r, args.seed, &data, model.max_len())
            .map_err(|e| format!("--noise: {e}"))?;
    }
    let opts = EvalOptions {
        mask_history: args.mask_history,
        negatives: mclrec_trainer::sampled_eval::sampled_negatives(&data, &cases, args.eval)
            .map(std::sync::Arc::new),
        ..Default::default()
    };
    let start = Instant::now();
    let res = evaluate(&*model, &cases, &opts);
    let secs = start.elapsed().as_secs_f64();
    // Users by the length of their whole sequence, each group's metrics from its ranks.
    let groups = if args.by_length {
        by_length(&cases, &res.ranks, &data)
    } else {
        Vec::new()
    };
    if args.json {
        let mut out =
            serde_json::json!({ split.name(): res.metrics.to_json(), "eval": args.eval.name() });
        if let Some(r) = args.noise {
            out["noise"] = serde_json::json!(r);
        }
        if args.by_length {
            let by: serde_json::Map<String, serde_json::Value> = groups
                .iter()
                .map(|(label, n, m)| {
                    let mut v = m.to_json();
                    v["users"] = serde_json::json!(n);
                    (label.to_string(), v)
                })
                .collect();
            out["by_length"] = serde_json::Value::Object(by);
        }
        println!("{out}");
    } else {
        println!(
            "{} users of {}, {} items, {} split, {} ranking{}",
            cases.len(),
            data.name,
            data.n_items(),
            split.name(),
            args.eval.name(),
            if args.mask_history {
                ", history masked"
            } else {
                ""
            }
        );
        if let Some(r) = args.noise {
            println!(
                "noise: {r} of each input's length inserted as random items (seed {})",
                args.seed
            );
        }
        print!("{}", res.metrics.table(split.name()));
        for (label, n, m) in &groups {
            println!("\nusers with sequence length {label} ({n} users)");
            print!("{}", m.table(split.name()));
        }
    }
    eprintln!("evaluated {} users in {secs:.3} s", cases.len());
    Ok(())
}
