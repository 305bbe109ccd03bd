//! Drift monitoring on `.npy` feature batches: one reference, each batch tested against it by a permutation MMD
//! test with the reference's work done once (`cadet::mmd::DriftMonitor`).
//!
//! ```sh
//! cargo run --release --example drift -- --reference R.npy B1.npy B2.npy … [--kernel cosine] [--perms 500]
//!     [--alpha 0.05] [--correction bh] [--seed 0]
//! ```
//!
//! `R.npy` and each batch are 2-d float32 `(rows, d)`. One line per batch: its MMD², p-value and decision; with
//! `--correction`, the decisions control errors over all the batches given (Bonferroni: any false alarm;
//! Benjamini–Hochberg: the share of false alarms).

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use std::path::PathBuf;

use cadet::detect::{Correction, decide};
use cadet::mmd::{CosineKernel, DriftMonitor, LinearKernel};
use cadet_core::Kernel;
use cadet_core::limits::Limits;
use clap::{Parser, ValueEnum};
use ndarray::Array2;

#[derive(Parser)]
#[command(
    name = "drift",
    about = "Tests batches of features against a reference (permutation MMD)"
)]
struct Args {
    /// The reference features, (m, d) float32 .npy.
    #[arg(long)]
    reference: PathBuf,
    /// The batches, each (n, d) float32 .npy, n ≥ 2.
    #[arg(required = true)]
    batches: Vec<PathBuf>,
    /// The kernel (with a feature map).
    #[arg(long, value_enum, default_value_t = KernelName::Cosine)]
    kernel: KernelName,
    /// Permutations per batch.
    #[arg(long, default_value_t = 500, value_parser = cadet_report::cli::count_up_to(cadet::mmd::MAX_PERMUTATIONS))]
    perms: usize,
    /// Level of each decision (of the family with --correction).
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Multiple-testing correction over the batches.
    #[arg(long, value_enum, default_value_t = CorrectionName::None)]
    correction: CorrectionName,
    /// Seed of the permutations.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum KernelName {
    Cosine,
    Linear,
}

#[derive(Clone, Copy, ValueEnum)]
enum CorrectionName {
    None,
    Bonferroni,
    Bh,
}

type BoxError = Box<dyn std::error::Error>;

fn load(path: &std::path::Path) -> Result<Array2<f32>, BoxError> {
    Ok(
        cadet::data::formats::read_npy::<Array2<f32>>(path, &Limits::default())
            .map_err(|e| format!("{e} (expected (rows, d) float32)"))?,
    )
}

fn monitor<K: Kernel>(args: &Args, kernel: K) -> Result<(), BoxError> {
    // A batch that is the reference file itself tests the reference against itself; a batch given twice
    // counts twice in the correction for multiple tests.
    let mut files = vec![("--reference", args.reference.as_path())];
    files.extend(args.batches.iter().map(|p| ("batch", p.as_path())));
    cadet_report::cli::distinct_files(&files)?;
    let reference = load(&args.reference)?;
    // Each set's rows must be distinct draws: a set given twice over counts each image twice.
    let distinct_rows = |name: &str, set: &ndarray::Array2<f32>| -> Result<(), String> {
        let repeated = cadet_report::overlap::repeated_rows(set.view());
        if let Some(warning) = cadet_report::overlap::one_sample(name, set.nrows(), repeated)? {
            eprintln!("{warning}");
        }
        Ok(())
    };
    distinct_rows(
        &format!("the reference {}", args.reference.display()),
        &reference,
    )?;
    let monitor = DriftMonitor::new(reference.view(), kernel, args.perms, args.seed)
        .map_err(|e| format!("{}: {e}", args.reference.display()))?;
    let mut results = Vec::with_capacity(args.batches.len());
    for path in &args.batches {
        let batch = load(path)?;
        distinct_rows(&format!("the batch {}", path.display()), &batch)?;
        // A batch that is the reference (reordered or not), or in large part: refused; a few rows: said.
        let shared = cadet_report::overlap::shared_rows(reference.view(), batch.view());
        let names = (
            format!("the reference {}", args.reference.display()),
            format!("the batch {}", path.display()),
        );
        if let Some(warning) = cadet_report::overlap::two_samples(
            (&names.0, reference.nrows()),
            (&names.1, batch.nrows()),
            shared,
        )? {
            eprintln!("{warning}");
        }
        let r = monitor
            .test(batch.view(), args.alpha)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        results.push((path, batch.nrows(), r));
    }
    let p: Vec<f64> = results.iter().map(|(_, _, r)| r.p_value).collect();
    let correction = match args.correction {
        CorrectionName::None => Correction::None,
        CorrectionName::Bonferroni => Correction::Bonferroni,
        CorrectionName::Bh => Correction::BenjaminiHochberg,
    };
    let decisions = decide(&p, args.alpha, correction)?;
    // The smallest p-value a permutation test gives is 1/(perms + 1); below it nothing can be flagged.
    let smallest = 1.0 / (args.perms + 1) as f64;
    let needed = match correction {
        Correction::None => args.alpha,
        _ => args.alpha / results.len() as f64,
    };
    if smallest > needed {
        let perms = (1.0 / needed).ceil() - 1.0;
        let remedy = if perms <= cadet::mmd::MAX_PERMUTATIONS as f64 {
            format!("raise --perms to at least {perms:.0}")
        } else {
            format!(
                "no --perms up to {} reaches it: give a larger --alpha",
                cadet::mmd::MAX_PERMUTATIONS
            )
        };
        eprintln!(
            "warning: the smallest p-value with {} permutations is {smallest:.2e}, above the level {needed:.2e} \
             a batch needs ({correction:?}): {remedy}",
            args.perms,
        );
    }
    // Benjamini–Hochberg's threshold is 0 when it flags nothing: said in words, not as `p ≤ 0.0000`.
    let threshold = if decisions.rejected == 0 && correction == Correction::BenjaminiHochberg {
        "none (Benjamini–Hochberg flags no batch)".to_string()
    } else {
        format!("p ≤ {:.4}", decisions.threshold)
    };
    println!(
        "reference: {} rows; {} permutations; α = {} (correction: {correction:?}); threshold {threshold}",
        monitor.reference_size(),
        args.perms,
        args.alpha,
    );
    for ((path, n, r), v) in results.iter().zip(&decisions.verdicts) {
        println!(
            "{}: {n} rows, MMD² {:.3e}, p = {:.4}{}",
            path.display(),
            r.statistic,
            r.p_value,
            if v.is_anomaly { "  DRIFT" } else { "" }
        );
    }
    println!(
        "{} of {} batches flagged",
        decisions.rejected,
        results.len()
    );
    Ok(())
}

fn run(args: &Args) -> Result<(), BoxError> {
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        return Err(format!("--alpha: a level in (0, 1), got {}", args.alpha).into());
    }
    match args.kernel {
        KernelName::Cosine => monitor(args, CosineKernel),
        KernelName::Linear => monitor(args, LinearKernel),
    }
}

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(&Args::parse()))
}
