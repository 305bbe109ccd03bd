//! CPU inference speed of a SimCLRv2 encoder (random weights: the time does not depend on them), for the figure
//! in `docs/guide.md`. Prints one line per timed batch and the mean throughput.
//!
//! ```text
//! cargo run --release --example simclrv2_speed -- [--arch r50_1x_sk1] [--batch 32] [--size 224] [--batches 3]
//! ```

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use cadet::model::{FeatureModel, ResNetConfig, SimClrV2Config};
use clap::Parser;

#[derive(Parser)]
#[command(about = "CPU inference speed of a SimCLRv2 encoder")]
struct Args {
    /// SimCLRv2 architecture (`r50_1x_sk1`, `r152_3x_sk1`, …).
    #[arg(long, default_value = "r50_1x_sk1")]
    arch: String,
    /// Images per forward pass (1 to 4096).
    #[arg(long, default_value_t = 32, value_parser = cadet_report::cli::count_up_to(4096))]
    batch: usize,
    /// Image side (1 to 4096).
    #[arg(long, default_value_t = 224, value_parser = cadet_report::cli::count_up_to(4096))]
    size: usize,
    /// Timed forward passes after one untimed (1 to 10000).
    #[arg(long, default_value_t = 3, value_parser = cadet_report::cli::count_up_to(10_000))]
    batches: usize,
    /// Also time torchvision's ResNet-50 on the same input, for comparison.
    #[arg(long)]
    torchvision: bool,
}

/// Seconds per forward pass of `model` over `x`, after one untimed pass.
fn time(model: &impl FeatureModel, x: &Tensor<4>, batches: usize, what: &str) -> f64 {
    let run = || {
        let start = Instant::now();
        let features = model.forward_features(x.clone());
        // Reading the result back waits for the computation.
        let _ = features.into_data();
        start.elapsed().as_secs_f64()
    };
    run();
    let mut total = 0.0;
    for i in 0..batches {
        let s = run();
        eprintln!("{what}: batch {} {:.2} s", i + 1, s);
        total += s;
    }
    total / batches as f64
}

/// A ResNet's inference holds a few activation maps at once, each up to about 5× the input (64 channels at
/// half resolution), and the stem's convolution unfolds its input (49 taps): the input times this bounds the
/// peak memory (measured: 41× for ResNet-50 at 4096 px, up to 46× at 1200 px), times the width multiplier,
/// checked before allocating; the weights are checked when the network is built.
const ACTIVATIONS_PER_INPUT: u128 = 64;

/// The program itself (code, allocator, threads), counted in the memory check.
const PROGRAM_BYTES: u128 = 256 << 20;

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(&Args::parse()))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = SimClrV2Config::from_arch(&args.arch)?;
    let input = 4 * 3 * (args.batch * args.size * args.size) as u128;
    cadet_core::limits::check_memory(
        &format!(
            "a batch of {} at {} px and its activations ({})",
            args.batch,
            args.size,
            config.name()
        ),
        ACTIVATIONS_PER_INPUT * input * config.width_multiplier.max(1) as u128 + PROGRAM_BYTES,
        cadet_core::limits::Limits::default().max_alloc_bytes,
        "use a smaller --batch or --size",
    )?;
    let device = Device::flex();
    let net = config.init(&device)?;
    let x = Tensor::<4>::random(
        [args.batch, 3, args.size, args.size],
        Distribution::Uniform(0.0, 1.0),
        &device,
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_batch = time(&net, &x, args.batches, &config.name());
    println!(
        "{}: {:.1} images/s ({:.2} s per batch of {} at {} px, {} threads)",
        config.name(),
        args.batch as f64 / per_batch,
        per_batch,
        args.batch,
        args.size,
        threads
    );
    if args.torchvision {
        let tv = ResNetConfig::new(50).init(&device)?;
        let per_batch = time(&tv, &x, args.batches, "resnet50");
        println!(
            "torchvision resnet50: {:.1} images/s ({:.2} s per batch)",
            args.batch as f64 / per_batch,
            per_batch
        );
    }
    Ok(())
}
