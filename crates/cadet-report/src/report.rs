//! What the examples print and draw after scoring sets with CADet: the detection table (AUROC, FPR@95TPR,
//! AUPR, share with `p ≤ α`), the paper's Table 5 (`m_in`, `m_out`, `γ·m_out`), the side-by-side table of
//! detection methods and baselines, and ROC curves and histograms of the score and of `m_in` and `m_out`.

use std::fmt;
use std::path::{Path, PathBuf};

use cadet_core::metrics;
use cadet_detect::baselines::{Knn, Mahalanobis};
use cadet_detect::comparison::{MethodScores, compared_methods, score_methods, select};
use cadet_detect::evaluation::{
    MethodRow, NamedScores, PartAurocs, SetReport, StatsRow, evaluate, method_row, part_aurocs,
    stats_row,
};
use cadet_detect::{
    Cadet, Calibration, Calibrator, ClassifierOutputs, Detector, EmbedderIdentity, ImageScore,
    ViewLayout,
};
use ndarray::{ArrayView2, ArrayView3, ArrayView4, Axis, concatenate, s};

use crate::Result;
use crate::plots::{self, PlotError};

/// Sets of CADet scores by name; the first is the in-distribution test set.
pub type ScoredSets = [(String, Vec<ImageScore>)];

/// The detection table and Table 5 of scored sets.
#[derive(Debug, Clone, PartialEq)]
pub struct CadetReport {
    /// One line of context: transforms, calibration sizes, γ, α.
    pub header: String,
    /// The in-distribution test set first, then each other set against it.
    pub rows: Vec<SetReport>,
    /// `m_in`, `m_out`, `γ·m_out` per set.
    pub stats: Vec<StatsRow>,
    /// AUROC of `m_in` alone and of `m_out` alone, per set after the first: which statistic separates a set,
    /// and whether one works against the other (below 50%).
    pub parts: Vec<PartAurocs>,
}

impl CadetReport {
    /// Evaluates `sets` (the first in-distribution) scored under `calibration`, at level `alpha`.
    pub fn new(calibration: &Calibration, sets: &ScoredSets, alpha: f64) -> Result<Self> {
        let named: Vec<NamedScores> = sets
            .iter()
            .map(|(n, s)| NamedScores::from_cadet(n.clone(), s))
            .collect();
        let Some((first, others)) = named.split_first() else {
            return Err(crate::Error::Core(cadet_core::Error::InvalidParameter {
                name: "sets",
                reason: "no set to report".into(),
            }));
        };
        let rows = evaluate(first, others, alpha)?;
        let stats = sets
            .iter()
            .map(|(n, s)| stats_row(n.clone(), s, calibration.gamma().unwrap_or(f64::NAN)))
            .collect::<Result<_, _>>()?;
        let parts = sets[1..]
            .iter()
            .map(|(n, s)| part_aurocs(n.clone(), &sets[0].1, s))
            .collect::<Result<_, _>>()?;
        let gamma = calibration
            .gamma()
            .map(|g| format!(", γ = {g:.3}"))
            .unwrap_or_default();
        Ok(Self {
            header: format!(
                "CADet ({}), {} transforms, |X1| = {}, |X2| = {}{gamma}, α = {alpha}",
                calibration.method().label(),
                calibration.params().transforms(),
                calibration.x1_size(),
                calibration.x2_size(),
            ),
            rows,
            stats,
            parts,
        })
    }
}

