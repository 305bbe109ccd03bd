//! What the examples print and draw after scoring sets with CADet: the detection table (AUROC, FPR@95TPR,
//! AUPR, share with `p ≤ α`), the paper's Table 5 (`m_in`, `m_out`, `γ·m_out`), and ROC curves and histograms
//! of the score and of its two parts.

use std::fmt;
use std::path::{Path, PathBuf};

use cadet_core::metrics;
use cadet_detect::evaluation::{
    NamedScores, PartAurocs, SetReport, StatsRow, evaluate, part_aurocs, stats_row,
};
use cadet_detect::{Calibration, ImageScore};
use ndarray::{ArrayView4, Axis, concatenate, s};

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
    pub fn new(
        calibration: &Calibration,
        sets: &ScoredSets,
        alpha: f64,
    ) -> Result<Self, cadet_detect::Error> {
        let named: Vec<NamedScores> = sets
            .iter()
            .map(|(n, s)| NamedScores::from_cadet(n.clone(), s))
            .collect();
        let Some((first, others)) = named.split_first() else {
            return Err(cadet_detect::Error::InvalidParameter {
                name: "sets",
                reason: "no set to report".into(),
            });
        };
        let rows = evaluate(first, others, alpha)?;
        let stats = sets
            .iter()
            .map(|(n, s)| stats_row(n.clone(), s, calibration.gamma))
            .collect::<Result<_, _>>()?;
        let parts = sets[1..]
            .iter()
            .map(|(n, s)| part_aurocs(n.clone(), &sets[0].1, s))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            header: format!(
                "CADet, {} transforms, |X1| = {}, |X2| = {}, γ = {:.3}, α = {alpha}",
                calibration.params.transforms(),
                calibration.x1_size,
                calibration.scores.len(),
                calibration.gamma,
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
            writeln!(
                f,
                "{:<34} {:>8.4} ± {:<8.4} {:>8.4} ± {:<8.4} {:>8.4} ± {:<8.4} {part}",
                s.name,
                s.m_in_mean,
                s.m_in_var.sqrt(),
                s.m_out_mean,
                s.m_out_var.sqrt(),
                s.gamma_m_out_mean,
                s.gamma_m_out_var.sqrt()
            )?;
        }
        Ok(())
    }
}

/// Writes `roc.png` (each set against the first), `scores.png`, `m_in.png` and `m_out.png` into `dir`
/// (created if missing); returns their paths.
pub fn cadet_pictures(dir: &Path, sets: &ScoredSets) -> Result<Vec<PathBuf>, PlotError> {
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
            "CADet score m_in + γ·m_out",
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
) -> Result<(), cadet_data::Error> {
    let k = k.min(clean.dim().0).min(adversarial.dim().0);
    let (clean, adversarial) = (
        clean.slice(s![..k, .., .., ..]),
        adversarial.slice(s![..k, .., .., ..]),
    );
    let perturbation = ((&adversarial - &clean) * 10.0 + 0.5).mapv(|v| v.clamp(0.0, 1.0));
    let grid = concatenate(Axis(0), &[clean, perturbation.view(), adversarial]).map_err(|e| {
        cadet_data::Error::InvalidParameter {
            name: "attack_grid",
            reason: e.to_string(),
        }
    })?;
    cadet_data::save_grid(grid.view(), k.max(1), path)
}
