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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cadet::detect::comparison::{compared_methods, select};
use cadet::detect::validity::{Resplits, ValidityRow, ValidityStudy};
use cadet::detect::{
    Calibrator, ClassifierOutputs, DetectionMethod, Detector, Reference, Statistic, ViewLayout,
    baselines::{HuCalibration, Knn, Mahalanobis},
    method::{FittedCombination, image_statistics},
};
use cadet::detect::{FeatureFolder, TransformFeatures};
use cadet_core::limits::Limits;
use cadet_report::report::ClassifierScores;
use clap::Parser;
use ndarray::{Array1, Array2, ArrayView3, Axis, concatenate};
use rayon::prelude::*;

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

/// One procedure under study: a CADet method (columns of the shared statistics) or a baseline's anomaly
/// scores of every pool image.
enum Procedure {
    Cadet {
        method: DetectionMethod,
        columns: Vec<usize>,
    },
    Scores(Vec<f64>),
    /// Hu et al.: the Bonferroni combination of two criteria's conformal p-values, per pool image.
    Hu {
        noise: Vec<f64>,
        steps: Vec<f64>,
    },
}

/// The pool's statistics (every statistic any method uses) against a reference: one row per image.
fn statistics(
    features: ArrayView3<'_, f32>,
    layout: ViewLayout,
    reference: &Reference,
    all: &[Statistic],
) -> Result<Vec<Vec<f64>>, BoxError> {
    Ok(image_statistics(features, layout, reference, all)?
        .into_iter()
        .map(|s| s.values)
        .collect())
}

/// Test p-values of each procedure for one split, given every pool image's statistics (`None` when they must
/// be computed for this split's X1).
fn split_p_values(
    procedures: &[(String, Procedure)],
    stats: &[Vec<f64>],
    x2: &[usize],
    test: &[usize],
) -> Result<Vec<Vec<f64>>, BoxError> {
    procedures
        .iter()
        .map(|(name, p)| -> Result<Vec<f64>, BoxError> {
            match p {
                Procedure::Cadet { method, columns } => {
                    let rows = |idx: &[usize]| -> Vec<Vec<f64>> {
                        idx.iter()
                            .map(|&i| columns.iter().map(|&c| stats[i][c]).collect())
                            .collect()
                    };
                    let fitted = FittedCombination::fit(method, rows(x2))
                        .map_err(|e| format!("{name}: {e}"))?;
                    Ok(fitted
                        .score(&rows(test))
                        .into_iter()
                        .map(|(_, p)| p)
                        .collect())
                }
                Procedure::Scores(scores) => {
                    let cal = Calibrator::new(x2.iter().map(|&i| scores[i]).collect())?;
                    Ok(test.iter().map(|&i| cal.p_value(scores[i])).collect())
                }
                Procedure::Hu { noise, steps } => {
                    let pick =
                        |v: &[f64], idx: &[usize]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
                    let hu = HuCalibration::fit(pick(noise, x2), pick(steps, x2))?;
                    Ok(hu.p_values(&pick(noise, test), &pick(steps, test))?)
                }
            }
        })
        .collect()
}

