//! Two-sample MMD test on embeddings stored as `.npy` matrices (rows are samples).
//!
//! ```text
//! cargo run --release --example mmd -- X.npy Y.npy [--clean-calibration P2.npy] [--perms 500] [--seed 0]
//!                                      [--kernel cosine|linear|gaussian]
//! cargo run --release --example mmd -- --demo
//! ```
//! Prints one JSON object: `method`, `kernel`, `statistic`, `p_value`, `n_perm`, `seconds`, sizes. With
//! `--clean-calibration P2.npy` it runs MMD-CC: the estimate compares X and Y, the null comes from X ∪ P2.
//! `--demo` generates data (a shifted pair and a same-distribution pair) and prints one object for both.
//!
//! Errors name the input (`X`, `Y` or `--clean-calibration`) and its file. Exit codes: 0 success, 1 an input
//! error (unreadable file, values that do not fit f32, an overflowing kernel), 2 a usage error.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use std::path::{Path, PathBuf};
use std::time::Instant;

use cadet::mmd::{CosineKernel, GaussianKernel, LinearKernel, PermutationTest, TestResult};
use cadet_core::Kernel;
use cadet_report::overlap::{one_sample, repeated_rows, shared_rows, two_samples};
use clap::{Parser, ValueEnum};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::json;

#[derive(Parser)]
#[command(about = "MMD two-sample test (and MMD-CC) on .npy embeddings")]
struct Args {
    /// First sample (f32 or f64 matrix, rows are samples); S_P(1) for MMD-CC.
    #[arg(required_unless_present = "demo")]
    x: Option<PathBuf>,
    /// Second sample; S_Q for MMD-CC.
    #[arg(required_unless_present = "demo")]
    y: Option<PathBuf>,
    /// Second clean in-distribution sample S_P(2): run MMD-CC (same size as Y).
    #[arg(long, value_name = "P2.npy")]
    clean_calibration: Option<PathBuf>,
    /// Number of permutations (1 to 10000000).
    #[arg(long, default_value_t = 500,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
              .range(1..=cadet::mmd::MAX_PERMUTATIONS as u64))]
    perms: usize,
    /// Seed of the permutations.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Kernel on the rows.
    #[arg(long, value_enum, default_value_t = KernelArg::Cosine)]
    kernel: KernelArg,
    /// Run on generated data (no files with it: they would be ignored).
    #[arg(long, conflicts_with_all = ["x", "y", "clean_calibration"])]
    demo: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum KernelArg {
    Cosine,
    Linear,
    Gaussian,
}

impl KernelArg {
    fn kernel(self) -> Box<dyn Kernel> {
        match self {
            KernelArg::Cosine => Box::new(CosineKernel),
            KernelArg::Linear => Box::new(LinearKernel),
            KernelArg::Gaussian => Box::new(GaussianKernel::median_heuristic()),
        }
    }
}

type BoxError = Box<dyn std::error::Error>;

/// The matrix of the input `what` (`X`, `Y`, `--clean-calibration`) from `path`: f32, or f64 whose values
/// fit f32. The reader's own error (missing or truncated file, wrong number of dimensions) is kept; only a
/// dtype other than f32 leads to the f64 attempt.
fn load(what: &str, path: &Path) -> Result<Array2<f32>, BoxError> {
    use ndarray_npy::{ReadNpyError, ReadNpyExt};
    let fail =
        |reason: String| -> BoxError { format!("{what} ({}): {reason}", path.display()).into() };
    // The header, read as the reader reads it, is checked against the file's size and the default limits
    // before any allocation.
    let limits = cadet_core::limits::Limits::default();
    let header = cadet::data::formats::read_npy_header(path, &limits)
        .map_err(|e| -> BoxError { format!("{what}: {e}").into() })?;
    if header.shape.first() == Some(&0) {
        return Err(fail("no rows".into()));
    }
    let open = || -> Result<_, BoxError> {
        Ok(std::io::BufReader::new(
            cadet_core::limits::open_regular(path).map_err(|e| fail(e.to_string()))?,
        ))
    };
    match Array2::<f32>::read_npy(open()?) {
        Ok(a) => Ok(a),
        Err(ReadNpyError::WrongDescriptor(f32_descr)) => match Array2::<f64>::read_npy(open()?) {
            Ok(a) => {
                let limit = f64::from(f32::MAX);
                if let Some((index, v)) = a
                    .indexed_iter()
                    .find(|(_, v)| v.is_finite() && v.abs() > limit)
                {
                    return Err(fail(format!(
                        "f64 value {v:e} at {index:?} does not fit f32 (largest {:e})",
                        f32::MAX
                    )));
                }
                Ok(a.mapv(|v| v as f32))
            }
            Err(ReadNpyError::WrongDescriptor(_)) => Err(fail(format!(
                "expected a 2-d f32 or f64 matrix, the file's dtype is {f32_descr}"
            ))),
            Err(e) => Err(fail(e.to_string())),
        },
        Err(ReadNpyError::WrongNdim(_, got)) => Err(fail(format!(
            "expected a 2-d matrix (rows are samples), got an array of {got} dimension(s)"
        ))),
        Err(e) => Err(fail(e.to_string())),
    }
}

