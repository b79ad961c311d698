//! `mclrec-cli recommend`: the top-k items for a user of a dataset, or for a new sequence.

use std::path::PathBuf;

use clap::Args;
use mclrec_trainer::evaluate::recommend;

use crate::datasets::load_dataset;

#[derive(Args, Debug)]
pub struct RecommendArgs {
    /// Weights: a run's best.safetensors / last.safetensors, or official weights
    /// (safetensors or PyTorch `.pth`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The dataset the weights were trained on (`beauty`, `sports`, or a file).
    #[arg(long, default_value = "beauty")]
    dataset: String,
    /// A user token of the dataset: recommend what follows their whole history.
    #[arg(long, conflicts_with_all = ["history", "all"])]
    user: Option<String>,
    /// A new sequence of item tokens, oldest first, separated by spaces.
    #[arg(long, conflicts_with = "all")]
    history: Option<String>,
    /// Every user of the dataset, written to --out (TSV, or Parquet for a `.parquet` file).
    #[arg(long, requires = "out")]
    all: bool,
    /// The file of `--all` (it must not exist).
    #[arg(long, requires = "all")]
    out: Option<PathBuf>,
    /// The format of --out [default: by its extension].
    #[arg(long, value_enum, requires = "all")]
    format: Option<crate::export::ExportFormat>,
    /// How many items.
    #[arg(short, long, default_value_t = 10, allow_negative_numbers = true)]
    k: usize,
    /// Allow items already in the history.
    #[arg(long)]
    include_history: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &RecommendArgs) -> Result<(), String> {
    if args.k == 0 {
        return Err("-k must be at least 1".into());
    }
    let mut data = load_dataset(&args.dataset)?;
    let model = crate::eval::load_weights(&args.checkpoint, &mut data, None)?;
    if args.k > data.n_items() {
        return Err(format!(
            "-k {} is more than the {} items of {}",
            args.k,
            data.n_items(),
            data.name
        ));
    }
    if args.all {
        let out = args.out.as_deref().expect("clap: --all requires --out");
        if out.exists() {
            return Err(format!(
                "{}: exists; remove it or choose another --out",
                out.display()
            ));
        }
        let format = args
            .format
            .unwrap_or_else(|| crate::export::ExportFormat::of(out));
        let e =
            crate::export::export_all(&*model, &data, args.k, args.include_history, out, format)?;
        eprintln!(
            "top-{} of {} users written to {} in {:.2} s ({:.0} users/s)",
            args.k,
            e.users,
            out.display(),
            e.seconds,
            e.users as f64 / e.seconds
        );
        return Ok(());
    }
    let (user, history): (usize, Vec<usize>) = match (&args.user, &args.history) {
        (Some(u), _) => {
            let i = data
                .user_index(u)
                .ok_or_else(|| format!("unknown user `{u}` (not in {})", data.name))?;
            (i, data.sequences[i].clone())
        }
        (None, Some(_)) if model.needs_known_user() => {
            return Err(format!(
                "--history: a {} model scores the users it was trained on only (it has a row per user, not a sequence encoder); give --user TOKEN",
                model.name()
            ))
        }
        (None, Some(h)) => (0, h
            .split_whitespace()
            .map(|t| {
                data.item_id(t).ok_or_else(|| {
                    format!("--history: unknown item token `{t}` (not in {})", data.name)
                })
            })
            .collect::<Result<_, _>>()?),
        (None, None) => {
            return Err("give --user TOKEN, --history \"ITEM ITEM ...\" or --all --out FILE".into())
        }
    };
    if history.is_empty() {
        return Err("--history is empty".into());
    }
    let max_len = model.max_len();
    let input = &history[history.len().saturating_sub(max_len)..];
    let exclude = if args.include_history {
        vec![]
    } else {
        history.clone()
    };
    let top = recommend(&*model, &[user], &[input], &[exclude], args.k).remove(0);
    if args.json {
        let items: Vec<_> = top
            .iter()
            .map(|(j, s)| serde_json::json!({"item": data.items[*j], "score": s}))
            .collect();
        println!("{}", serde_json::Value::Array(items));
    } else {
        println!("rank  item        score");
        for (r, (j, s)) in top.iter().enumerate() {
            println!("{:>4}  {:<10}  {:.4}", r + 1, data.items[*j], s);
        }
    }
    Ok(())
}
