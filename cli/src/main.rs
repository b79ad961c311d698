//! `mclrec-cli`: train, evaluate and recommend with MCLRec.
//!
//! Every user mistake ends in one line `error: ...` on stderr and exit code 2 (clap's usage
//! errors do the same), never a panic.

mod bench;
mod datasets;
mod eval;
mod train;

use std::process::ExitCode;

/// Training allocates and frees many large buffers per step; mimalloc keeps them mapped
/// instead of returning them to the kernel each time (10% of a step went to page faults
/// with the system allocator).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// MCLRec (SIGIR'23) sequential recommendation in Rust.
#[derive(Parser)]
#[command(name = "mclrec-cli", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Trains MCLRec (or SASRec / CL4SRec) and reports validation and test metrics.
    Run(train::RunArgs),
    /// Times training batches with the real schedule (samples/s, s/epoch, GFLOP/s, RSS).
    Bench(bench::BenchArgs),
    /// Evaluates weights (this project's checkpoints or official PyTorch weights in
    /// safetensors) on a dataset's validation or test split with full ranking.
    Eval(eval::EvalArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => train::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Eval(args) => eval::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
