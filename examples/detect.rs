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

use cadet_report::progress::Lines;
use std::path::{Path, PathBuf};

use cadet::data::Synthetic;
use cadet::detect::features::{FeaturesLayout, TransformFeatures};
use cadet::detect::{
    Cadet, Calibration, Correction, DetectionMethod, ImageScore, Statistic, ViewLayout,
    decide_scores,
};
use cadet_core::Embedder;
use cadet_core::limits::Limits;
use cadet_report::report::{
    CadetReport, MethodTable, cadet_pictures, compare_methods, push_feature_baselines,
};
use clap::{CommandFactory, Parser};
use ndarray::{Array2, Array3, Array4, ArrayView4, Axis};

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

/// A hand-crafted stand-in for a trained encoder: the image in grayscale, pooled to 8 × 8, standardised per
/// image and taken in absolute value (so the silhouette counts, not its colour or whether it is darker or
/// lighter than the background).
struct Silhouette;

impl Embedder for Silhouette {
    fn dim(&self) -> usize {
        64
    }
    fn embed(&self, images: ArrayView4<'_, f32>) -> cadet_core::Result<Array2<f32>> {
        let (n, _, h, w) = images.dim();
        let mut out = Array2::<f32>::zeros((n, 64));
        for i in 0..n {
            let gray = images
                .index_axis(Axis(0), i)
                .mean_axis(Axis(0))
                .expect("channels");
            let mut cells = [0.0f32; 64];
            for ((y, x), v) in gray.indexed_iter() {
                cells[(y * 8 / h) * 8 + x * 8 / w] += v;
            }
            let mean = cells.iter().sum::<f32>() / 64.0;
            let sd = (cells.iter().map(|c| (c - mean).powi(2)).sum::<f32>() / 64.0).sqrt() + 1e-6;
            out.row_mut(i)
                .iter_mut()
                .zip(&cells)
                .for_each(|(o, c)| *o = ((c - mean) / sd).abs() + 0.05);
        }
        Ok(out)
    }
    fn name(&self) -> String {
        "silhouette-8x8".into()
    }
}

/// The transforms per image of X(2)'s features `(m, views, d)`: all views, or all but the first with
/// `--identity-view`; at least 2 (features with fewer are then refused by the calibration as a shape error).
fn transforms(args: &Args, x2: &Array3<f32>) -> usize {
    x2.dim()
        .1
        .saturating_sub(usize::from(args.identity_view))
        .max(2)
}

/// Features `(n, views, d)` from an `.npy` file, bounded by the default limits (the sidecar, if any, is checked
/// by the caller against the flags or the calibration).
fn load3(path: &Path) -> Result<Array3<f32>, BoxError> {
    Ok(TransformFeatures::read_npy(path, ViewLayout::Transforms, &Limits::default())?.array)
}

/// The demo: calibrate on 8 shapes, score their test images, 2 unseen shapes, and noisy test images.
fn demo(args: &Args) -> Result<Scored, BoxError> {
    let data = Synthetic {
        classes: 10,
        per_class: 120,
        size: 32,
        seed: 1,
        plain: false,
    }
    .generate()?;
    let seen = data.without_classes(&[8, 9]);
    let parts = seen.split(&[100, 400, 300], 2)?;
    let unseen = data.with_classes(&[8, 9]).split(&[240], 3)?.remove(0);
    let cadet = Cadet::params(32)
        .n_trs(20)
        .identity_view(method(args).needs_identity_view())
        .batch_images(32)
        .method(method(args))
        .check()?;
    let embedder = Silhouette;
    let cal = match &args.calibration {
        Some(p) => Calibration::load(p)?,
        None => cadet.calibrate(
            &embedder,
            parts[0].images_f32().view(),
            parts[1].images_f32().view(),
            &Lines::new(),
        )?,
    };
    let test = parts[2].images_f32();
    let noise: Array4<f32> = {
        let mut x = test.clone();
        x.indexed_iter_mut().for_each(|((i, c, y, xx), v)| {
            let h = ((i * 7919 + c * 104_729 + y * 1299 + xx * 15_485_863) % 1000) as f32 / 1000.0
                - 0.5;
            *v = (*v + 0.3 * h).clamp(0.0, 1.0);
        });
        x
    };
    let score = |name: &str, x: &Array4<f32>| -> Result<(String, Vec<ImageScore>), BoxError> {
        Ok((
            name.to_string(),
            cal.score(&embedder, x.view(), &Lines::new())?,
        ))
    };
    let sets = vec![
        score("in-distribution test", &test)?,
        score("unseen shapes (crescent, pair)", &unseen.images_f32())?,
        score("pixel noise ±0.15", &noise)?,
    ];
    Ok((cal, sets))
}