impl fmt::Display for CadetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.header)?;
        writeln!(
            f,
            "{:<34} {:>5} {:>7} {:>9} {:>8} {:>8} {:>8}",
            "set", "n", "AUROC", "FPR@95TPR", "AUPR-in", "AUPR-out", "p ≤ α"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<34} {:>5} {:>6.1}% {:>8.1}% {:>7.1}% {:>7.1}% {:>7.1}%",
                r.name,
                r.n,
                100.0 * r.auroc,
                100.0 * r.fpr_at_95_tpr,
                100.0 * r.aupr_in,
                100.0 * r.aupr_out,
                100.0 * r.rejected_at_alpha.unwrap_or(f64::NAN)
            )?;
        }
        writeln!(
            f,
            "\nTable 5 (mean ± sd)                  m_in                m_out               γ·m_out             AUROC by m_in, m_out"
        )?;
        for (i, s) in self.stats.iter().enumerate() {
            // The first set is the reference: no AUROC of its own.
            let part = (i > 0)
                .then(|| self.parts.get(i - 1))
                .flatten()
                .map(|p| format!("{:>5.1}%  {:>5.1}%", 100.0 * p.m_in, 100.0 * p.m_out))
                .unwrap_or_default();
            // γ·m_out only where the method has a γ (the weighted sums).
            let gamma_part = if s.gamma_m_out_mean.is_finite() {
                format!(
                    "{:>8.4} ± {:<8.4}",
                    s.gamma_m_out_mean,
                    s.gamma_m_out_var.sqrt()
                )
            } else {
                format!("{:>8} {:<10}", "–", "")
            };
            writeln!(
                f,
                "{:<34} {:>8.4} ± {:<8.4} {:>8.4} ± {:<8.4} {gamma_part} {part}",
                s.name,
                s.m_in_mean,
                s.m_in_var.sqrt(),
                s.m_out_mean,
                s.m_out_var.sqrt(),
            )?;
        }
        Ok(())
    }
}

/// Detectors side by side: AUROC (95% DeLong interval) on each anomaly set against the in-distribution test set,
/// and each calibrated detector's in-distribution rejection at `α`.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodTable {
    /// One line of context.
    pub header: String,
    /// Level of the rejection column.
    pub alpha: f64,
    /// The anomaly sets' short names (columns).
    pub sets: Vec<String>,
    /// The rows, in order.
    pub rows: Vec<MethodRow>,
}

impl MethodTable {
    /// An empty table over anomaly sets `sets`.
    pub fn new(header: impl Into<String>, sets: Vec<String>, alpha: f64) -> Self {
        Self {
            header: header.into(),
            alpha,
            sets,
            rows: Vec::new(),
        }
    }

    /// Adds a row from anomaly scores (higher = more anomalous) of the in-distribution test set and of each
    /// anomaly set (in the order of the columns), and the in-distribution p-values of a calibrated detector with
    /// its number of calibration images (`|X⁽²⁾|`: the law its false-positive count is checked against).
    pub fn push(
        &mut self,
        name: impl Into<String>,
        in_distribution: &[f64],
        in_p_values: Option<(&[f64], usize)>,
        sets: &[Vec<f64>],
    ) -> Result<()> {
        let refs: Vec<&[f64]> = sets.iter().map(Vec::as_slice).collect();
        self.rows.push(method_row(
            name,
            in_distribution,
            in_p_values,
            &refs,
            self.alpha,
        )?);
        Ok(())
    }

    /// Adds a CADet row from sets scored by a calibration on `calibration_size` images (`|X⁽²⁾|`), the
    /// in-distribution test set first.
    pub fn push_cadet(
        &mut self,
        name: impl Into<String>,
        calibration_size: usize,
        scored: &[Vec<ImageScore>],
    ) -> Result<()> {
        let anomaly = |s: &[ImageScore]| s.iter().map(|x| -x.score).collect::<Vec<f64>>();
        let Some((first, others)) = scored.split_first() else {
            return Err(crate::Error::Core(cadet_core::Error::InvalidParameter {
                name: "scored",
                reason: "no set".into(),
            }));
        };
        let p: Vec<f64> = first.iter().map(|s| s.p_value).collect();
        let others: Vec<Vec<f64>> = others.iter().map(|s| anomaly(s)).collect();
        self.push(name, &anomaly(first), Some((&p, calibration_size)), &others)
    }
}

