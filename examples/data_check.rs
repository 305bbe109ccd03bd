//! Real-data check: loads the CIFAR-10 JPEG folders, the lossless CIFAR-10 sheets and Tiny-ImageNet's
//! validation set (resized to 32 px), prints counts per class and load times, and renders a grid of each.
//!
//! ```text
//! cargo run --release --example data_check -- --data ../shared/data [--out out/data_check]
//! ```
//! The data path may also come from `CADET_DATA`. `.ci/run` runs this when `../shared/data` exists.
//!
//! Exit codes: 0 success, 1 an input error (missing or unreadable data), 2 a usage error.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use std::path::PathBuf;
use std::time::Instant;

use cadet::data::formats::{ImageFolder, cifar10_lossless, tiny_imagenet_val};
use cadet::data::{Dataset, save_grid};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Load the real data sets, print counts per class, render grids")]
struct Args {
    /// The data folder (layout of ../shared/data); defaults to $CADET_DATA.
    #[arg(long, env = "CADET_DATA")]
    data: PathBuf,
    /// Output folder for the grids.
    #[arg(long, default_value = "out/data_check")]
    out: PathBuf,
}

fn report(
    name: &str,
    d: &Dataset,
    seconds: f64,
    out: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let counts = d.class_counts();
    let (c, h, w) = d.image_shape();
    println!(
        "{name}: {} images of {c}×{h}×{w}, {} classes, loaded in {seconds:.1} s",
        d.len(),
        d.classes().len()
    );
    if d.classes().len() <= 10 {
        for (class, n) in d.classes().iter().zip(&counts) {
            println!("    {class:<12} {n}");
        }
    } else {
        let (lo, hi) = (
            counts.iter().min().copied().unwrap_or(0),
            counts.iter().max().copied().unwrap_or(0),
        );
        println!("    per class: min {lo}, max {hi}");
    }
    let pick: Vec<usize> = (0..24.min(d.len()))
        .map(|i| i * d.len() / 24.min(d.len()))
        .collect();
    save_grid(
        d.batch_f32(&pick)?.view(),
        8,
        out.join(format!("{name}.png")),
    )?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(&Args::parse()))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // Grids written into the data folder would land among the data sets.
    cadet_report::cli::not_an_input("--out", &args.out, &[&args.data])?;
    cadet_report::cli::output_folder("--out", &args.out)?;
    let timed = |f: &dyn Fn() -> Result<Dataset, cadet::data::Error>| -> Result<(Dataset, f64), cadet::data::Error> {
        let t = Instant::now();
        let d = f()?;
        Ok((d, t.elapsed().as_secs_f64()))
    };
    let (d, s) = timed(&|| ImageFolder::new(args.data.join("cifar10-jpeg/test")).load())?;
    report("cifar10-jpeg-test", &d, s, &args.out)?;
    let (d, s) = timed(&|| ImageFolder::new(args.data.join("cifar10-jpeg/train")).load())?;
    report("cifar10-jpeg-train", &d, s, &args.out)?;
    let t = Instant::now();
    let (train, test) = cifar10_lossless(args.data.join("cifar10-lossless"))?;
    let s = t.elapsed().as_secs_f64();
    report("cifar10-lossless-train", &train, s, &args.out)?;
    report("cifar10-lossless-test", &test, s, &args.out)?;
    let (d, s) = timed(&|| tiny_imagenet_val(args.data.join("tinyimagenet-val"), Some((32, 32))))?;
    report("tinyimagenet-val-32px", &d, s, &args.out)?;
    println!("grids: {}", args.out.display());
    Ok(())
}