/// Sets of features: calibrate from X(1), X(2) or load a calibration, then score; with `--compare`, every method
/// and two baselines side by side.
fn from_features(args: &Args) -> Result<(Scored, Option<MethodTable>), BoxError> {
    let sets: Vec<(String, PathBuf, Array3<f32>)> = args
        .sets
        .iter()
        .map(|(name, path)| {
            let f = load3(path)?;
            if f.dim().0 < 2 {
                return Err(format!(
                    "set {name:?} ({}): {} image(s); a set needs at least 2 (AUROC, variances)",
                    path.display(),
                    f.dim().0
                )
                .into());
            }
            Ok((name.clone(), path.clone(), f))
        })
        .collect::<Result<_, BoxError>>()?;
    let features = match (&args.x1, &args.x2) {
        (Some(x1), Some(x2)) => {
            // Features saved by the examples say their layout beside them: refuse a flag that disagrees.
            let told = if args.identity_view {
                ViewLayout::IdentityFirst
            } else {
                ViewLayout::Transforms
            };
            for path in [x1, x2].into_iter().chain(args.sets.iter().map(|(_, p)| p)) {
                FeaturesLayout::check_against(path, told)?;
            }
            // X2 and the sets have the views their sidecar promises (X1 may have fewer transforms).
            let limits = Limits::default();
            let f1 = TransformFeatures::load_reference(x1, told, &limits)?.array;
            let f2 = TransformFeatures::load(x2, told, &limits)?.array;
            for (_, path, f) in &sets {
                FeaturesLayout::check_views(path, f.dim().1)?;
            }
            if args.identity_view && f2.dim().1 < 3 {
                return Err(format!(
                    "{}: {} views per image; with --identity-view the features need the un-augmented view and \
                     at least 2 transforms",
                    x2.display(),
                    f2.dim().1
                )
                .into());
            }
            Some((f1, f2))
        }
        _ => None,
    };
    let cal = match (&args.calibration, &features) {
        (Some(p), _) => {
            let cal = Calibration::load(p)?;
            // Sets saved by the examples say their layout: it must be the calibration's.
            for (_, path) in &args.sets {
                if let Some((saved, sidecar)) = FeaturesLayout::beside(path)?
                    && saved.layout != cal.params().layout()
                {
                    let has = |l: ViewLayout| match l {
                        ViewLayout::IdentityFirst => "the un-augmented view first",
                        ViewLayout::Transforms => "transforms only",
                    };
                    return Err(format!(
                        "{}: the features there hold {}, but the calibration {} was made for features with {} \
                         (calibrate again from features of this layout)",
                        sidecar.display(),
                        has(saved.layout),
                        p.display(),
                        has(cal.params().layout())
                    )
                    .into());
                }
            }
            // Calibrations from images record the embedder and the image shape; version-1 calibrations from
            // features recorded a placeholder identity with no image shape, which is accepted.
            if let Some(e) = cal.embedder().filter(|e| e.image_shape != [0, 0, 0]) {
                return Err(format!(
                    "{}: calibrated with the embedder `{}` on images; .npy features need a calibration made from \
                     features (--x1, --x2)",
                    p.display(),
                    e.name
                )
                .into());
            }
            cal
        }
        (None, Some((x1, x2))) => Cadet::params(32)
            .n_trs(transforms(args, x2))
            .identity_view(args.identity_view)
            .method(method(args))
            .check()?
            .calibrate_features(None, x1.view(), x2.view(), &Lines::new())
            .map_err(|e| {
                format!(
                    "calibration from {:?} and {:?}: {e}",
                    args.x1.as_ref().unwrap(),
                    args.x2.as_ref().unwrap()
                )
            })?,
        _ => return Err("give --calibration, or both --x1 and --x2".into()),
    };
    let scored = sets
        .iter()
        .map(|(name, path, f)| {
            let scores = cal
                .score_features(f.view())
                .map_err(|e| format!("set {name:?} ({}): {e}", path.display()))?;
            Ok((name.clone(), scores))
        })
        .collect::<Result<_, BoxError>>()?;
    let table = match (&features, args.compare) {
        (Some((x1, x2)), true) => {
            let cadet = Cadet::paper(32)
                .n_trs(transforms(args, x2))
                .identity_view(args.identity_view)
                .check()?;
            let named_views: Vec<(String, _)> =
                sets.iter().map(|(n, _, f)| (n.clone(), f.view())).collect();
            let (mut table, _) = compare_methods(
                &cadet,
                args.k,
                None,
                x1.view(),
                x2.view(),
                &named_views,
                format!(
                    "AUROC % [95% interval] against set {:?}; last column: its share with p ≤ α. |X1| = {}, |X2| = {}",
                    sets[0].0,
                    x1.dim().0,
                    x2.dim().0
                ),
                args.alpha,
            )?;
            // Baselines on each image's mean transform feature, X1 as the neighbours (one class: no labels).
            let first = usize::from(args.identity_view);
            let mean = |f: &Array3<f32>| {
                f.slice(ndarray::s![.., first.., ..])
                    .mean_axis(Axis(1))
                    .expect("n_trs ≥ 1")
            };
            let x1_mean = mean(x1);
            let others: Vec<Array2<f32>> = sets[1..].iter().map(|(_, _, f)| mean(f)).collect();
            let others: Vec<_> = others.iter().map(|f| f.view()).collect();
            push_feature_baselines(
                &mut table,
                "X1 means",
                (x1_mean.view(), &vec![0; x1_mean.nrows()]),
                mean(x2).view(),
                mean(&sets[0].2).view(),
                &others,
            )?;
            Some(table)
        }
        _ => None,
    };
    Ok(((cal, scored), table))
}

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
    cadet_report::exit_code(check_outputs(&args).and_then(|()| run(&args)))
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
        (demo(args)?, None)
    } else {
        from_features(args)?
    };
    let smallest = 1.0 / (cal.x2_size() + 1) as f64;
    if smallest > args.alpha {
        eprintln!(
            "warning: with |X2| = {} the smallest p-value is 1/{} = {smallest:.4} > α = {}: no image can be \
             flagged; calibrate on at least {} images",
            cal.x2_size(),
            cal.x2_size() + 1,
            args.alpha,
            (1.0 / args.alpha).ceil() as usize
        );
    }
    let report = CadetReport::new(&cal, &sets, args.alpha)?;
    if args.json {
        print_json_lines(args, &cal, &sets, &report, table.as_ref())?;
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

/// `--json`: JSON Lines, one record per image, per set and per compared detector (see the flag's help).
fn print_json_lines(
    args: &Args,
    cal: &Calibration,
    sets: &[(String, Vec<ImageScore>)],
    report: &CadetReport,
    table: Option<&MethodTable>,
) -> Result<(), BoxError> {
    use std::io::Write;
    let labels: Vec<String> = cal.method().statistics.iter().map(|s| s.label()).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (name, scores) in sets {
        let decisions = decide_scores(scores, args.alpha, Correction::None)?;
        for (index, (s, v)) in scores.iter().zip(&decisions.verdicts).enumerate() {
            let statistics: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .cloned()
                .zip(s.statistics.iter().map(|&x| serde_json::json!(x)))
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "record": "image", "set": name, "index": index, "p_value": s.p_value,
                    "is_anomaly": v.is_anomaly, "score": s.score, "statistics": statistics,
                })
            )?;
        }
        let row = report
            .rows
            .iter()
            .zip(&report.stats)
            .find(|(r, _)| &r.name == name);
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "record": "set", "set": name, "alpha": args.alpha, "n_trs": cal.params().transforms(),
                "x1_size": cal.x1_size(), "x2_size": cal.x2_size(), "method": cal.method().label(),
                "gamma": cal.gamma(), "images": scores.len(), "rejected": decisions.rejected,
                "rejection_rate": decisions.rejected as f64 / scores.len().max(1) as f64,
                "metrics": row.map(|(r, _)| r), "table5": row.map(|(_, st)| st),
            })
        )?;
    }
    if let Some(table) = table {
        for row in &table.rows {
            let aurocs: serde_json::Map<String, serde_json::Value> =
                table
                    .sets
                    .iter()
                    .cloned()
                    .zip(row.aurocs.iter().map(
                        |a| serde_json::json!({ "auroc": a.auroc, "low": a.low, "high": a.high }),
                    ))
                    .collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "record": "comparison", "detector": row.name, "alpha": table.alpha, "auroc": aurocs,
                    "rejection_rate": row.rejected.map(|(r, _)| r),
                    "rejection_within_law": row.rejected.map(|(_, inside)| inside),
                })
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
