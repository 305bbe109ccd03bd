//! Sets of `.npy` features: checked against their `layout.json` and the flags (or the calibration), calibrated
//! or scored, and with `--compare` every method beside two baselines.

use std::path::{Path, PathBuf};

use cadet::detect::features::{FeaturesLayout, TransformFeatures};
use cadet::detect::{Cadet, Calibration, ViewLayout};
use cadet_core::limits::Limits;
use cadet_report::progress::Lines;
use cadet_report::report::{MethodTable, compare_methods, push_feature_baselines};
use ndarray::{Array2, Array3, Axis};

use super::{Args, BoxError, Scored, method};

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

/// Sets of features: calibrate from X(1), X(2) or load a calibration, then score; with `--compare`, every method
/// and two baselines side by side.
pub(super) fn from_features(args: &Args) -> Result<(Scored, Option<MethodTable>), BoxError> {
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
            // X1, X2 and the scored sets are different images: a set scored against the calibration's own
            // images, or X1 = X2, gives p-values that promise nothing.
            let distinct = |(a, fa): (&PathBuf, &Array3<f32>),
                            (b, fb): (&PathBuf, &Array3<f32>)| {
                let same_file = a
                    .canonicalize()
                    .ok()
                    .is_some_and(|a| b.canonicalize().ok() == Some(a));
                if same_file || fa == fb {
                    return Err(format!(
                        "{} and {} hold the same features: X1, X2 and the scored sets must be different images",
                        a.display(),
                        b.display()
                    ));
                }
                Ok(())
            };
            distinct((x1, &f1), (x2, &f2))?;
            // X1's and X2's images must be distinct draws: each repeat counts twice (in μ and the local
            // statistics; in every p-value), and an X2 given twice over claims p-values twice as fine as its
            // images allow.
            for (flag, path, f) in [("--x1", x1, &f1), ("--x2", x2, &f2)] {
                let repeated = cadet_report::overlap::repeated_images(f.view());
                let name = format!("{flag} {}", path.display());
                if let Some(warning) =
                    cadet_report::overlap::one_sample(&name, f.dim().0, repeated)?
                {
                    eprintln!("{warning}");
                }
            }
            for (_, path, f) in &sets {
                distinct((path, f), (x1, &f1))?;
                distinct((path, f), (x2, &f2))?;
            }
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
            // Images of the calibration's own X1 or X2 (a saved x1.npy or x2.npy given as a set) have p-values
            // that promise nothing: all of them is an error, some a warning.
            let own = [
                ("X1", cal.x1_images_among(f.view()).unwrap_or(0)),
                ("X2", cal.x2_images_among(&scores)),
            ];
            for (which, n) in own {
                match n {
                    0 => {}
                    n if n == scores.len() => {
                        return Err(format!(
                            "set {name:?} ({}): its images are the calibration's own {which}; score images the \
                             calibration has not seen",
                            path.display()
                        )
                        .into());
                    }
                    // One statistic per image, kept to f32's digits: an unseen image can equal an X2 image's
                    // by chance in sets of thousands (hostile pass 14).
                    n if which == "X2" && scores.first().is_some_and(|s| s.statistics.len() == 1) => {
                        eprintln!(
                            "warning: set {name:?} ({}): {n} of its {} images have the statistic of an image of \
                             the calibration's X2 (the method keeps one number per image: unseen images can \
                             match by chance); if they are X2's, their p-values are not valid",
                            path.display(),
                            scores.len()
                        )
                    }
                    n => eprintln!(
                        "warning: set {name:?} ({}): {n} of its {} images are in the calibration's {which}; \
                         their p-values are not valid",
                        path.display(),
                        scores.len()
                    ),
                }
            }
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
