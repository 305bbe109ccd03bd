//! The pool of in-distribution features the splits are drawn from: its files (checked to be distinct, none of
//! them X1 or an output), concatenated, each file's range kept for the saved split.

use std::ops::Range;
use std::path::{Path, PathBuf};

use cadet::detect::{FeatureFolder, TransformFeatures};
use cadet_core::limits::Limits;
use ndarray::{Array3, Axis, concatenate};

use super::{Args, BoxError};

/// The pool, read.
pub(super) struct Pool {
    /// Its files in the features folder, in order.
    pub names: Vec<String>,
    /// Each file's images in the pool.
    pub ranges: Vec<Range<usize>>,
    /// The features of every pool image, `(n, views, d)`.
    pub features: Array3<f32>,
    /// `x1.npy`, the fixed reference, with `--reference file`.
    pub x1: Option<Array3<f32>>,
}

/// The pool's files (`--pool`, or `x2.npy`, the in-distribution test set and `pool.npy`), checked and read;
/// `x1_from_pool` is 0 with `--reference file`.
pub(super) fn load(
    args: &Args,
    folder: &FeatureFolder,
    x1_from_pool: usize,
) -> Result<Pool, BoxError> {
    let dir = folder.dir();
    let layout = folder.layout().layout;
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
        // Names of files in --features, nothing else: a path (absolute, `..`) or an empty entry is refused here
        // rather than blamed on the folder or the file's contents later.
        for name in &args.pool {
            let plain = Path::new(name).components().count() == 1
                && matches!(
                    Path::new(name).components().next(),
                    Some(std::path::Component::Normal(_))
                );
            if !plain {
                return Err(format!(
                    "--pool {:?}: give the names of files in --features {} (e.g. x2.npy,pool.npy), not paths \
                     or empty entries",
                    name,
                    dir.display()
                )
                .into());
            }
        }
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
        if let Some(first) = parts.first().map(|p: &ndarray::Array3<f32>| p.dim().2)
            && f.dim().2 != first
        {
            return Err(format!(
                "{}: {} features per view, {} has {first}: the pool's files come from one embedder",
                dir.join(name).display(),
                f.dim().2,
                dir.join(&names[0]).display()
            )
            .into());
        }
        let start = ranges.last().map_or(0, |r: &Range<usize>| r.end);
        ranges.push(start..start + f.dim().0);
        parts.push(f);
    }
    let pool = concatenate(Axis(0), &parts.iter().map(|p| p.view()).collect::<Vec<_>>())?;
    drop(parts);
    let x1_file = if x1_from_pool == 0 {
        let x1 = folder.load_reference()?.array;
        if x1.dim().2 != pool.dim().2 {
            return Err(format!(
                "{}: {} features per view, the pool's have {}: X1 and the pool come from one embedder",
                folder.path("x1").display(),
                x1.dim().2,
                pool.dim().2
            )
            .into());
        }
        Some(x1)
    } else {
        None
    };
    check_distinct_images(&names, &ranges, &pool, x1_file.as_ref())?;
    Ok(Pool {
        names,
        ranges,
        features: pool,
        x1: x1_file,
    })
}

/// The pool's images must be distinct images, none of them X1's: X2 and a test set drawn from a pool holding
/// an image twice (a file and its copy) can share it, and a pool image that is an X1 image is scored against
/// itself; the rates measured would not be of exchangeable data. A file with at least half its images repeated
/// elsewhere in the pool, or in X1, is refused; fewer are said.
fn check_distinct_images(
    names: &[String],
    ranges: &[Range<usize>],
    pool: &ndarray::Array3<f32>,
    x1: Option<&ndarray::Array3<f32>>,
) -> Result<(), BoxError> {
    use cadet_report::overlap::{one_sample, repeated_images, shared_images};
    // X1 itself: each reference image once (X1 given twice over counts its images twice in μ and the local
    // statistics; hostile pass 18).
    if let Some(x1) = x1
        && let Some(warning) = one_sample(
            "X1 (x1.npy, --reference file)",
            x1.dim().0,
            repeated_images(x1.view()),
        )?
    {
        eprintln!("{warning}");
    }
    for (i, (name, range)) in names.iter().zip(ranges).enumerate() {
        let part = pool.slice(ndarray::s![range.clone(), .., ..]);
        let earlier = pool.slice(ndarray::s![..range.start, .., ..]);
        let within = repeated_images(part);
        let across = if i == 0 {
            0
        } else {
            shared_images(earlier, part)
        };
        let in_x1 = x1.map_or(0, |x1| shared_images(x1.view(), part));
        for (count, whose) in [
            (within + across, "other images of the pool".to_string()),
            (in_x1, "images of X1 (x1.npy, --reference file)".to_string()),
        ] {
            if count == 0 {
                continue;
            }
            let message = format!(
                "--pool: {count} of the {} images of {name} are {whose}",
                part.dim().0
            );
            if 2 * count >= part.dim().0 {
                return Err(format!(
                    "{message}: the pool holds distinct in-distribution images, X2 and the test images are \
                     drawn from it"
                )
                .into());
            }
            eprintln!("warning: {message}; X2 and a test set may share them");
        }
    }
    Ok(())
}
