//! The procedures under study (CADet methods on shared statistics, the baselines' scores) and their test
//! p-values for one split.

use std::ops::Range;
use std::path::{Path, PathBuf};

use cadet::detect::baselines::{HuCalibration, Knn, Mahalanobis};
use cadet::detect::method::{FittedCombination, image_statistics};
use cadet::detect::{
    Calibrator, ClassifierOutputs, DetectionMethod, Detector, Reference, Statistic, ViewLayout,
};
use cadet_report::report::ClassifierScores;
use ndarray::{Array1, Array2, ArrayView2, ArrayView3};

use super::BoxError;

/// One procedure under study: a CADet method (columns of the shared statistics) or a baseline's anomaly
/// scores of every pool image.
pub(super) enum Procedure {
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
pub(super) fn statistics(
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
pub(super) fn split_p_values(
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

/// k-NN distance and Mahalanobis on the single-view features (each pool image's un-augmented view, `single`),
/// fitted once on the training features saved beside (`single/knn_train.npy`, with labels); none when the
/// folder has no training features.
pub(super) fn single_view_baselines(
    dir: &Path,
    single: ArrayView2<'_, f32>,
) -> Result<Vec<(String, Procedure)>, BoxError> {
    let knn_path = dir.join("single/knn_train.npy");
    let mut baselines = Vec::new();
    if !knn_path.exists() {
        return Ok(baselines);
    }
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
    let outputs = ClassifierOutputs {
        logits: single,
        features: Some(single),
    };
    let k = 10.min(train.nrows());
    baselines.push((
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
    baselines.push((
        "baseline: Mahalanobis".into(),
        Procedure::Scores(
            Mahalanobis::fit(train.view(), &dense, present.len())?.anomaly_scores(outputs)?,
        ),
    ));
    Ok(baselines)
}

/// ODIN and Hu et al. from the classifier's per-image scores saved beside each pool file (reproduce_cifar
/// --save-features, `classifier/`): they need no reference, only X2 to calibrate on. None when the folder has no
/// scores, named when only some pool files have them.
pub(super) fn classifier_baselines(
    dir: &Path,
    names: &[String],
    ranges: &[Range<usize>],
) -> Result<Vec<(String, Procedure)>, BoxError> {
    let mut baselines = Vec::new();
    let classifier_files: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join("classifier").join(n))
        .collect();
    if classifier_files.iter().all(|f| f.exists()) {
        let mut all_scores = ClassifierScores::default();
        for (file, range) in classifier_files.iter().zip(ranges) {
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
        baselines.push((
            "baseline: ODIN".into(),
            Procedure::Scores(all_scores.odin.iter().map(|s| -s).collect()),
        ));
        baselines.push((
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
    Ok(baselines)
}
