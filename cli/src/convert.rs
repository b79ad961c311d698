//! `mclrec-cli convert IN OUT`: weights to safetensors (from a PyTorch `.pth`, checked).

use std::path::PathBuf;

use clap::Args;
use mclrec_models::weights::{inspect, read_weights_file, write_atomic};

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// A PyTorch checkpoint (`.pth`, a state dict or a dict holding one under `state_dict`)
    /// or a safetensors file.
    input: PathBuf,
    /// The safetensors file to write (it must not exist).
    output: PathBuf,
}

pub fn run(args: &ConvertArgs) -> Result<(), String> {
    if args.output.exists() {
        return Err(format!(
            "{}: exists; remove it or choose another name",
            args.output.display()
        ));
    }
    let bytes = read_weights_file(&args.input).map_err(|e| e.to_string())?;
    let (shapes, _) = inspect(&bytes).map_err(|e| format!("{}: {e}", args.input.display()))?;
    write_atomic(&args.output, &bytes)
        .map_err(|e| format!("{}: cannot write ({e})", args.output.display()))?;
    let values: usize = shapes
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    println!(
        "{} tensors ({values} values) written to {}",
        shapes.len(),
        args.output.display()
    );
    Ok(())
}
