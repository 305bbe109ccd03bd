//! Adversarial attacks on a pretrained CIFAR-10 ResNet: accuracy before and after each of the paper's presets,
//! success rates and mean norms; adversarial images as `.npy` and a PNG grid (clean / perturbation ×10 /
//! adversarial).
//!
//! ```text
//! cargo run --release --example attack -- --data ../shared/data [--depth 20] [--limit 1000] [--preset all]
//!     [--out out/attack]
//! ```
//! Images: the lossless CIFAR-10 test images 0..limit; weights: `resnet<depth>-*.safetensors` of the data folder.
//!
//! Outputs are written only once every attack has run, each atomically (a failed or killed run leaves the old
//! files as they were). Exit codes: 0 success, 1 an input or run error, 2 a usage error.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use cadet_report::progress::Lines;
use std::path::PathBuf;
use std::time::Instant;

use cadet::attacks::{Attack, CarliniWagner, Fgsm, Goal, Pgd};
use cadet::data::formats::{cifar10_lossless, save_npy};
use cadet::model::{CifarResNetConfig, Normalization, Normalized, pretrained_weights};
use cadet_report::device::DeviceArgs;
use cadet_report::report::attack_grid;
use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(about = "PGD, CW and FGSM against a pretrained CIFAR-10 ResNet")]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,
    /// The data folder (layout of ../shared/data); defaults to $CADET_DATA.
    #[arg(long, env = "CADET_DATA")]
    data: PathBuf,
    /// ResNet depth: 20, 32, 44 or 56.
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Number of test images (lossless test 0..limit, 1 to 1000).
    #[arg(long, default_value_t = 1000,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    limit: usize,
    /// Which preset.
    #[arg(long, value_enum, default_value_t = Preset::All)]
    preset: Preset,
    /// Output folder.
    #[arg(long, default_value = "out/attack")]
    out: PathBuf,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Preset {
    Pgd,
    Cw,
    Fgsm,
    All,
}

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(&Args::parse()))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.out.exists() && !args.out.is_dir() {
        return Err(format!("--out {}: not a folder", args.out.display()).into());
    }
    // The adversarial images never go into the data folder: its next reader would take them for data.
    cadet_report::cli::not_an_input("--out", &args.out, &[&args.data])?;
    let device = args.device.open()?.autodiff();
    let dir = args.data.join("resnet-cifar10");
    let weights = pretrained_weights(&dir, args.depth)?;
    let net = CifarResNetConfig::new(args.depth)
        .init(&device)?
        .load_safetensors(&weights)?;
    let classifier = Normalized::new(net, Normalization::imagenet(), device);
    let (_, test) = cifar10_lossless(args.data.join("cifar10-lossless"))?;
    let n = args.limit.min(test.len());
    if n < args.limit {
        eprintln!(
            "note: --limit {} asked, the test sheet has {} images: attacking those",
            args.limit,
            test.len()
        );
    }
    let idx: Vec<usize> = (0..n).collect();
    let images = test.batch_f32(&idx)?;
    let labels = &test.labels()[..n];
    let attacks: Vec<(&str, Box<dyn Attack>)> = [
        (
            Preset::Pgd,
            "pgd",
            Box::new(Pgd::paper()) as Box<dyn Attack>,
        ),
        (Preset::Cw, "cw", Box::new(CarliniWagner::paper())),
        (Preset::Fgsm, "fgsm", Box::new(Fgsm::paper())),
    ]
    .into_iter()
    .filter(|(p, _, _)| args.preset == Preset::All || args.preset == *p)
    .map(|(_, name, a)| (name, a))
    .collect();
    println!(
        "ResNet-{} on lossless CIFAR-10 test 0–{}:",
        args.depth,
        n - 1
    );
    println!(
        "{:<52} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "attack", "clean acc", "adv acc", "success", "mean L∞", "mean L2", "s"
    );
    let progress = Lines::new().with_counts();
    // Outputs are kept until every attack has succeeded.
    let mut outputs = Vec::new();
    for (name, attack) in attacks {
        let t = Instant::now();
        let out = attack.attack(
            &classifier,
            images.view(),
            labels,
            &Goal::Untargeted,
            &progress,
        )?;
        let (linf, l2) = out.mean_norms();
        println!(
            "{:<52} {:>8.1}% {:>8.1}% {:>8.1}% {:>9.4} {:>9.4} {:>7.1}",
            attack.name(),
            100.0 * out.clean_accuracy(labels),
            100.0 * out.adversarial_accuracy(labels),
            100.0 * out.success_rate(),
            linf,
            l2,
            t.elapsed().as_secs_f64()
        );
        outputs.push((name, out.adversarial));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("--out {}: {e}", args.out.display()))?;
    for (name, adversarial) in &outputs {
        save_npy(adversarial, args.out.join(format!("{name}.npy")))?;
        attack_grid(
            images.view(),
            adversarial.view(),
            8,
            &args.out.join(format!("{name}.png")),
        )?;
    }
    eprintln!("outputs: {}", args.out.display());
    Ok(())
}
