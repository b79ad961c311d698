//! `mclrec-cli figure`: the paper's comparison figures as PNG, from this tool's own runs
//! and evaluations, with the numbers behind each figure printed as a markdown table.
//!
//! - `figure noise`: test HR@20 and NDCG@20 of several models as a proportion R of random
//!   items is inserted into every test input (the paper's Figure 7);
//! - `figure groups`: the same metrics per user group of sequence length (Figure 8);
//! - `figure curves`: validation HR@20 and NDCG@20 per epoch of several runs;
//! - `figure batch`: test HR@20 and NDCG@20 of finished runs against their batch size
//!   (Figure 4), the runs of one name averaged at each batch size.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use mclrec_trainer::evaluate::{evaluate, EvalOptions};
use mclrec_trainer::{eval_cases, Split};
use plotters::prelude::*;

use crate::eval::{by_length, load_weights, noisy};
use crate::plots::{legend, range, read, register_font, Err};

#[derive(Subcommand, Debug)]
pub enum FigureCommand {
    /// Test metrics against the proportion of random items inserted into each input.
    Noise(NoiseArgs),
    /// Test metrics per user group of sequence length (= 5, 6-8, > 8).
    Groups(ModelsArgs),
    /// Validation metrics per epoch of several runs.
    Curves(RunsArgs),
    /// Test metrics of finished runs against their batch size (runs sharing a name and a
    /// batch size are averaged).
    Batch(RunsArgs),
}

#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// A model to compare, as `NAME=WEIGHTS.safetensors` (repeat the option).
    #[arg(long = "model", value_name = "NAME=PATH", required = true)]
    models: Vec<String>,
    /// The dataset: `beauty`, `sports` or a file.
    #[arg(long, default_value = "beauty")]
    dataset: String,
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Debug)]
pub struct NoiseArgs {
    #[command(flatten)]
    models: ModelsArgs,
    /// The noise proportions R (0 = the clean test set).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,0.05,0.1,0.15,0.2,0.3",
        allow_negative_numbers = true
    )]
    ratios: Vec<f64>,
    /// The seed of the inserted items (the same for every model).
    #[arg(long, default_value_t = 2023, allow_negative_numbers = true)]
    seed: u64,
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    /// A run directory to draw, as `NAME=DIR` (repeat the option).
    #[arg(long = "run", value_name = "NAME=DIR", required = true)]
    runs: Vec<String>,
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
}

/// `NAME=PATH` into its two halves.
fn named(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() => Ok((n.to_string(), PathBuf::from(p))),
        _ => Err(format!("`{arg}`: expected NAME=PATH")),
    }
}

/// One line of a chart: a name and its points.
type Line = (String, Vec<(f64, f64)>);

const COLORS: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];

/// How the x axis of [`two_panels`] spaces its values.
#[derive(Clone, Copy, PartialEq)]
enum XAxis {
    Linear,
    /// Powers of two evenly spaced (batch sizes 64, 128, 256), ticked with their values.
    Log2,
}

