//! Is the false-positive rate what the p-value promises, on real features? Re-splits a pool of in-distribution
//! features saved by `reproduce_cifar --save-features` or `quickstart --save-features` many times into X1 / X2 /
//! test, calibrates every compared method (and the k-NN and Mahalanobis baselines, when the folder has
//! `single/knn_train.npy`; ODIN and Hu et al. when it has `classifier/`, as `reproduce_cifar` saves them) on each
//! split, and compares the test images' rejection rates with the exact law of
//! conformal p-values (`cadet_detect::validity`).
//!
//! ```text
//! cargo run --release --example validity -- --features out/feat [--x2 200,1000,2000] [--splits 200] \
//!     [--alphas 0.01,0.05,0.1] [--reference file|N] [--pool x2.npy,0_cifar_10_test.npy] [--out out/validity]
//! ```
//! `--reference file` keeps the folder's `x1.npy` as X1 for every split (e.g. the training images); `--reference
//! 300` draws X1 from the pool too (the paper's X1 of held-out images). The pool defaults to `x2.npy`, the first
//! scored set (`test.npy` or `0_*.npy`: the in-distribution test set) and `pool.npy` when present. Writes
//! `results.md` (the tables below) and `ecdf.png` / `ecdf_low.png` (the p-values' empirical CDF against the
//! diagonal) into `--out`.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

mod pool;
mod procedures;
mod tables;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use cadet::detect::comparison::{compared_methods, select};
use cadet::detect::validity::{Resplits, ValidityStudy};
use cadet::detect::{DetectionMethod, FeatureFolder, Reference, Statistic, ViewLayout};
use clap::Parser;
use ndarray::Axis;
use rayon::prelude::*;

use pool::Pool;
use procedures::{Procedure, split_p_values, statistics};

#[derive(Parser)]
#[command(
    about = "False-positive rates of every detector over many re-splits of in-distribution features"
)]
struct Args {
    /// A folder of saved features with its layout.json (reproduce_cifar / quickstart --save-features).
    #[arg(long)]
    features: PathBuf,
    /// The pool's files in that folder, comma-separated (default: x2.npy, the in-distribution test set, and
    /// pool.npy if present).
    #[arg(long, value_delimiter = ',')]
    pool: Vec<String>,
    /// `file`: x1.npy is X1 for every split; a number N: X1 is N images drawn from the pool in each split.
    #[arg(long, default_value = "file")]
    reference: String,
    /// Sizes of X2, 2 to 10,000,000 each (sizes that leave fewer than 100 test images are skipped, named).
    #[arg(long, value_delimiter = ',', default_value = "200,1000,2000",
          value_parser = cadet_report::cli::count_between(2, 10_000_000))]
    x2: Vec<usize>,
    /// Test images per split (default: every image not in X1 or X2).
    #[arg(long)]
    test: Option<usize>,
    /// Splits per X2 size.
    #[arg(long, default_value_t = 200)]
    splits: u64,
    /// Levels.
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.05,0.1")]
    alphas: Vec<f64>,
    /// Seed of the splits.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Nearest reference images of the compared methods' local statistics (as reproduce_cifar's --k).
    #[arg(long, default_value_t = 1)]
    k: usize,
    /// Output folder (results.md, ecdf.png, ecdf_low.png).
    #[arg(long, default_value = "out/validity")]
    out: PathBuf,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(Args::parse()).map_err(|e| e as Box<dyn std::error::Error>))
}

