//! `mclrec-cli bench`: training speed with the real schedule.

use clap::Args;
use serde_json::json;

use mclrec_trainer::{ModelKind, PartialConfig, Schedule, SettingValue};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// `beauty`, `sports`, or a dataset path.
    #[arg(long, default_value = "beauty")]
    dataset: String,
    /// The model (bpr, gru4rec, caser, sasrec, bert4rec, s3rec-mip, cl4srec, duorec, mclrec).
    #[arg(long, default_value = "mclrec")]
    model: ModelKind,
    /// MCLRec's schedule (three-step, two-stage, joint) [default: three-step].
    #[arg(long, value_parser = Schedule::from_text)]
    schedule: Option<Schedule>,
    /// Longest input sequence (Caser's window) [default: the model's].
    #[arg(long, allow_negative_numbers = true)]
    max_len: Option<usize>,
    /// Timed batches.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
    batches: usize,
    /// Untimed warm-up batches.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    warmup: usize,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    threads: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

pub fn run(args: &BenchArgs) -> Result<(), String> {
    if args.batches == 0 {
        return Err("--batches must be at least 1".into());
    }
    crate::train::set_threads(args.threads)?;
    let train = crate::train::TrainArgs {
        settings: crate::train::SettingFlags(PartialConfig {
            dataset: Some(args.dataset.clone()),
            model: Some(args.model),
            schedule: args.schedule,
            device: Some(args.device.clone()),
            max_len: args.max_len,
            ..Default::default()
        }),
        ..Default::default()
    };
    let resolved = train.resolve(None)?;
    let (config, data) = (resolved.config, resolved.source.data);
    let r = mclrec_trainer::bench::bench(&config, &data, args.warmup, args.batches)?;
    let threads = rayon::current_num_threads();
    let pool = mclrec_tensor::host_buffer_stats();
    if args.json {
        println!(
            "{}",
            json!({
                "model": config.model.name(), "threads": threads,
                "device": config.device,
                "batches": args.batches, "s_per_batch_median": r.median_batch_s,
                "samples_per_s": r.samples_per_s, "s_per_epoch": r.s_per_epoch,
                "gflops": r.gflops, "peak_rss_mb": peak_rss_mb(),
                "host_buffers": {"fresh": pool.fresh, "reused": pool.reused},
            })
        );
    } else {
        println!(
            "{} on {} ({}, {threads} threads), {} batches after {} warm-up",
            config.model.name(),
            data.name,
            config.device,
            args.batches,
            args.warmup
        );
        println!("  median s/batch   {:.4}", r.median_batch_s);
        println!("  samples/s        {:.0}", r.samples_per_s);
        println!(
            "  s/epoch          {:.1}  ({} batches)",
            r.s_per_epoch, r.batches_per_epoch
        );
        match r.gflops {
            Some(g) => println!("  useful GFLOP/s   {g:.1}"),
            None => println!("  useful GFLOP/s   (counted for sasrec, cl4srec and mclrec only)"),
        }
        println!("  peak RSS         {:.0} MiB", peak_rss_mb());
        println!(
            "  host buffers     {} reused, {} fresh (the CPU backend's pool)",
            pool.reused, pool.fresh
        );
    }
    Ok(())
}
