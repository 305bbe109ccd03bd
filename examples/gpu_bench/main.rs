//! Device check and timings for a GPU machine (issues 4 and 6): the device's outputs against the CPU's on the
//! same weights and inputs, ResNet-50 inference, the SimCLR training step (ResNet-50 + SimCLRv2 head, NT-Xent,
//! LARS) and PGD-50 against a ResNet-50 classifier. `scripts/gpu-check.sh` builds it with `--features cuda` and
//! runs it beside `../shared/bench/torch_anchor.py`.
//!
//! ```text
//! cargo run --release --features cuda --example gpu_bench -- --device cuda:0 [--batch 128] [--size 224]
//!     [--steps 10] [--warmup 4] [--what all|compare|infer|train|pgd]
//! ```
//! Inputs are random tensors made on the device (the timings exclude data loading and augmentation). Prints one
//! JSON object per measurement.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

mod measures;

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use cadet::model::{ResNetConfig, SimClr, SimClrConfig};
use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(about = "CPU-vs-device check and timings of ResNet-50 inference, SimCLR step and PGD-50")]
struct Args {
    /// Device: cuda:N (built with --features cuda) or cpu.
    #[arg(long, default_value = "cuda:0")]
    device: String,
    /// The folder CubeCL keeps its autotuning results and compiled kernels in between runs (default: CubeCL's,
    /// `target/environment` of the Cargo workspace above the working folder, or ~/.cache/cubecl).
    #[arg(long, env = "CADET_TUNE_CACHE", value_name = "DIR")]
    tune_cache: Option<std::path::PathBuf>,
    /// With `--what infer|train`: the forward pass's arithmetic, f32 or bf16 (mixed precision: f32 weights,
    /// batch norm and loss).
    #[arg(long, default_value = "f32")]
    precision: cadet::model::Precision,
    /// With `--what convs`: only the convolutions whose name contains this.
    #[arg(long)]
    conv_filter: Option<String>,
    /// Images per batch (a SimCLR step sees two views of each; 1 to 4096).
    #[arg(long, default_value_t = 128, value_parser = cadet_report::cli::count_up_to(4096))]
    batch: usize,
    /// ResNet depth of the inference and training measurements (18, 34, 50).
    #[arg(long, default_value_t = 50)]
    depth: usize,
    /// Base width of that ResNet (64 in torchvision; the quickstart uses 16).
    #[arg(long, default_value_t = 64)]
    base_width: usize,
    /// CIFAR stem (3 × 3, no max-pool) instead of the ImageNet stem.
    #[arg(long)]
    cifar_stem: bool,
    /// Hidden width of the SimCLRv2 head (the quickstart: 256; 1 to 16384).
    #[arg(long, default_value_t = 2048, value_parser = cadet_report::cli::count_up_to(16_384))]
    hidden: usize,
    /// Output width of the SimCLRv2 head (the quickstart: 64; 1 to 16384).
    #[arg(long, default_value_t = 128, value_parser = cadet_report::cli::count_up_to(16_384))]
    output: usize,
    /// Image side (8 to 4096).
    #[arg(long, default_value_t = 224, value_parser = cadet_report::cli::count_between(8, 4096))]
    size: usize,
    /// Timed iterations (1 to 10000).
    #[arg(long, default_value_t = 10, value_parser = cadet_report::cli::count_up_to(10_000))]
    steps: usize,
    /// Untimed iterations first (autotuning, kernel compilation; 0 to 10000).
    #[arg(long, default_value_t = 4, value_parser = cadet_report::cli::count_between(0, 10_000))]
    warmup: usize,
    /// Images attacked by PGD-50 (1 to 4096).
    #[arg(long, default_value_t = 32, value_parser = cadet_report::cli::count_up_to(4096))]
    pgd_batch: usize,
    /// What to run.
    #[arg(long, value_enum, default_value_t = What::All)]
    what: What,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum What {
    All,
    Compare,
    Infer,
    Train,
    Pgd,
    /// Where a training step's time goes: encoder forward, head and loss forward, backward, optimizer (each
    /// phase forced to finish before the next starts; not part of `all`).
    Phases,
    /// Each convolution shape of the quickstart's encoder at 32 px (batch: two views of `--batch` images),
    /// forward alone and forward + backward (not part of `all`).
    Convs,
}

/// A convolution: name, input channels, input side, output channels, kernel, stride, padding, and how many the
/// encoder has.
type ConvShape = (
    &'static str,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

/// The convolution shapes of the quickstart's encoder (ResNet-18 layout, base width 16, ImageNet stem) at 32 px.
const QUICKSTART_CONVS: [ConvShape; 9] = [
    ("stem 7x7/2, 3->16, 32 px", 3, 32, 16, 7, 2, 3, 1),
    ("3x3, 16->16, 8 px", 16, 8, 16, 3, 1, 1, 4),
    ("3x3/2, 16->32, 8 px", 16, 8, 32, 3, 2, 1, 1),
    ("3x3, 32->32, 4 px", 32, 4, 32, 3, 1, 1, 3),
    ("3x3/2, 32->64, 4 px", 32, 4, 64, 3, 2, 1, 1),
    ("3x3, 64->64, 2 px", 64, 2, 64, 3, 1, 1, 3),
    ("3x3/2, 64->128, 2 px", 64, 2, 128, 3, 2, 1, 1),
    ("3x3, 128->128, 1 px", 128, 1, 128, 3, 1, 1, 3),
    ("1x1/2 shortcut, 16->32, 8 px", 16, 8, 32, 1, 2, 0, 1),
];

type BoxError = Box<dyn std::error::Error>;

fn sync(device: &Device) -> Result<(), BoxError> {
    device
        .sync()
        .map_err(|e| format!("device sync: {e:?}").into())
}

/// Seconds per call of `f` after `warmup` calls, over `steps` calls.
fn time<F: FnMut() -> Result<(), BoxError>>(
    device: &Device,
    warmup: usize,
    steps: usize,
    mut f: F,
) -> Result<(f64, f64), BoxError> {
    let t = Instant::now();
    for _ in 0..warmup {
        f()?;
    }
    sync(device)?;
    let warm = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..steps {
        f()?;
    }
    sync(device)?;
    Ok((t.elapsed().as_secs_f64() / steps.max(1) as f64, warm))
}

/// The measured encoder's layout and a name for the JSON lines.
fn encoder(args: &Args) -> (ResNetConfig, String) {
    let name = format!(
        "resnet{} w{} {} stem",
        args.depth,
        args.base_width,
        if args.cifar_stem { "cifar" } else { "imagenet" }
    );
    (
        ResNetConfig::new(args.depth)
            .with_base_width(args.base_width)
            .with_cifar_stem(args.cifar_stem),
        name,
    )
}

/// The SimCLR model of `args` on the autodiff device `ad`, its name, and two batches of random views.
fn training_setup(
    args: &Args,
    ad: &Device,
) -> Result<(SimClr, String, Tensor<4>, Tensor<4>), BoxError> {
    let (config, name) = encoder(args);
    let model = SimClrConfig::new(config.into())
        .with_hidden(args.hidden)
        .with_output(args.output)
        .init(ad)?;
    let shape = [args.batch, 3, args.size, args.size];
    let views = || Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), ad);
    Ok((model, name, views(), views()))
}

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(Args::parse()))
}

