//! CADet from the command line: calibrate (or load a calibration), score named sets, print the detection table
//! and the paper's Table 5, draw ROC curves and score histograms.
//!
//! ```text
//! # Images through an Embedder: the synthetic data set and a hand-crafted silhouette embedder
//! cargo run --release --example detect -- --demo [--out out/detect] [--json] [--save-calibration cal.json]
//!
//! # Features computed anywhere: (m, n_trs, d) float32 .npy arrays; the first --set is in-distribution
//! cargo run --release --example detect -- --x1 X1.npy --x2 X2.npy --set test=T.npy --set ood=O.npy
//! # (m, 1 + n_trs, d) with each image's un-augmented view first (quickstart/reproduce_cifar --save-features),
//! # the examples' headline method
//! cargo run --release --example detect -- --identity-view --method views --x1 X1.npy --x2 X2.npy --set ...
//! cargo run --release --example detect -- --calibration cal.json --set test=T.npy --set ood=O.npy --json --no-plots
//!
//! # Another detection method (default: the paper's), and every method with two baselines side by side
//! cargo run --release --example detect -- --x1 X1.npy --x2 X2.npy --set test=T.npy --set ood=O.npy \
//!     --method min-p --k 1 --compare
//! ```
//! Writes `roc.png`, `scores.png` (CADet scores), `m_in.png` and `m_out.png` into `--out`, then (last, once the
//! run succeeded) the calibration file of `--save-calibration`. A calibration made from images (`--demo`) is
//! refused for `.npy` features; sets whose `n_trs` or dimension differ from the calibration's are refused, named.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

mod demo;
mod features;
mod json;

use std::path::PathBuf;

use cadet::detect::{Calibration, DetectionMethod, ImageScore, Statistic};
use cadet_report::report::{CadetReport, cadet_pictures};
use clap::{CommandFactory, Parser};

#[derive(Parser)]
#[command(name = "detect", about = "CADet calibration, scoring and evaluation")]
struct Args {
    /// Run on the synthetic data set with a hand-crafted embedder.
    #[arg(long, conflicts_with_all = ["x1", "x2", "calibration", "sets", "compare", "identity_view"])]
    demo: bool,
    /// X(1) features, (m, n_trs, d) float32 .npy ((m, 1 + n_trs, d) with --identity-view).
    #[arg(long, requires = "x2", conflicts_with = "calibration")]
    x1: Option<PathBuf>,
    /// X(2) features, (m', n_trs, d) float32 .npy ((m', 1 + n_trs, d) with --identity-view).
    #[arg(long, requires = "x1")]
    x2: Option<PathBuf>,
    /// The features hold each image's un-augmented view first, (m, 1 + n_trs, d), as quickstart and
    /// reproduce_cifar save them (their `layout.json` beside the files says so, and a run that contradicts it is
    /// refused; a loaded calibration says its own layout).
    #[arg(long, requires = "x1")]
    identity_view: bool,
    /// A calibration file to load instead of calibrating.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Where to save the calibration (written last, once the run succeeded).
    #[arg(long)]
    save_calibration: Option<PathBuf>,
    /// Named sets of features, `name=path.npy`, laid out as X(2); the first is the in-distribution test set.
    #[arg(long = "set", value_name = "NAME=PATH", value_parser = named_path)]
    sets: Vec<(String, PathBuf)>,
    /// Level α of the p-value test, in (0, 1).
    #[arg(long, default_value_t = 0.05, value_parser = level)]
    alpha: f64,
    /// Print JSON Lines instead of tables: one record per image (`"record": "image"`: set, index, p_value,
    /// is_anomaly at α, score, each statistic), one per set (`"set"`: α, n_trs, |X1|, |X2|, method, the share
    /// rejected, Table 5's metrics) and, with --compare, one per compared detector (`"comparison"`).
    #[arg(long)]
    json: bool,
    /// Write no pictures.
    #[arg(long)]
    no_plots: bool,
    /// Output folder for the pictures.
    #[arg(long, default_value = "out/detect")]
    out: PathBuf,
    /// Detection method when calibrating (default: the paper's m_in + γ·m_out).
    #[arg(long, value_enum, default_value_t = MethodName::Paper, conflicts_with = "calibration")]
    method: MethodName,
    /// Nearest X(1) images averaged by the local statistics (local m_out, local cos), at least 1.
    #[arg(long, default_value_t = 1, value_parser = at_least_one, conflicts_with = "calibration")]
    k: usize,
    /// Also print every method and two baselines side by side (calibrated on --x1 / --x2).
    #[arg(long, requires = "x1")]
    compare: bool,
}

