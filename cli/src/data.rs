//! `mclrec-cli data stats|check FILE`.

use std::path::PathBuf;

use clap::Subcommand;
use mclrec_trainer::Dataset;

use crate::datasets::load_dataset;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Users, items, actions, average length and sparsity (as the paper's Table 2).
    Stats {
        /// `beauty`, `sports`, or a dataset file.
        file: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Validates a dataset file and lists every problem with its line number.
    Check {
        /// The dataset file.
        file: PathBuf,
    },
    /// A raw log (CSV / TSV / JSON lines, gzip or not) to a dataset: k-core filtering,
    /// optional de-duplication, chronological sequences, id maps and statistics.
    Prepare(crate::prepare::PrepareArgs),
}

/// The numbers of the paper's Table 2.
pub fn stats(d: &Dataset) -> serde_json::Value {
    let (u, i, a) = (
        d.n_users() as f64,
        d.n_items() as f64,
        d.n_interactions() as f64,
    );
    serde_json::json!({
        "users": d.n_users(), "items": d.n_items(), "actions": d.n_interactions(),
        "avg_length": a / u, "sparsity": 1.0 - a / (u * i),
    })
}

pub fn run(cmd: &DataCommand) -> Result<(), String> {
    match cmd {
        DataCommand::Stats { file, json } => {
            let d = load_dataset(file)?;
            let s = stats(&d);
            if *json {
                println!("{s}");
            } else {
                println!("dataset     {}", d.name);
                println!("users       {}", s["users"]);
                println!("items       {}", s["items"]);
                println!("actions     {}", s["actions"]);
                println!("avg length  {:.2}", s["avg_length"].as_f64().unwrap());
                println!(
                    "sparsity    {:.2}%",
                    100.0 * s["sparsity"].as_f64().unwrap()
                );
            }
            Ok(())
        }
        DataCommand::Prepare(args) => crate::prepare::run(args),
        DataCommand::Check { file } => {
            let (d, problems) = Dataset::check(file).map_err(|e| e.to_string())?;
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                println!(
                    "{}: ok ({} users, {} items, {} actions)",
                    file.display(),
                    d.n_users(),
                    d.n_items(),
                    d.n_interactions()
                );
                Ok(())
            } else {
                Err(format!("{}: {} problem(s)", file.display(), problems.len()))
            }
        }
    }
}
