//! CADet from the command line: calibrate (or load a calibration), score named sets, print the detection table
//! and the paper's Table 5, draw ROC curves and score histograms.
//!
//! ```text
//! # Images through an Embedder: the synthetic data set and a hand-crafted silhouette embedder
//! cargo run --release --example detect -- --demo [--out out/detect] [--json] [--save-calibration cal.json]
//!
//! # Features computed anywhere: (m, n_trs, d) float32 .npy arrays; the first --set is in-distribution
//! cargo run --release --example detect -- --x1 X1.npy --x2 X2.npy --set test=T.npy --set ood=O.npy
//! cargo run --release --example detect -- --calibration cal.json --set test=T.npy --set ood=O.npy --json
//! ```
//! Writes `roc.png`, `scores.png` (CADet scores), `m_in.png` and `m_out.png` into `--out`.

use std::path::{Path, PathBuf};

use cadet::data::Synthetic;
use cadet::detect::{Cadet, Calibration, EmbedderIdentity, ImageScore, stats::view_stats};
use cadet::report::{CadetReport, cadet_pictures};
use cadet_core::{Embedder, Progress};
use clap::Parser;
use ndarray::{Array2, Array3, Array4, ArrayView4, Axis};

#[derive(Parser)]
#[command(about = "CADet calibration, scoring and evaluation")]
struct Args {
    /// Run on the synthetic data set with a hand-crafted embedder.
    #[arg(long)]
    demo: bool,
    /// X(1) transform features, (m, n_trs, d) float32 .npy.
    #[arg(long)]
    x1: Option<PathBuf>,
    /// X(2) transform features, (m', n_trs, d) float32 .npy.
    #[arg(long)]
    x2: Option<PathBuf>,
    /// A calibration file to load instead of calibrating.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Where to save the calibration.
    #[arg(long)]
    save_calibration: Option<PathBuf>,
    /// Named sets of transform features, `name=path.npy`; the first is the in-distribution test set.
    #[arg(long = "set", value_name = "NAME=PATH")]
    sets: Vec<String>,
    /// Level α of the p-value test.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Print one JSON object per set instead of tables.
    #[arg(long)]
    json: bool,
    /// Output folder for the pictures.
    #[arg(long, default_value = "out/detect")]
    out: PathBuf,
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

/// Progress on stderr, a line per phase.
struct Stderr;
impl Progress for Stderr {
    fn start(&self, what: &str, total: u64) {
        eprintln!("{what}: {total} images");
    }
    fn advance(&self, _steps: u64) {}
}

fn load3(path: &Path) -> Result<Array3<f32>, BoxError> {
    ndarray_npy::read_npy::<_, Array3<f32>>(path)
        .map_err(|e| format!("{}: expected (n, n_trs, d) float32: {e}", path.display()).into())
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
    let cadet = Cadet::params(32).n_trs(20).batch_images(32).check()?;
    let embedder = Silhouette;
    let cal = match &args.calibration {
        Some(p) => Calibration::load(p)?,
        None => cadet.calibrate(
            &embedder,
            parts[0].images_f32().view(),
            parts[1].images_f32().view(),
            &Stderr,
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
        Ok((name.to_string(), cal.score(&embedder, x.view(), &Stderr)?))
    };
    let sets = vec![
        score("in-distribution test", &test)?,
        score("unseen shapes (crescent, pair)", &unseen.images_f32())?,
        score("pixel noise ±0.15", &noise)?,
    ];
    Ok((cal, sets))
}

/// Sets of features: calibrate from X(1), X(2) or load a calibration, then score.
fn from_features(args: &Args) -> Result<Scored, BoxError> {
    let sets: Vec<(String, Array3<f32>)> = args
        .sets
        .iter()
        .map(|s| {
            let (name, path) = s
                .split_once('=')
                .ok_or_else(|| format!("--set {s}: expected NAME=PATH"))?;
            Ok((name.to_string(), load3(Path::new(path))?))
        })
        .collect::<Result<_, BoxError>>()?;
    if sets.is_empty() {
        return Err("give at least one --set (the first is in-distribution), or --demo".into());
    }
    let cal = match (&args.calibration, &args.x1, &args.x2) {
        (Some(p), _, _) => Calibration::load(p)?,
        (None, Some(x1), Some(x2)) => {
            let (x1, x2) = (load3(x1)?, load3(x2)?);
            let d = x1.dim().2;
            let identity = EmbedderIdentity {
                name: "features from .npy".into(),
                dim: d,
                image_shape: [0, 0, 0],
                probe: vec![0.0; d],
            };
            Cadet::params(32)
                .n_trs(x1.dim().1.max(2))
                .check()?
                .calibrate_features(identity, x1.view(), x2.view(), &Stderr)?
        }
        _ => return Err("give --calibration, or both --x1 and --x2".into()),
    };
    let scored = sets
        .into_iter()
        .map(|(name, f)| {
            let stats = f
                .outer_iter()
                .map(|img| view_stats(img, &cal.mu))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((name, cal.score_stats(&stats)))
        })
        .collect::<Result<_, BoxError>>()?;
    Ok((cal, scored))
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let (cal, sets) = if args.demo {
        demo(&args)?
    } else {
        from_features(&args)?
    };
    if let Some(p) = &args.save_calibration {
        cal.save(p)?;
        eprintln!("calibration saved to {}", p.display());
    }
    let report = CadetReport::new(&cal, &sets, args.alpha)?;
    if args.json {
        for (row, st) in report.rows.iter().zip(&report.stats) {
            println!(
                "{}",
                serde_json::json!({ "set": row, "table5": st, "gamma": cal.gamma })
            );
        }
    } else {
        print!("{report}");
    }
    cadet_pictures(&args.out, &sets)?;
    eprintln!("pictures: {}", args.out.display());
    Ok(())
}