/// The methods `--method` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MethodName {
    /// m_in + γ·m_out (the paper's).
    Paper,
    /// local m_out alone.
    Local,
    /// m_in + γ·local m_out.
    LocalSum,
    /// Fisher: m_in two-sided, local m_out low.
    Fisher,
    /// min p: m_in two-sided, local m_out low.
    MinP,
    /// local cos alone.
    Cos,
    /// Fisher: m_in two-sided, local cos low.
    FisherCos,
    /// min p: m_in two-sided, local cos low.
    MinPCos,
    /// min p: local m_in (k = 50) two-sided, local cos at k = 1 and k = 10 low (`--k` does not apply).
    TwoScale,
    /// Fisher: local m_in (k = 50) two-sided; local cos and identity cos at k = 1 and k = 10, and view
    /// agreement, low (the examples' headline; needs `--identity-view` with features, `--k` does not apply).
    Views,
}

/// `NAME=PATH` with both parts non-empty (the name trimmed: table rows differing by a space look alike).
fn named_path(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.trim().is_empty() && !path.is_empty() => {
            Ok((cadet_report::cli::set_name(name)?, PathBuf::from(path)))
        }
        _ => Err(format!(
            "expected NAME=PATH with both parts non-empty, got {s:?}"
        )),
    }
}

/// A level strictly between 0 and 1.
fn level(s: &str) -> Result<f64, String> {
    let a: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if a > 0.0 && a < 1.0 {
        Ok(a)
    } else {
        Err(format!("must lie in (0, 1), got {s}"))
    }
}

/// An integer ≥ 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(k) if k >= 1 => Ok(k),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The method named by `--method`.
fn method(args: &Args) -> DetectionMethod {
    let k = args.k;
    match args.method {
        MethodName::Paper => DetectionMethod::paper(),
        MethodName::Local => DetectionMethod::single(Statistic::LocalMOut { k }),
        MethodName::LocalSum => DetectionMethod::local_sum(k),
        MethodName::Fisher => DetectionMethod::fisher_local(k),
        MethodName::MinP => DetectionMethod::min_p_local(k),
        MethodName::Cos => DetectionMethod::single(Statistic::LocalCosine { k }),
        MethodName::FisherCos => DetectionMethod::fisher_cosine(k),
        MethodName::MinPCos => DetectionMethod::min_p_cosine(k),
        MethodName::TwoScale => DetectionMethod::min_p_two_scale(50, 1, 10),
        MethodName::Views => DetectionMethod::recommended(),
    }
}

type BoxError = Box<dyn std::error::Error>;
/// A calibration and the scores of each named set.
type Scored = (Calibration, Vec<(String, Vec<ImageScore>)>);

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // Usage errors (exit 2, like clap's own) before any work.
    let usage = |message: String| -> ! {
        Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit()
    };
    if !args.demo && args.sets.is_empty() {
        usage("give at least one --set NAME=PATH (the first is in-distribution), or --demo".into());
    }
    if !args.demo && args.calibration.is_none() && args.x1.is_none() {
        usage("give --x1 and --x2 to calibrate, or --calibration FILE".into());
    }
    if args.x1.is_some() && method(&args).needs_identity_view() && !args.identity_view {
        let name = clap::ValueEnum::to_possible_value(&args.method)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        usage(format!(
            "--method {name} needs each image's un-augmented view: features saved with it, and --identity-view"
        ));
    }
    let mut names: Vec<&str> = args.sets.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        usage(format!("--set: the name {:?} is given twice", w[0]));
    }
    cadet_report::main_with(|| check_outputs(&args).and_then(|()| run(&args)))
}