fn run(
    test: &PermutationTest,
    kernel: &dyn Kernel,
    x: &Array2<f32>,
    y: &Array2<f32>,
    p2: Option<&Array2<f32>>,
) -> Result<serde_json::Value, BoxError> {
    let start = Instant::now();
    let r: TestResult = match p2 {
        // The library names MMD-CC's sets p1, p2 and q.
        Some(p2) => test
            .clean_calibration(x.view(), p2.view(), y.view(), kernel)
            .map_err(|e| format!("MMD-CC (p1 = X, p2 = --clean-calibration, q = Y): {e}"))?,
        None => test.two_sample(x.view(), y.view(), kernel)?,
    };
    Ok(json!({
        "method": r.method,
        "kernel": kernel.name(),
        "statistic": r.statistic,
        "p_value": r.p_value,
        "n_perm": r.n_perm,
        "seconds": start.elapsed().as_secs_f64(),
        "n_x": x.nrows(),
        "n_y": y.nrows(),
        "dim": x.ncols(),
    }))
}

fn demo(test: &PermutationTest, kernel: &dyn Kernel) -> Result<serde_json::Value, BoxError> {
    // 300 embeddings of dimension 128 per set; the shifted set moves 0.25 along the first 8 coordinates.
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut sample = |shift: f32| {
        Array2::from_shape_fn((300, 128), |(_, j)| {
            let v: f32 = StandardNormal.sample(&mut rng);
            v + if j < 8 { shift } else { 0.0 }
        })
    };
    let (p, q, p_again) = (sample(0.0), sample(0.25), sample(0.0));
    Ok(json!({
        "demo": "300 vs 300 samples, d = 128; 'shifted' moves the mean by 0.25 on 8 coordinates",
        "shifted": run(test, kernel, &p, &q, None)?,
        "same_distribution": run(test, kernel, &p, &p_again, None)?,
    }))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let compute = || -> Result<serde_json::Value, BoxError> {
        let test = PermutationTest::params()
            .n_perm(args.perms)
            .seed(args.seed)
            .check()?;
        let kernel = args.kernel.kernel();
        if args.demo {
            return demo(&test, kernel.as_ref());
        }
        let (Some(x), Some(y)) = (args.x.as_deref(), args.y.as_deref()) else {
            return Err("give X.npy and Y.npy (or --demo)".into());
        };
        let (x_path, y_path) = (x, y);
        // A set tested against itself (or its own clean calibration) gives a p-value that means nothing.
        let mut files = vec![("X", x_path), ("Y", y_path)];
        files.extend(
            args.clean_calibration
                .as_deref()
                .map(|p| ("--clean-calibration", p)),
        );
        cadet_report::cli::distinct_files(&files)?;
        let (x, y) = (load("X", x_path)?, load("Y", y_path)?);
        if y.ncols() != x.ncols() {
            return Err(format!(
                "Y ({}) has {} features per row, X ({}) has {}: embed both with the same model",
                y_path.display(),
                y.ncols(),
                x_path.display(),
                x.ncols()
            )
            .into());
        }
        // A set against itself, reordered or in large part: refused; a few rows in common: said.
        let (xn, yn) = (
            format!("X ({})", x_path.display()),
            format!("Y ({})", y_path.display()),
        );
        // Each side's rows must be distinct draws: a set given twice over counts each image twice.
        for (name, set) in [(&xn, &x), (&yn, &y)] {
            if let Some(warning) = one_sample(name, set.nrows(), repeated_rows(set.view()))? {
                eprintln!("{warning}");
            }
        }
        let shared = shared_rows(x.view(), y.view());
        if let Some(warning) = two_samples((&xn, x.nrows()), (&yn, y.nrows()), shared)? {
            eprintln!("{warning}");
        }
        let p2 = args
            .clean_calibration
            .as_deref()
            .map(|p| load("--clean-calibration", p))
            .transpose()?;
        if let Some(p2) = &p2 {
            if p2.ncols() != x.ncols() {
                return Err(format!(
                    "--clean-calibration: {} features per row, X has {}",
                    p2.ncols(),
                    x.ncols()
                )
                .into());
            }
            if p2.nrows() != y.nrows() {
                return Err(format!(
                    "--clean-calibration: {} rows, MMD-CC needs as many as Y ({})",
                    p2.nrows(),
                    y.nrows()
                )
                .into());
            }
            // The clean sample is a third set: a copy of X or Y (reordered or not) compares a set with itself.
            for (name, set) in [(&xn, &x), (&yn, &y)] {
                let shared = shared_rows(set.view(), p2.view());
                let clean = ("--clean-calibration", p2.nrows());
                if let Some(warning) = two_samples((name, set.nrows()), clean, shared)? {
                    eprintln!("{warning}");
                }
            }
        }
        run(&test, kernel.as_ref(), &x, &y, p2.as_ref())
    };
    cadet_report::main_with(|| {
        println!(
            "{}",
            compute().map_err(|e| e as Box<dyn std::error::Error>)?
        );
        Ok(())
    })
}