impl fmt::Display for MethodTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.header)?;
        // As wide as the longest name, within reason.
        let width = self
            .rows
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(24, 60);
        write!(f, "{:<width$}", "detector")?;
        for s in &self.sets {
            write!(f, " {:>18}", truncate(s, 18))?;
        }
        writeln!(f, " {:>9}", format!("p≤{} in", self.alpha))?;
        for r in &self.rows {
            write!(f, "{:<width$}", truncate(&r.name, width))?;
            for a in &r.aurocs {
                write!(
                    f,
                    " {:>18}",
                    format!(
                        "{:.1} [{:.1}–{:.1}]",
                        100.0 * a.auroc,
                        100.0 * a.low,
                        100.0 * a.high
                    )
                )?;
            }
            match r.rejected {
                Some((rate, inside)) => writeln!(
                    f,
                    " {:>8.1}%{}",
                    100.0 * rate,
                    if inside { " " } else { "!" }
                )?,
                None => writeln!(f, " {:>9}", "–")?,
            }
        }
        Ok(())
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

/// Adds two baselines on an encoder's single-view features, each calibrated to p-values on X⁽²⁾'s features:
/// the label-free k-NN distance to the `train` features (Sun et al. 2022, `k` = 10, fewer when there are fewer
/// neighbours; `neighbours` names them in the row) and the Mahalanobis distance (Lee et al. 2018) with a mean per
/// distinct training label and a shared covariance (one label: a single Gaussian, no labels used). `sets` are the
/// anomaly sets' features in the order of the table's columns.
pub fn push_feature_baselines(
    table: &mut MethodTable,
    neighbours: &str,
    train: (ArrayView2<'_, f32>, &[u32]),
    x2: ArrayView2<'_, f32>,
    in_distribution: ArrayView2<'_, f32>,
    sets: &[ArrayView2<'_, f32>],
) -> Result<()> {
    let (features, labels) = train;
    // Dense class indices: a data set with held-out classes keeps their original labels.
    let mut present: Vec<u32> = labels.to_vec();
    present.sort_unstable();
    present.dedup();
    let dense: Vec<u32> = labels
        .iter()
        .map(|l| present.binary_search(l).expect("listed") as u32)
        .collect();
    let classes = present.len();
    // k = 10 as Sun et al., fewer when the neighbours are fewer.
    let knn = Knn::fit(features, 10.min(features.nrows()))?;
    let mahalanobis = Mahalanobis::fit(features, &dense, classes)?;
    fn outputs(f: ArrayView2<'_, f32>) -> ClassifierOutputs<'_> {
        ClassifierOutputs {
            logits: f,
            features: Some(f),
        }
    }
    type Scores<'s> = Box<dyn Fn(ArrayView2<'_, f32>) -> cadet_detect::Result<Vec<f64>> + 's>;
    let mahalanobis_name = if classes == 1 {
        "baseline: Mahalanobis (one Gaussian, no labels)"
    } else {
        "baseline: Mahalanobis (class-conditional)"
    };
    let knn_name = format!(
        "baseline: k-NN distance (k = {}, {neighbours})",
        10.min(features.nrows())
    );
    let detectors: [(&str, Scores<'_>); 2] = [
        (&knn_name, Box::new(|f| knn.anomaly_scores(outputs(f)))),
        (
            mahalanobis_name,
            Box::new(|f| mahalanobis.anomaly_scores(outputs(f))),
        ),
    ];
    for (name, scores) in detectors {
        let calibrator = Calibrator::new(scores(x2)?)?;
        let inside = scores(in_distribution)?;
        let others = sets
            .iter()
            .map(|f| scores(*f))
            .collect::<Result<Vec<_>, _>>()?;
        table.push(
            name,
            &inside,
            Some((&calibrator.p_values(&inside), calibrator.scores().len())),
            &others,
        )?;
    }
    Ok(())
}

/// Per-image scores of one set of images for the classifier-based adversarial-detection baselines, as
/// `cadet-attacks` computes them with the classifier the attacks target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassifierScores {
    /// ODIN's `S(x)` (`cadet_attacks::Odin`): high = in-distribution.
    pub odin: Vec<f64>,
    /// Hu et al.'s criterion 1 (`NoiseScores::l1_change`): high = anomalous.
    pub noise: Vec<f64>,
    /// Hu et al.'s criterion 2 (`BoundarySteps`): high = anomalous.
    pub steps: Vec<f64>,
}

impl ClassifierScores {
    /// The scores as an `(n, 3)` array, columns ODIN, noise, steps (what `reproduce_cifar --save-features`
    /// writes under `classifier/`).
    pub fn to_columns(&self) -> Result<ndarray::Array2<f64>> {
        let n = self.odin.len();
        if self.noise.len() != n || self.steps.len() != n {
            return Err(cadet_detect::Error::ShapeMismatch {
                what: "classifier scores (ODIN, noise, steps)",
                expected: vec![n, n, n],
                got: vec![n, self.noise.len(), self.steps.len()],
            }
            .into());
        }
        let mut a = ndarray::Array2::zeros((n, 3));
        for (i, mut row) in a.rows_mut().into_iter().enumerate() {
            row[0] = self.odin[i];
            row[1] = self.noise[i];
            row[2] = self.steps[i];
        }
        Ok(a)
    }

    /// The scores from an `(n, 3)` array written by [`to_columns`](Self::to_columns); refuses another width,
    /// non-finite values and values no score takes (ODIN's `S` is a softmax probability in `[0, 1]`; the noise
    /// change and the boundary steps are `≥ 0`).
    pub fn from_columns(a: ArrayView2<'_, f64>) -> Result<Self> {
        if a.ncols() != 3 {
            return Err(crate::Error::Core(cadet_core::Error::InvalidParameter {
                name: "classifier scores",
                reason: format!(
                    "expected one row per image and 3 columns (ODIN, noise, steps), got shape {:?}",
                    a.shape()
                ),
            }));
        }
        if let Some(i) = a
            .rows()
            .into_iter()
            .position(|r| r.iter().any(|v| !v.is_finite()))
        {
            return Err(crate::Error::Core(cadet_core::Error::InvalidParameter {
                name: "classifier scores",
                reason: format!("row {i} holds a non-finite value"),
            }));
        }
        let ranges = [
            ("ODIN (column 0)", 0.0, 1.0),
            ("noise change (column 1)", 0.0, f64::INFINITY),
            ("boundary steps (column 2)", 0.0, f64::INFINITY),
        ];
        for (j, (name, lo, hi)) in ranges.iter().enumerate() {
            if let Some(i) = a.column(j).iter().position(|v| !(lo..=hi).contains(&v)) {
                return Err(crate::Error::Core(cadet_core::Error::InvalidParameter {
                    name: "classifier scores",
                    reason: format!("row {i}: {name} is {:e}, outside [{lo}, {hi}]", a[[i, j]]),
                }));
            }
        }
        let column = |j: usize| a.column(j).to_vec();
        Ok(Self {
            odin: column(0),
            noise: column(1),
            steps: column(2),
        })
    }
}

/// Adds ODIN (row `"baseline: {odin_name}"`, e.g. `odin_name = "ODIN (T = 1000, ε = 0.0014)"`) and Hu et al.
/// (row `"baseline: Hu et al. (noise + boundary)"`), both self-calibrated on X⁽²⁾'s scores `x2`: ODIN's anomaly
/// score is `−S`, calibrated by a [`Calibrator`]; Hu et al.'s p-value is the Bonferroni combination of its two
/// criteria's conformal p-values ([`HuCalibration`](cadet_detect::baselines::HuCalibration)), and its anomaly
/// score (for the AUROC) is minus that p-value. `sets` are the anomaly sets' scores in the order of the table's
/// columns.
pub fn push_classifier_baselines(
    table: &mut MethodTable,
    odin_name: &str,
    x2: &ClassifierScores,
    in_distribution: &ClassifierScores,
    sets: &[ClassifierScores],
) -> Result<()> {
    let neg = |v: &[f64]| v.iter().map(|s| -s).collect::<Vec<f64>>();
    let odin = Calibrator::new(neg(&x2.odin))?;
    let inside = neg(&in_distribution.odin);
    let others: Vec<Vec<f64>> = sets.iter().map(|s| neg(&s.odin)).collect();
    table.push(
        format!("baseline: {odin_name}"),
        &inside,
        Some((&odin.p_values(&inside), x2.odin.len())),
        &others,
    )?;
    let hu = cadet_detect::baselines::HuCalibration::fit(x2.noise.clone(), x2.steps.clone())?;
    let p_inside = hu.p_values(&in_distribution.noise, &in_distribution.steps)?;
    let others = sets
        .iter()
        .map(|s| Ok(neg(&hu.p_values(&s.noise, &s.steps)?)))
        .collect::<Result<Vec<_>, cadet_detect::Error>>()?;
    table.push(
        "baseline: Hu et al. (noise + boundary)",
        &neg(&p_inside),
        Some((&p_inside, x2.noise.len())),
        &others,
    )?;
    Ok(())
}

/// Every method of [`compared_methods`]`(k)` that X⁽¹⁾ and the features' layout allow ([`select`]; the others
/// are named in the table's header) calibrated on the same X⁽¹⁾ / X⁽²⁾ features with `base`'s
/// settings and scored on `sets` (names and transform features, the in-distribution set first), with their
/// [`MethodTable`] (one column per other set, its name cut at the first `" ("`), ready for baselines to be added.
#[allow(clippy::too_many_arguments)]
pub fn compare_methods(
    base: &Cadet,
    k: usize,
    identity: Option<&EmbedderIdentity>,
    x1: ArrayView3<'_, f32>,
    x2: ArrayView3<'_, f32>,
    sets: &[(String, ArrayView3<'_, f32>)],
    header: impl Into<String>,
    alpha: f64,
) -> Result<(MethodTable, Vec<MethodScores>)> {
    let views: Vec<_> = sets.iter().map(|(_, f)| *f).collect();
    // Methods that average more reference images than X⁽¹⁾ holds, or need the un-augmented view the features
    // lack, are left out, and named in the header.
    let with_view = base.settings().layout() == ViewLayout::IdentityFirst;
    let selection = select(compared_methods(k), x1.dim().0, with_view);
    let mut header = header.into();
    for line in selection.left_out(x1.dim().0) {
        header.push('\n');
        header.push_str(&line);
    }
    let methods = selection.usable;
    let results = score_methods(base, &methods, identity, x1, x2, &views)?;
    let columns = sets
        .iter()
        .skip(1)
        .map(|(n, _)| n.split(" (").next().unwrap_or(n).to_string())
        .collect();
    let mut table = MethodTable::new(header, columns, alpha);
    for r in &results {
        table.push_cadet(&r.name, r.calibration.x2_size(), &r.scores)?;
    }
    Ok((table, results))
}

/// The files [`cadet_pictures`] writes into its folder, for programs that check their outputs against their
/// inputs before any work.
pub const CADET_PICTURES: [&str; 4] = ["roc.png", "scores.png", "m_in.png", "m_out.png"];

/// Writes `roc.png` (each set against the first), `scores.png`, `m_in.png` and `m_out.png` into `dir`
/// (created if missing; [`CADET_PICTURES`]); returns their paths.
pub fn cadet_pictures(dir: &Path, sets: &ScoredSets) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| PlotError {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let anomaly = |s: &[ImageScore]| s.iter().map(|x| -x.score).collect::<Vec<f64>>();
    let metric_error = |e: cadet_core::Error| PlotError {
        path: dir.join("roc.png"),
        reason: e.to_string(),
    };
    let mut curves = Vec::new();
    if let Some(((_, first), others)) = sets.split_first() {
        let inside = anomaly(first);
        for (name, scores) in others {
            let outside = anomaly(scores);
            curves.push((
                name.clone(),
                metrics::roc_curve(&inside, &outside).map_err(metric_error)?,
                metrics::auroc(&inside, &outside).map_err(metric_error)?,
            ));
        }
    }
    let roc = dir.join("roc.png");
    plots::roc_curves(
        &roc,
        "CADet: ROC against the in-distribution test set",
        &curves,
    )?;
    let series = |f: fn(&ImageScore) -> f64| {
        sets.iter()
            .map(|(n, s)| (n.clone(), s.iter().map(f).collect()))
            .collect::<Vec<_>>()
    };
    let pictures = [
        (
            "scores.png",
            "CADet score (the calibration's method; low = anomalous)",
            "score",
            series(|s| s.score),
        ),
        (
            "m_in.png",
            "m_in (similarity among an image's own transforms)",
            "m_in",
            series(|s| s.m_in),
        ),
        (
            "m_out.png",
            "m_out (similarity to X(1)'s transforms)",
            "m_out",
            series(|s| s.m_out),
        ),
    ];
    let mut written = vec![roc];
    for (file, title, label, data) in pictures {
        let path = dir.join(file);
        plots::histograms(&path, title, label, &data, 30)?;
        written.push(path);
    }
    Ok(written)
}

/// Saves a PNG grid of the first `k` images: clean (top row), perturbation ×10 around grey (middle), adversarial
/// (bottom).
pub fn attack_grid(
    clean: ArrayView4<'_, f32>,
    adversarial: ArrayView4<'_, f32>,
    k: usize,
    path: &Path,
) -> Result<()> {
    let k = k.min(clean.dim().0).min(adversarial.dim().0);
    let (clean, adversarial) = (
        clean.slice(s![..k, .., .., ..]),
        adversarial.slice(s![..k, .., .., ..]),
    );
    let perturbation = ((&adversarial - &clean) * 10.0 + 0.5).mapv(|v| v.clamp(0.0, 1.0));
    let grid = concatenate(Axis(0), &[clean, perturbation.view(), adversarial]).map_err(|e| {
        cadet_data::Error::Core(cadet_core::Error::InvalidParameter {
            name: "attack_grid",
            reason: e.to_string(),
        })
    })?;
    Ok(cadet_data::save_grid(grid.view(), k.max(1), path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifier_scores_round_trip_through_columns() {
        let scores = ClassifierScores {
            odin: vec![0.5, 0.25],
            noise: vec![1.0, 2.0],
            steps: vec![3.0, 4.0],
        };
        let a = scores.to_columns().expect("same lengths");
        assert_eq!(a, ndarray::array![[0.5, 1.0, 3.0], [0.25, 2.0, 4.0]]);
        assert_eq!(
            ClassifierScores::from_columns(a.view()).expect("valid"),
            scores
        );
        // Another width, a non-finite value, unequal lengths: refused.
        assert!(ClassifierScores::from_columns(a.slice(ndarray::s![.., ..2])).is_err());
        let mut bad = a.clone();
        bad[[1, 2]] = f64::NAN;
        assert!(ClassifierScores::from_columns(bad.view()).is_err());
        // Values no score takes: a negative step count, an ODIN probability above 1.
        let mut bad = a.clone();
        bad[[0, 2]] = -1e9;
        assert!(ClassifierScores::from_columns(bad.view()).is_err());
        let mut bad = a.clone();
        bad[[1, 0]] = 1e308;
        assert!(ClassifierScores::from_columns(bad.view()).is_err());
        let short = ClassifierScores {
            steps: vec![3.0],
            ..scores
        };
        assert!(short.to_columns().is_err());
    }
    use cadet_detect::comparison::{headline_method, headline_scores};
    use cadet_detect::{DetectionMethod, Statistic};
    use ndarray::Array3;

    /// Deterministic transform features: `n` images, 4 transforms, 6 dimensions, spread by `salt`.
    fn features(n: usize, salt: usize) -> Array3<f32> {
        Array3::from_shape_fn((n, 4, 6), |(i, t, k)| {
            let h = (i * 7919 + t * 104_729 + k * 1_299_709 + salt * 15_485_863) % 10_007;
            // Spread enough that every statistic, the un-augmented view's among them, varies over X2.
            0.1 + 2.0 * (k == i % 6) as u8 as f32 + h as f32 / 10_007.0
        })
    }

    #[test]
    fn classifier_baselines_add_two_calibrated_rows() {
        // In-distribution: ODIN's S around 0.5, noise change small, few steps; the anomaly set: lower S, more
        // noise change, more steps.
        let set = |n: usize, shift: f64, salt: usize| {
            let u = |i: usize, k: usize| {
                ((i * 7919 + k * 104_729 + salt * 15_485_863) % 1000) as f64 / 1000.0
            };
            ClassifierScores {
                odin: (0..n).map(|i| 0.5 + 0.1 * u(i, 0) - shift).collect(),
                noise: (0..n).map(|i| u(i, 1) + shift).collect(),
                steps: (0..n)
                    .map(|i| (1.0 + 4.0 * u(i, 2) + 10.0 * shift).floor())
                    .collect(),
            }
        };
        let mut table = MethodTable::new("header", vec!["far".into()], 0.05);
        push_classifier_baselines(
            &mut table,
            "ODIN (T = 1000, ε = 0.0014)",
            &set(200, 0.0, 1),
            &set(100, 0.0, 2),
            &[set(50, 1.0, 3)],
        )
        .unwrap();
        let names: Vec<&str> = table.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "baseline: ODIN (T = 1000, ε = 0.0014)",
                "baseline: Hu et al. (noise + boundary)"
            ]
        );
        for row in &table.rows {
            assert!(row.aurocs[0].auroc > 0.99, "{}: {:?}", row.name, row.aurocs);
            let (rate, inside) = row.rejected.unwrap();
            assert!(rate <= 0.15 && inside, "{}: {rate}", row.name);
        }
        // Mismatched lengths are errors, not panics.
        let mut bad = set(10, 0.0, 4);
        bad.steps.pop();
        assert!(
            push_classifier_baselines(&mut table, "ODIN", &set(20, 0.0, 1), &bad, &[]).is_err()
        );
    }

    #[test]
    fn reference_images_needed_is_the_largest_k() {
        assert_eq!(DetectionMethod::paper().reference_images_needed(), 0);
        assert_eq!(headline_method().1.reference_images_needed(), 50);
        assert_eq!(
            DetectionMethod::min_p_local_m_in_cosine(10, 3).reference_images_needed(),
            10
        );
        assert_eq!(
            DetectionMethod::single(Statistic::LocalMOut { k: 7 }).reference_images_needed(),
            7
        );
    }

    #[test]
    fn methods_too_large_for_the_reference_are_left_out_and_named() {
        // Features of 4 views: the un-augmented view and 3 transforms, or 4 transforms.
        let base = Cadet::paper(4)
            .n_trs(3)
            .identity_view(true)
            .check()
            .unwrap();
        let (x2, test, other) = (features(40, 1), features(12, 2), features(12, 3));
        let compare = |base: &Cadet, x1_len: usize| {
            let x1 = features(x1_len, 0);
            compare_methods(
                base,
                1,
                None,
                x1.view(),
                x2.view(),
                &[("test".into(), test.view()), ("other".into(), other.view())],
                "header",
                0.05,
            )
            .unwrap()
        };
        // |X1| = 20: the headline (local m_in over 50 images) cannot be computed; the rest can.
        let (table, results) = compare(&base, 20);
        assert!(headline_scores(&results).is_none());
        let too_large = compared_methods(1)
            .iter()
            .filter(|(_, m)| m.reference_images_needed() > 20)
            .count();
        assert_eq!(too_large, 2);
        assert_eq!(results.len(), compared_methods(1).len() - too_large);
        assert!(
            table.header.contains("Left out, |X1| = 20"),
            "{}",
            table.header
        );
        assert!(
            table.header.contains(&headline_method().0),
            "{}",
            table.header
        );
        // |X1| = 60: every method, the headline among them, and no note.
        let (table, results) = compare(&base, 60);
        assert!(headline_scores(&results).is_some());
        assert_eq!(results.len(), compared_methods(1).len());
        assert!(!table.header.contains("Left out"), "{}", table.header);
        // The same features read as 4 transforms, no un-augmented view: the methods that need it are left out
        // and named; the others are scored.
        let transforms_only = Cadet::paper(4).n_trs(4).check().unwrap();
        let (table, results) = compare(&transforms_only, 60);
        let needing: Vec<_> = compared_methods(1)
            .into_iter()
            .filter(|(_, m)| m.needs_identity_view())
            .collect();
        assert_eq!(needing.len(), 3);
        assert_eq!(results.len(), compared_methods(1).len() - needing.len());
        assert!(headline_scores(&results).is_none());
        assert!(
            table.header.contains("no un-augmented view"),
            "{}",
            table.header
        );
        for (name, _) in &needing {
            assert!(table.header.contains(name.as_str()), "{}", table.header);
        }
    }
}