/// Output paths that cannot work are refused before any computation.
fn check_outputs(args: &Args) -> Result<(), BoxError> {
    if args.out.exists() && !args.out.is_dir() {
        return Err(format!("--out {}: exists and is not a folder", args.out.display()).into());
    }
    // Every file the run reads, the layout sidecars beside features included, is refused as an output.
    let mut inputs: Vec<PathBuf> = [&args.x1, &args.x2, &args.calibration]
        .into_iter()
        .flatten()
        .cloned()
        .chain(args.sets.iter().map(|(_, path)| path.clone()))
        .collect();
    let sidecars: Vec<PathBuf> = inputs
        .iter()
        .filter_map(|i| i.parent().map(|d| d.join("layout.json")))
        .collect();
    inputs.extend(sidecars);
    let inputs: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
    // The pictures go into --out under fixed names: none may be an input (`--set in=out/roc.png`).
    if !args.no_plots {
        for name in cadet_report::report::CADET_PICTURES {
            cadet_report::cli::not_an_input("--out", &args.out.join(name), &inputs)?;
        }
    }
    if let Some(p) = &args.save_calibration {
        cadet_report::cli::check_output_file("--save-calibration", p, &inputs)?;
        // Nor one of the pictures: one output would replace the other.
        if !args.no_plots {
            let pictures: Vec<PathBuf> = cadet_report::report::CADET_PICTURES
                .iter()
                .map(|name| args.out.join(name))
                .collect();
            let pictures: Vec<&std::path::Path> = pictures.iter().map(PathBuf::as_path).collect();
            cadet_report::cli::not_an_input("--save-calibration", p, &pictures)
                .map_err(|_| {
                    format!(
                        "--save-calibration {}: is one of the pictures written into --out {}; save it elsewhere",
                        p.display(),
                        args.out.display()
                    )
                })?;
        }
        if p.is_dir() {
            return Err(format!("--save-calibration {}: is a folder", p.display()).into());
        }
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = parent
            && !dir.is_dir()
        {
            return Err(format!(
                "--save-calibration {}: the folder {} does not exist",
                p.display(),
                dir.display()
            )
            .into());
        }
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), BoxError> {
    let ((cal, sets), table) = if args.demo {
        (demo::demo(args)?, None)
    } else {
        features::from_features(args)?
    };
    let smallest = 1.0 / (cal.x2_size() + 1) as f64;
    if smallest > args.alpha {
        // A level below 1e-9 would need over a billion calibration images: said as out of reach (α = 4e-324
        // asked for "inf images").
        let needed = (1.0 / args.alpha).ceil() - 1.0;
        let remedy = if needed <= 1e9 {
            format!("calibrate on at least {needed} images")
        } else {
            "no calibration set can reach it: give a larger α".to_string()
        };
        eprintln!(
            "warning: with |X2| = {} the smallest p-value is 1/{} = {smallest:.4} > α = {:e}: no image can be \
             flagged; {remedy}",
            cal.x2_size(),
            cal.x2_size() + 1,
            args.alpha,
        );
    }
    let report = CadetReport::new(&cal, &sets, args.alpha)?;
    if args.json {
        json::print_json_lines(args, &cal, &sets, &report, table.as_ref())?;
    } else {
        print!("{report}");
        if let Some(table) = &table {
            print!("\n{table}");
        }
    }
    if !args.no_plots {
        cadet_pictures(&args.out, &sets)?;
        eprintln!("pictures: {}", args.out.display());
    }
    // Written last: a run that fails leaves an earlier calibration file as it was.
    if let Some(p) = &args.save_calibration {
        cal.save(p)?;
        eprintln!("calibration saved to {}", p.display());
    }
    Ok(())
}