fn main() -> std::process::ExitCode {
    cadet_report::exit_code(run(Args::parse()).map_err(|e| e as Box<dyn std::error::Error>))
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
    cadet_report::cli::output_folder("--out", &args.out)?;
    if !(1..=100_000).contains(&args.splits) {
        return Err(format!(
            "--splits: 1 to 100000 re-splits per |X2| (200 give a mean to ±0.3 points), got {}",
            args.splits
        )
        .into());
    }

    // The pool: in-distribution files, concatenated; each file's range kept for the original split.
    let names: Vec<String> = if args.pool.is_empty() {
        let mut first_set: Vec<String> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n == "test.npy" || (n.starts_with("0_") && n.ends_with(".npy")))
            .collect();
        first_set.sort();
        let mut names = vec!["x2.npy".to_string()];
        names.push(
            first_set
                .into_iter()
                .next()
                .ok_or("no in-distribution test set (test.npy or 0_*.npy) beside x2.npy")?,
        );
        if dir.join("pool.npy").exists() {
            names.push("pool.npy".into());
        }
        names
    } else {
        args.pool.clone()
    };
    // The same file twice would put each of its images in the pool twice: X2 and the test set would share
    // images, and the rates measured would not be of exchangeable data.
    let mut resolved = std::collections::HashMap::new();
    for name in &names {
        let path = dir.join(name);
        let key = path.canonicalize().unwrap_or(path);
        if let Some(first) = resolved.insert(key, name) {
            return Err(format!(
                "--pool: {name} and {first} are the same file; each pool file once"
            )
            .into());
        }
    }
    // With the reference from x1.npy, the pool must not hold it: X1 and X2 would share every image.
    if x1_from_pool == 0 {
        let x1 = dir.join("x1.npy");
        let x1 = x1.canonicalize().unwrap_or(x1);
        if let Some(name) = resolved.get(&x1) {
            return Err(format!(
                "--pool: {name} is X1 (x1.npy, the reference of --reference file); the pool holds the \
                 in-distribution images X2 and the test images are drawn from"
            )
            .into());
        }
    }
    // The report goes into --out under fixed names: none may be a file this run reads.
    let inputs: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(n))
        .chain(["x1.npy", "layout.json"].map(|n| dir.join(n)))
        .collect();
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    for name in ["results.md", "ecdf.png", "ecdf_low.png"] {
        cadet_report::cli::not_an_input("--out", &args.out.join(name), &inputs)?;
    }
    let mut parts = Vec::new();
    let mut ranges = Vec::new();
    for name in &names {
        let f = TransformFeatures::load(&dir.join(name), layout, &Limits::default())?.array;
        let start = ranges.last().map_or(0, |r: &std::ops::Range<usize>| r.end);
        ranges.push(start..start + f.dim().0);
        parts.push(f);
    }
    let pool = concatenate(Axis(0), &parts.iter().map(|p| p.view()).collect::<Vec<_>>())?;
    drop(parts);
    let n_pool = pool.dim().0;
    let x1_file = if x1_from_pool == 0 {
        Some(folder.load_reference()?.array)
    } else {
        None
    };
    // A pool file holding X1's own features (a copy of x1.npy under another name) would make X1 and X2 share
    // every image, as x1.npy itself would.
    if let Some(x1) = &x1_file {
        for (name, range) in names.iter().zip(&ranges) {
            if range.len() == x1.dim().0 && pool.slice(ndarray::s![range.clone(), .., ..]) == x1 {
                return Err(format!(
                    "--pool: {name} holds the same features as x1.npy, the reference X1 (--reference file); \
                     the pool holds the in-distribution images X2 and the test images are drawn from"
                )
                .into());
            }
        }
    }
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

    // Baselines on the single-view features (the un-augmented view, view 0), fitted once on the training
    // features saved beside.
    let knn_path = dir.join("single/knn_train.npy");
    if with_view && knn_path.exists() {
        let limits = cadet_core::limits::Limits::default();
        let train: Array2<f32> = cadet::data::formats::read_npy(&knn_path, &limits)?;
        let labels_path = dir.join("single/knn_train_labels.npy");
        let labels: Vec<u32> = if labels_path.exists() {
            cadet::data::formats::read_npy::<Array1<u32>>(&labels_path, &limits)?.to_vec()
        } else {
            vec![0; train.nrows()]
        };
        if labels.len() != train.nrows() {
            return Err(format!(
                "{}: {} labels for {} training features",
                labels_path.display(),
                labels.len(),
                train.nrows()
            )
            .into());
        }
        let mut present = labels.clone();
        present.sort_unstable();
        present.dedup();
        let dense: Vec<u32> = labels
            .iter()
            .map(|l| present.binary_search(l).map(|i| i as u32))
            .collect::<Result<_, _>>()
            .map_err(|_| "labels")?;
        let single = pool.index_axis(Axis(1), 0);
        let outputs = ClassifierOutputs {
            logits: single,
            features: Some(single),
        };
        let k = 10.min(train.nrows());
        procedures.push((
            format!(
                "baseline: k-NN distance (k = {k}, {} training images)",
                train.nrows()
            ),
            Procedure::Scores(Knn::fit(train.view(), k)?.anomaly_scores(outputs)?),
        ));
        let outputs = ClassifierOutputs {
            logits: single,
            features: Some(single),
        };
        procedures.push((
            "baseline: Mahalanobis".into(),
            Procedure::Scores(
                Mahalanobis::fit(train.view(), &dense, present.len())?.anomaly_scores(outputs)?,
            ),
        ));
    }

    // ODIN and Hu et al. from the classifier's per-image scores saved beside each pool file (reproduce_cifar
    // --save-features): they need no reference, only X2 to calibrate on.
    let classifier_files: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join("classifier").join(n))
        .collect();
    if classifier_files.iter().all(|f| f.exists()) {
        let mut all_scores = ClassifierScores::default();
        for (file, range) in classifier_files.iter().zip(&ranges) {
            let a: Array2<f64> =
                cadet::data::formats::read_npy(file, &cadet_core::limits::Limits::default())
                    .map_err(|e| format!("{e} (expected (n, 3) float64: ODIN, noise, steps)"))?;
            let s = ClassifierScores::from_columns(a.view())
                .map_err(|e| format!("{}: {e}", file.display()))?;
            if s.odin.len() != range.len() {
                return Err(format!(
                    "{}: scores of {} images, its features hold {}",
                    file.display(),
                    s.odin.len(),
                    range.len()
                )
                .into());
            }
            all_scores.odin.extend(s.odin);
            all_scores.noise.extend(s.noise);
            all_scores.steps.extend(s.steps);
        }
        procedures.push((
            "baseline: ODIN".into(),
            Procedure::Scores(all_scores.odin.iter().map(|s| -s).collect()),
        ));
        procedures.push((
            "baseline: Hu et al. (noise + boundary)".into(),
            Procedure::Hu {
                noise: all_scores.noise,
                steps: all_scores.steps,
            },
        ));
    } else if classifier_files.iter().any(|f| f.exists()) {
        eprintln!(
            "ODIN and Hu et al. left out: classifier/ lacks the scores of some pool file ({})",
            names.join(", ")
        );
    }

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

    // The original split (X2 = x2.npy, test = the next file), when the reference is the file's.
    if let (Some(stats), Some(x2_at), true) = (
        &fixed_stats,
        names.iter().position(|n| n == "x2.npy"),
        names.len() >= 2,
    ) {
        let test_at = if x2_at + 1 < names.len() {
            x2_at + 1
        } else {
            0
        };
        let x2: Vec<usize> = ranges[x2_at].clone().collect();
        let test: Vec<usize> = ranges[test_at].clone().collect();
        let p = split_p_values(&procedures, stats, &x2, &test)?;
        writeln!(
            md,
            "## The saved split itself\n\nX2 = `x2.npy` ({} images), test = `{}` ({} images). Rejection share at each α, and \
             its tail: the probability that an exactly valid detector rejects at least that many (the \
             Beta-binomial law, `cadet_detect::validity::RejectionLaw`): a small value says this split is unusual, \
             not that the method is wrong; the re-splits below say that.\n\n| procedure | {} |\n|---|{}",
            x2.len(),
            names[test_at],
            test.len(),
            args.alphas
                .iter()
                .map(|a| format!("α = {a}"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(args.alphas.len())
        )?;
        for ((name, _), p) in procedures.iter().zip(&p) {
            let mut cells = Vec::new();
            for &a in &args.alphas {
                let count = p.iter().filter(|&&v| v <= a).count();
                let law =
                    cadet::detect::validity::RejectionLaw::conformal(x2.len(), test.len(), a)?;
                cells.push(format!(
                    "{:.1}% (tail {:.3})",
                    100.0 * count as f64 / test.len() as f64,
                    law.upper_tail(count)
                ));
            }
            writeln!(md, "| {name} | {} |", cells.join(" | "))?;
        }
        writeln!(md)?;
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
    write_tables(&mut md, &rows, &args.alphas)?;

    // The empirical CDF of the p-values, at the middle |X2|, against the diagonal.
    if let Some(&n) = sizes.get(sizes.len() / 2) {
        for (file, up_to) in [("ecdf.png", 1.0), ("ecdf_low.png", 0.15)] {
            let mut series: Vec<(String, Vec<(f64, f64)>)> = vec![(
                "uniform (exact validity)".into(),
                vec![(0.0, 0.0), (up_to, up_to)],
            )];
            for (name, _) in &procedures {
                if let Some(points) = study.ecdf(name, n, up_to) {
                    series.push((name.clone(), points));
                }
            }
            cadet_report::plots::line_chart(
                args.out.join(file),
                &format!("In-distribution p-values, |X2| = {n}: empirical CDF"),
                "t",
                "share of p ≤ t",
                &series,
            )?;
        }
        writeln!(
            md,
            "![ECDF](ecdf.png) ![ECDF, low range](ecdf_low.png)\n\nThe empirical CDF of the test images' p-values \
             over all splits at |X2| = {n}, against the diagonal (exact validity).\n"
        )?;
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

/// The two tables: the mean rejection against its exact expectation (marginal validity), and the spread across
/// splits against the law's (training-conditional validity).
fn write_tables(md: &mut String, rows: &[ValidityRow], alphas: &[f64]) -> Result<(), BoxError> {
    let header = |md: &mut String, first: &str| -> std::fmt::Result {
        writeln!(
            md,
            "| {first} | |X2| | test | {} |\n|---|---|---|{}",
            alphas
                .iter()
                .map(|a| format!("α = {a}"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(alphas.len())
        )
    };
    let groups: Vec<&[ValidityRow]> = rows.chunks(alphas.len()).collect();
    writeln!(
        md,
        "## Marginal validity: mean rejection rate over splits\n\nEach cell: the mean share of test images with p ≤ α, \
         [the 99.9% interval of that mean for an exactly valid detector: ⌊α(n+1)⌋/(n+1) ± 3.29 · sd/√splits, sd the \
         larger of the law's and the observed spread]; `✗` marks a mean above it (more false positives than promised), \
         `↓` one below it (conservative: valid, e.g. ties among a minimum p-value's combined values).\n"
    )?;
    header(md, "procedure")?;
    for g in &groups {
        let cells: Vec<String> = g
            .iter()
            .map(|r| {
                format!(
                    "{:.2}% [{:.2}–{:.2}]{}",
                    100.0 * r.mean_rate,
                    100.0 * r.interval.0,
                    100.0 * r.interval.1,
                    if r.mean_above() {
                        " ✗"
                    } else if !r.mean_inside() {
                        " ↓"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        writeln!(
            md,
            "| {} | {} | {} | {} |",
            g[0].procedure,
            g[0].x2_size,
            g[0].test_size,
            cells.join(" | ")
        )?;
    }
    writeln!(
        md,
        "\n## Training-conditional validity: spread across X2 draws\n\nEach cell: the standard deviation of the \
         rejection rate across splits / the Beta-binomial law's (exact for a single conformal score, approximate for \
         the full-conformal combinations), the share of splits above the law's 95% quantile (about 5% under the \
         law), and the largest rate of any split.\n"
    )?;
    header(md, "procedure")?;
    for g in &groups {
        let cells: Vec<String> = g
            .iter()
            .map(|r| {
                format!(
                    "sd {:.2}/{:.2}, >q95 {:.1}%, max {:.1}%",
                    100.0 * r.sd,
                    100.0 * r.law_sd,
                    100.0 * r.above_law_q95,
                    100.0 * r.max_rate
                )
            })
            .collect();
        writeln!(
            md,
            "| {} | {} | {} | {} |",
            g[0].procedure,
            g[0].x2_size,
            g[0].test_size,
            cells.join(" | ")
        )?;
    }
    writeln!(md)?;
    Ok(())
}