/// Two panels side by side (HR@20 | NDCG@20), one line per entry of `hr` / `ndcg`.
fn two_panels(
    out: &Path,
    title: &str,
    (x_desc, axis): (&str, XAxis),
    (hr, ndcg): (&[Line], &[Line]),
    position: SeriesLabelPosition,
) -> Result<(), Err> {
    register_font();
    let root = BitMapBackend::new(out, (1100, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let areas = root.split_evenly((1, 2));
    let x = |v: f64| if axis == XAxis::Log2 { v.log2() } else { v };
    for (area, (metric, lines)) in areas.iter().zip([("HR@20", hr), ("NDCG@20", ndcg)]) {
        let xs: Vec<f64> = lines
            .iter()
            .flat_map(|l| l.1.iter().map(|p| x(p.0)))
            .collect();
        let ys: Vec<f64> = lines.iter().flat_map(|l| l.1.iter().map(|p| p.1)).collect();
        let ((x0, x1), (y0, y1)) = (range(&xs), range(&ys));
        let mut chart = ChartBuilder::on(area)
            .caption(metric, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let power_of_two = |v: &f64| {
            // Only the whole powers get a label; the ticks between them stay blank.
            let k = v.round();
            if (v - k).abs() < 1e-9 {
                format!("{}", 2f64.powi(k as i32))
            } else {
                String::new()
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_desc).label_style(("sans-serif", 12));
        if axis == XAxis::Log2 {
            mesh.x_label_formatter(&power_of_two);
        }
        mesh.draw()?;
        for (i, (name, pts)) in lines.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let pts: Vec<(f64, f64)> = pts.iter().map(|&(a, b)| (x(a), b)).collect();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
        legend(&mut chart, position.clone())?;
    }
    root.present()?;
    Ok(())
}

/// Test metrics of each model at each noise proportion.
fn noise(args: &NoiseArgs) -> Result<(), String> {
    let m = &args.models;
    let mut data = crate::datasets::load_dataset(&m.dataset)?;
    let (mut hr, mut ndcg) = (Vec::new(), Vec::new());
    println!(
        "| model | {} |",
        args.ratios
            .iter()
            .map(|r| format!("R = {r}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(args.ratios.len()));
    for spec in &m.models {
        let (name, path) = named(spec)?;
        let model = load_weights(&path, &mut data, None)?;
        let max_len = model.max_len();
        let mut cells = Vec::new();
        let (mut h, mut n) = (Vec::new(), Vec::new());
        for &r in &args.ratios {
            let cases = noisy(
                eval_cases(&data, Split::Test, max_len),
                r,
                args.seed,
                &data,
                max_len,
            )?;
            let res = evaluate(&*model, &cases, &EvalOptions::default()).metrics;
            let (a, b) = (
                res.get("hr@20").expect("hr@20"),
                res.get("ndcg@20").expect("ndcg@20"),
            );
            cells.push(format!("{a:.4} / {b:.4}"));
            h.push((r, a));
            n.push((r, b));
        }
        println!("| {name} (HR@20 / NDCG@20) | {} |", cells.join(" | "));
        hr.push((name.clone(), h));
        ndcg.push((name, n));
    }
    let title = format!("{}: test metrics with random items inserted", data.name);
    let panels = (hr.as_slice(), ndcg.as_slice());
    two_panels(
        &m.out,
        &title,
        ("inserted proportion R", XAxis::Linear),
        panels,
        SeriesLabelPosition::LowerLeft,
    )
    .map_err(|e| format!("{}: {e}", m.out.display()))
}

/// Test metrics of each model per length group, as grouped bars.
fn groups(args: &ModelsArgs) -> Result<(), String> {
    let mut data = crate::datasets::load_dataset(&args.dataset)?;
    let mut rows = Vec::new();
    println!("| model | group | users | HR@20 | NDCG@20 |");
    println!("|---|---|---|---|---|");
    for spec in &args.models {
        let (name, path) = named(spec)?;
        let model = load_weights(&path, &mut data, None)?;
        let cases = eval_cases(&data, Split::Test, model.max_len());
        let res = evaluate(&*model, &cases, &EvalOptions::default());
        let g = by_length(&cases, &res.ranks, &data);
        for (label, users, m) in &g {
            let (a, b) = (
                m.get("hr@20").expect("hr@20"),
                m.get("ndcg@20").expect("ndcg@20"),
            );
            println!("| {name} | {label} | {users} | {a:.4} | {b:.4} |");
        }
        rows.push((name, g));
    }
    draw_groups(&args.out, &data.name, &rows).map_err(|e| format!("{}: {e}", args.out.display()))
}

type GroupRow = (String, Vec<(&'static str, usize, mclrec_trainer::Metrics)>);

fn draw_groups(out: &Path, dataset: &str, rows: &[GroupRow]) -> Result<(), Err> {
    register_font();
    let root = BitMapBackend::new(out, (1100, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!("{dataset}: test metrics by sequence length"),
        ("sans-serif", 20),
    )?;
    let areas = root.split_evenly((1, 2));
    let labels: Vec<&str> = rows
        .first()
        .map_or(vec![], |r| r.1.iter().map(|g| g.0).collect());
    let k = rows.len().max(1) as f64;
    for (area, (metric, caption)) in areas
        .iter()
        .zip([("hr@20", "HR@20"), ("ndcg@20", "NDCG@20")])
    {
        let top = rows
            .iter()
            .flat_map(|r| r.1.iter().map(|g| g.2.get(metric).unwrap_or(0.0)))
            .fold(0.0f64, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..labels.len() as f64, 0f64..top.max(1e-3))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 0.01 && i < labels.len() {
                    format!("length {}", labels[i])
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 12))
            .draw()?;
        for (j, (name, g)) in rows.iter().enumerate() {
            let c = COLORS[j % COLORS.len()];
            chart
                .draw_series(g.iter().enumerate().map(|(i, (_, _, m))| {
                    let x0 = i as f64 + 0.1 + 0.8 * j as f64 / k;
                    let v = m.get(metric).unwrap_or(0.0);
                    Rectangle::new([(x0, 0.0), (x0 + 0.8 / k, v)], c.filled())
                }))?
                .label(name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present()?;
    Ok(())
}

/// Validation curves of several runs.
fn curves(args: &RunsArgs) -> Result<(), String> {
    let (mut hr, mut ndcg) = (Vec::new(), Vec::new());
    for spec in &args.runs {
        let (name, dir) = named(spec)?;
        let s = read(&dir)?;
        if s.epochs.is_empty() {
            return Err(format!("{}: no epochs in metrics.jsonl", dir.display()));
        }
        let pts = |v: &[f64]| -> Vec<(f64, f64)> {
            s.epochs.iter().copied().zip(v.iter().copied()).collect()
        };
        hr.push((name.clone(), pts(&s.hr20)));
        ndcg.push((name, pts(&s.ndcg20)));
    }
    let panels = (hr.as_slice(), ndcg.as_slice());
    let legend = SeriesLabelPosition::LowerRight;
    two_panels(
        &args.out,
        "validation metrics per epoch",
        ("epoch", XAxis::Linear),
        panels,
        legend,
    )
    .map_err(|e| format!("{}: {e}", args.out.display()))
}

/// A finished run's batch size (from its `config.toml`) and test HR@20 / NDCG@20 (from
/// its `results.json`).
fn batch_point(dir: &Path) -> Result<(u64, f64, f64), String> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p)
            .map_err(|e| format!("{}: cannot read ({e})", p.display()))
            .map(|t| (p, t))
    };
    // Only the one key: the full settings check (`TrainArgs::resolve`) would refuse a run
    // trained with `--device cuda` on a build without the `cuda` feature.
    let (p, text) = read("config.toml")?;
    let config: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    let batch = config
        .get("batch_size")
        .and_then(|v| v.as_integer())
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| format!("{}: no batch_size", p.display()))?;
    let (p, text) = read("results.json")?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    let metric = |k: &str| {
        v["test"][k]
            .as_f64()
            .ok_or_else(|| format!("{}: no test {k}", p.display()))
    };
    Ok((batch, metric("hr@20")?, metric("ndcg@20")?))
}

/// Batch size -> the test (HR@20, NDCG@20) of each run at that size.
type RunsBySize = std::collections::BTreeMap<u64, Vec<(f64, f64)>>;

/// Test metrics against batch size, one line per run name.
fn batch(args: &RunsArgs) -> Result<(), String> {
    // name -> batch size -> the (HR@20, NDCG@20) of each of its runs, names in the order given.
    let mut by_name: Vec<(String, RunsBySize)> = vec![];
    for spec in &args.runs {
        let (name, dir) = named(spec)?;
        let (b, hr, ndcg) = batch_point(&dir)?;
        let i = match by_name.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                by_name.push((name, Default::default()));
                by_name.len() - 1
            }
        };
        by_name[i].1.entry(b).or_default().push((hr, ndcg));
    }
    let sizes: std::collections::BTreeSet<u64> = by_name
        .iter()
        .flat_map(|(_, m)| m.keys().copied())
        .collect();
    let header: Vec<String> = sizes.iter().map(|b| format!("B = {b}")).collect();
    println!("| model (HR@20 / NDCG@20) | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(sizes.len()));
    let mean = |v: &[(f64, f64)]| {
        let n = v.len() as f64;
        let (a, b) = v.iter().fold((0.0, 0.0), |s, p| (s.0 + p.0, s.1 + p.1));
        (a / n, b / n)
    };
    let (mut hr, mut ndcg) = (Vec::new(), Vec::new());
    for (name, runs) in &by_name {
        let cells: Vec<String> = sizes
            .iter()
            .map(|b| match runs.get(b) {
                Some(v) if v.len() > 1 => {
                    let (a, c) = mean(v);
                    format!("{a:.4} / {c:.4} (mean of {})", v.len())
                }
                Some(v) => format!("{:.4} / {:.4}", v[0].0, v[0].1),
                None => String::new(),
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
        let points: Vec<(f64, (f64, f64))> =
            runs.iter().map(|(&b, v)| (b as f64, mean(v))).collect();
        hr.push((name.clone(), points.iter().map(|p| (p.0, p.1 .0)).collect()));
        ndcg.push((name.clone(), points.iter().map(|p| (p.0, p.1 .1)).collect()));
    }
    two_panels(
        &args.out,
        "test metrics by batch size",
        ("batch size", XAxis::Log2),
        (hr.as_slice(), ndcg.as_slice()),
        SeriesLabelPosition::UpperLeft,
    )
    .map_err(|e| format!("{}: {e}", args.out.display()))
}

pub fn run(cmd: &FigureCommand) -> Result<(), String> {
    let out = match cmd {
        FigureCommand::Noise(a) => {
            noise(a)?;
            &a.models.out
        }
        FigureCommand::Groups(a) => {
            groups(a)?;
            &a.out
        }
        FigureCommand::Curves(a) => {
            curves(a)?;
            &a.out
        }
        FigureCommand::Batch(a) => {
            batch(a)?;
            &a.out
        }
    };
    eprintln!("wrote {}", out.display());
    Ok(())
}