fn run(args: Args) -> Result<(), BoxError> {
    let started = Instant::now();
    let dir = &args.features;
    let folder = FeatureFolder::open(dir)?;
    let saved = folder.layout();
    let layout = saved.layout;
    let views = layout.views(saved.n_trs);
    let x1_from_pool: usize = match args.reference.as_str() {
        "file" => 0,
        n => n
            .parse()
            .ok()
            .filter(|&n: &usize| n >= 1)
            .ok_or_else(|| format!("--reference: file or a number ≥ 1, got {n}"))?,
    };
    let _ = ValidityStudy::new(&args.alphas)?;
    // The output folder first: a bad path is refused before the splits run.
    // Not the features folder, nor inside it: the report and plots would sit among the saved sets.
    cadet_report::cli::not_an_input("--out", &args.out, &[&args.features])?;
    cadet_report::cli::output_folder("--out", &args.out)?;
    if !(1..=100_000).contains(&args.splits) {
        return Err(format!(
            "--splits: 1 to 100000 re-splits per |X2| (200 give a mean to ±0.3 points), got {}",
            args.splits
        )
        .into());
    }

    let Pool {
        names,
        ranges,
        features: pool,
        x1: x1_file,
    } = pool::load(&args, &folder, x1_from_pool)?;
    let n_pool = pool.dim().0;
    let x1_size = x1_file.as_ref().map_or(x1_from_pool, |f| f.dim().0);
    eprintln!(
        "pool: {n_pool} images ({}), {views} views, d = {}; X1: {}",
        names.join(" + "),
        pool.dim().2,
        if x1_from_pool == 0 {
            format!("x1.npy, {x1_size} images, fixed")
        } else {
            format!("{x1_size} pool images per split")
        }
    );

    // Methods: those the reference and the layout allow, as in reproduce_cifar's table.
    let with_view = layout == ViewLayout::IdentityFirst;
    let selection = select(compared_methods(args.k), x1_size, with_view);
    // Methods the reference or the layout rule out are named, in the log and the report.
    let left_out: String = selection
        .left_out(x1_size)
        .iter()
        .map(|line| format!("{line}.\n"))
        .collect();
    eprint!("{left_out}");
    let methods: Vec<(String, DetectionMethod)> = selection.usable;
    if methods.is_empty() {
        return Err(format!(
            "no method can be calibrated with these features and --k {} (see the lines above)",
            args.k
        )
        .into());
    }
    let mut all: Vec<Statistic> = Vec::new();
    for (_, m) in &methods {
        for s in &m.statistics {
            if !all.contains(s) {
                all.push(*s);
            }
        }
    }
    let mut procedures: Vec<(String, Procedure)> = methods
        .into_iter()
        .map(|(name, method)| {
            let columns = method
                .statistics
                .iter()
                .map(|s| all.iter().position(|a| a == s).expect("collected above"))
                .collect();
            (name, Procedure::Cadet { method, columns })
        })
        .collect();

    if with_view {
        procedures.extend(procedures::single_view_baselines(
            dir,
            pool.index_axis(Axis(1), 0),
        )?);
    }

    procedures.extend(procedures::classifier_baselines(dir, &names, &ranges)?);

    // Statistics of every pool image once when the reference is fixed.
    let fixed_stats = match &x1_file {
        Some(x1) => {
            let reference = Reference::from_features(x1.view(), layout, true)?;
            Some(statistics(pool.view(), layout, &reference, &all)?)
        }
        None => None,
    };

    let mut md = String::new();
    writeln!(
        md,
        "# Validity of the p-values on real features\n\nCommand: `cargo run --release --example validity -- {}`\n\n\
         Pool: {n_pool} in-distribution images ({}) from `{}`, {} transforms{}; X1: {}. {} splits per |X2|, seed {}.\n",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        names.join(" + "),
        dir.display(),
        saved.n_trs,
        if with_view {
            " and the un-augmented view"
        } else {
            ""
        },
        if x1_from_pool == 0 {
            format!("`x1.npy` ({x1_size} images), the same in every split")
        } else {
            format!("{x1_size} pool images drawn in each split")
        },
        args.splits,
        args.seed
    )?;
    if !left_out.is_empty() {
        writeln!(md, "{left_out}")?;
    }

    if let Some(stats) = &fixed_stats {
        tables::saved_split(&mut md, &procedures, stats, (&names, &ranges), &args.alphas)?;
    }

    // The re-splits.
    let resplits = Resplits::new(n_pool, x1_from_pool, args.test, args.seed)?;
    let min_test = 100;
    let (sizes, skipped): (Vec<usize>, Vec<usize>) = args
        .x2
        .iter()
        .partition(|&&n| n >= 2 && n <= resplits.max_x2(min_test));
    let mut study = ValidityStudy::new(&args.alphas)?;
    for &n in &sizes {
        let t = Instant::now();
        eprintln!("|X2| = {n}: {} splits", args.splits);
        let results: Vec<Vec<Vec<f64>>> = (0..args.splits)
            .into_par_iter()
            .map(|i| -> Result<Vec<Vec<f64>>, BoxError> {
                let split = resplits.split(n, i)?;
                match &fixed_stats {
                    Some(stats) => split_p_values(&procedures, stats, &split.x2, &split.test),
                    None => {
                        // X1 from this split: the statistics of X2 and the test part against it.
                        let x1 = pool.select(Axis(0), &split.x1);
                        let reference = Reference::from_features(x1.view(), layout, true)?;
                        let used: Vec<usize> =
                            split.x2.iter().chain(&split.test).copied().collect();
                        let part = statistics(
                            pool.select(Axis(0), &used).view(),
                            layout,
                            &reference,
                            &all,
                        )?;
                        // Index the part's rows as the pool's.
                        let mut stats = vec![Vec::new(); n_pool];
                        for (row, &i) in part.into_iter().zip(&used) {
                            stats[i] = row;
                        }
                        split_p_values(&procedures, &stats, &split.x2, &split.test)
                    }
                }
            })
            .collect::<Result<_, _>>()?;
        for per_split in &results {
            for ((name, _), p) in procedures.iter().zip(per_split) {
                study.record(name, n, p)?;
            }
        }
        eprintln!("|X2| = {n}: {:.0} s", t.elapsed().as_secs_f64());
    }
    if !skipped.is_empty() {
        writeln!(
            md,
            "|X2| = {skipped:?} skipped: the pool leaves fewer than {min_test} test images.\n"
        )?;
    }
    let rows = study.rows()?;
    tables::write_tables(&mut md, &rows, &args.alphas)?;

    if let Some(&n) = sizes.get(sizes.len() / 2) {
        tables::ecdf_plots(&mut md, &study, &procedures, n, &args.out)?;
    }
    writeln!(md, "Run time: {:.0} s.", started.elapsed().as_secs_f64())?;
    cadet_core::io::write_atomic(&args.out.join("results.md"), md.as_bytes())?;
    print!("{md}");
    let outside: Vec<String> = rows
        .iter()
        .filter(|r| r.mean_above())
        .map(|r| format!("{} (|X2| = {}, α = {})", r.procedure, r.x2_size, r.alpha))
        .collect();
    eprintln!(
        "report: {}; means above their interval: {}",
        args.out.join("results.md").display(),
        if outside.is_empty() {
            "none".to_string()
        } else {
            outside.join("; ")
        }
    );
    Ok(())
}
