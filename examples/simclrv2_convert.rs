//! A released SimCLRv2 TensorFlow checkpoint (`<prefix>.index` + `<prefix>.data-…`) to the safetensors file that
//! `embed --simclrv2` and `load_simclrv2` read, without TensorFlow or PyTorch.
//!
//! ```text
//! cargo run --release --example simclrv2_convert -- --tf r50_1x_sk1/model.ckpt-250228 --out r50_1x_sk1.safetensors
//!     [--arch r50_1x_sk1] [--base-width 64] [--ema]
//! ```
//! The architecture comes from the checkpoint's path (`r50_1x_sk1/…`) unless `--arch` names it.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use std::path::PathBuf;

use cadet::model::SimClrV2Config;
use clap::Parser;

#[derive(Parser)]
#[command(about = "SimCLRv2 TensorFlow checkpoint → safetensors in the PyTorch converter's layout")]
struct Args {
    /// The checkpoint's prefix (the `.index` file without its extension).
    #[arg(long)]
    tf: PathBuf,
    /// Output `.safetensors`.
    #[arg(long)]
    out: PathBuf,
    /// Architecture (`r50_1x_sk1`, …) instead of the one the path names.
    #[arg(long)]
    arch: Option<String>,
    /// Base width: 64 in every released checkpoint; by default the path's `_w<width>` (as in `r50_1x_sk1_w2`),
    /// else 64.
    #[arg(long)]
    base_width: Option<usize>,
    /// The exponential-moving-average weights (`ema_model/…`) instead of the trained ones.
    #[arg(long)]
    ema: bool,
}

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(&Args::parse()))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // Without --arch: the innermost path component that names an architecture (`…/r152_3x_sk1/model.ckpt-…`).
    let config = match &args.arch {
        // Read exactly: a typo is an error, not another network.
        Some(arch) => SimClrV2Config::from_arch(arch)?,
        None => args
            .tf
            .iter()
            .rev()
            .find_map(|part| SimClrV2Config::from_name(&part.to_string_lossy()).ok())
            .ok_or_else(|| {
                format!(
                    "no architecture name (e.g. r50_1x_sk1) in {}: give --arch",
                    args.tf.display()
                )
            })?,
    };
    let config = match args.base_width {
        Some(width)
            if width != config.base_width
                && args.arch.as_deref().is_some_and(|a| a.contains("_w")) =>
        {
            return Err(format!(
                "--base-width {width} and --arch {} disagree on the base width",
                args.arch.as_deref().unwrap_or_default()
            )
            .into());
        }
        Some(width) => config.with_base_width(width),
        None => config,
    };
    let written = config.convert_tf_checkpoint(&args.tf, args.ema, &args.out)?;
    println!(
        "{}: {written} tensors → {}",
        config.name(),
        args.out.display()
    );
    Ok(())
}
