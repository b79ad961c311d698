//! `mclrec-cli`: train, evaluate and recommend with MCLRec.
//!
//! Every user mistake ends in one line `error: ...` on stderr and exit code 2 (clap's usage
//! errors do the same), never a panic. An interrupted `run` exits with 130.
// The doc comments of the argument structs are clap's help texts (`[default: ...]`,
// `runs/<model>`), written for a terminal, not for rustdoc.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod bench;
mod convert;
mod data;
mod datasets;
mod eval;
mod export;
mod figures;
mod interrupt;
mod plots;
mod prepare;
mod progress;
mod raw_log;
mod recommend;
mod serve;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keeps freed memory in the process. A training step allocates and frees the same large
/// buffers (up to 12 MB: 256 x 12,101 scores) every batch; by default glibc serves those
/// with fresh `mmap`s and the kernel zeroes their (huge) pages again each time, which took
/// 10-25% of a step (perf: `clear_page_erms`). With the mmap threshold at its 32 MB maximum
/// and no trimming, they are reused from the heap after the first batch.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// MCLRec (SIGIR'23) sequential recommendation in Rust.
#[derive(Parser)]
#[command(name = "mclrec-cli", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Trains a model of the paper's Table 3 family (MCLRec, CL4SRec, SASRec, BERT4Rec,
    /// S3-Rec, Caser, GRU4Rec, BPR) and reports validation and test metrics. With no options:
    /// MCLRec on the built-in Amazon-Beauty data with the paper's settings.
    Run(Box<train::RunArgs>),
    /// Evaluates weights (this project's checkpoints or official PyTorch weights in
    /// safetensors) on a dataset's validation or test split with full ranking.
    Eval(eval::EvalArgs),
    /// Writes weights as safetensors (a PyTorch `.pth` is read without Python).
    Convert(convert::ConvertArgs),
    /// The top-k items for a user of a dataset or for a new sequence of items.
    Recommend(recommend::RecommendArgs),
    /// Serves recommendations over HTTP (POST /recommend, GET /users/{user}/recommend,
    /// /health, /metadata), batching concurrent requests into one forward pass.
    Serve(serve::ServeArgs),
    /// Dataset statistics and validation.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// The paper's comparison figures as PNG (noise robustness, length groups, validation
    /// curves), with their numbers as markdown tables.
    #[command(subcommand)]
    Figure(figures::FigureCommand),
    /// Times training batches with the real schedule (samples/s, s/epoch, GFLOP/s, RSS).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    // `run` and `bench` choose their thread count; the rest use one worker per core.
    if !matches!(cli.command, Command::Run(_) | Command::Bench(_)) {
        if let Err(e) = train::set_threads(0) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let result = match cli.command {
        Command::Run(args) => train::run(&args),
        Command::Eval(args) => eval::run(&args).map_err(|m| (m, 2)),
        Command::Recommend(args) => recommend::run(&args).map_err(|m| (m, 2)),
        Command::Convert(args) => convert::run(&args).map_err(|m| (m, 2)),
        Command::Serve(args) => serve::run(&args).map_err(|m| (m, 2)),
        Command::Data(cmd) => data::run(&cmd).map_err(|m| (m, 2)),
        Command::Bench(args) => bench::run(&args).map_err(|m| (m, 2)),
        Command::Figure(cmd) => figures::run(&cmd).map_err(|m| (m, 2)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}