/// A ResNet's forward pass holds a few activation maps at once, each up to about 5× the input at base width 64
/// (64 channels at half resolution), and the stem's convolution unfolds its input: the input times this,
/// scaled by the base width, bounds inference's memory (measured: 41× for ResNet-50 at 4096 px); training
/// keeps every activation for the backward pass, two views each. A loose bound that stops absurd flags on the
/// CPU, where running out of memory aborts the process (a GPU reports its own out-of-memory error).
const INFERENCE_PER_INPUT: u128 = 64;
const TRAINING_PER_VIEW: u128 = 160;

/// The program itself (code, allocator, threads), counted in the memory check.
const PROGRAM_BYTES: u128 = 256 << 20;

fn run(args: Args) -> Result<(), BoxError> {
    if args.device.trim().eq_ignore_ascii_case("cpu")
        || args.device.trim().eq_ignore_ascii_case("flex")
    {
        let width = args.base_width.div_ceil(64).max(1) as u128;
        let input = |batch: usize| 4 * 3 * (batch * args.size * args.size) as u128;
        let trains = matches!(args.what, What::All | What::Train | What::Phases);
        let attacks = matches!(args.what, What::All | What::Pgd);
        let training = if trains {
            2 * TRAINING_PER_VIEW * input(args.batch)
        } else {
            0
        };
        // PGD differentiates through the network: its activations are kept as training's are.
        let attack = if attacks {
            TRAINING_PER_VIEW * input(args.pgd_batch)
        } else {
            0
        };
        // The head's weights, gradients, velocities and working copies (16 bytes a parameter) when trained.
        let (hidden, output) = (args.hidden as u128, args.output as u128);
        let features = (args.base_width as u128) * 32;
        let head = if trains {
            16 * (features * hidden + hidden * hidden + hidden * output)
        } else {
            0
        };
        let infers = matches!(args.what, What::All | What::Infer);
        let inference = if infers {
            INFERENCE_PER_INPUT * input(args.batch)
        } else {
            0
        };
        let needed = inference.max(training).max(attack) * width + head + PROGRAM_BYTES;
        cadet_core::limits::check_memory(
            &format!(
                "batches of {} (PGD: {}) at {} px and their activations",
                args.batch, args.pgd_batch, args.size
            ),
            needed,
            cadet_core::limits::Limits::default().max_alloc_bytes,
            "use a smaller --batch, --pgd-batch or --size",
        )?;
    }
    let dev = cadet_report::device::DeviceArgs {
        device: args.device.clone(),
        tune_cache: args.tune_cache.clone(),
    }
    .open()?;
    args.precision.check(&dev)?;
    let run = |w: What| (args.what == What::All && w != What::Phases) || args.what == w;

    if run(What::Compare) {
        measures::compare(&args, &dev)?;
    }

    if run(What::Infer) {
        measures::infer(&args, &dev)?;
    }

    if run(What::Train) {
        measures::train(&args, &dev)?;
    }

    if run(What::Phases) {
        measures::phases(&args, &dev)?;
    }

    if run(What::Convs) {
        measures::convs(&args, &dev)?;
    }

    if run(What::Pgd) {
        measures::pgd(&args, &dev)?;
    }
    Ok(())
}
