//! Evaluation against named sets: the metrics of detection tables, and the paper's Table 5 statistics.

use cadet_core::metrics;
use serde::{Deserialize, Serialize};

use crate::cadet::ImageScore;
use crate::{Error, Result};

/// Scores of one named set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedScores {
    /// Name of the set, e.g. `"cifar10-test"`, `"PGD"`.
    pub name: String,
    /// Anomaly scores (higher = more anomalous).
    pub anomaly: Vec<f64>,
    /// p-values, when the detector is calibrated.
    pub p_values: Option<Vec<f64>>,
}

impl NamedScores {
    /// From CADet's image scores (anomaly = −score).
    pub fn from_cadet(name: impl Into<String>, scores: &[ImageScore]) -> Self {
        Self {
            name: name.into(),
            anomaly: scores.iter().map(|s| -s.score).collect(),
            p_values: Some(scores.iter().map(|s| s.p_value).collect()),
        }
    }
}

/// One row of a detection table: a set against the in-distribution test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetReport {
    /// The set.
    pub name: String,
    /// Its size.
    pub n: usize,
    /// AUROC of telling it from the in-distribution test set (0.5 for the in-distribution set itself).
    pub auroc: f64,
    /// Share of in-distribution test samples flagged when 95% of this set is caught.
    pub fpr_at_95_tpr: f64,
    /// AUPR with in-distribution samples as positives.
    pub aupr_in: f64,
    /// AUPR with this set's samples as positives.
    pub aupr_out: f64,
    /// Share of this set with `p ≤ α`: the false-positive rate for the in-distribution set, the detection rate
    /// for the others.
    pub rejected_at_alpha: Option<f64>,
}

/// The table: the in-distribution test set first (its `rejected_at_alpha` is the FPR reached at `α`), then each
/// other set against it.
pub fn evaluate(
    in_distribution: &NamedScores,
    others: &[NamedScores],
    alpha: f64,
) -> Result<Vec<SetReport>> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::InvalidParameter {
            name: "alpha",
            reason: format!("must lie in (0, 1), got {alpha}"),
        });
    }
    let rejected = |s: &NamedScores| {
        s.p_values
            .as_ref()
            .map(|p| p.iter().filter(|&&v| v <= alpha).count() as f64 / p.len().max(1) as f64)
    };
    let row = |s: &NamedScores| -> Result<SetReport> {
        let (i, o) = (&in_distribution.anomaly, &s.anomaly);
        Ok(SetReport {
            name: s.name.clone(),
            n: o.len(),
            auroc: metrics::auroc(i, o)?,
            fpr_at_95_tpr: metrics::fpr_at_tpr(i, o, 0.95)?,
            aupr_in: metrics::aupr_in(i, o)?,
            aupr_out: metrics::aupr_out(i, o)?,
            rejected_at_alpha: rejected(s),
        })
    };
    std::iter::once(in_distribution)
        .chain(others)
        .map(row)
        .collect()
}

/// Mean and variance of `m_in`, `m_out` and `γ·m_out` over a set (the paper's Table 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsRow {
    /// The set.
    pub name: String,
    /// Mean of `m_in`.
    pub m_in_mean: f64,
    /// Variance of `m_in`.
    pub m_in_var: f64,
    /// Mean of `m_out`.
    pub m_out_mean: f64,
    /// Variance of `m_out`.
    pub m_out_var: f64,
    /// Mean of `γ·m_out`.
    pub gamma_m_out_mean: f64,
    /// Variance of `γ·m_out`.
    pub gamma_m_out_var: f64,
}

/// Table 5 statistics of a set's scores under calibration constant `gamma`.
pub fn stats_row(name: impl Into<String>, scores: &[ImageScore], gamma: f64) -> Result<StatsRow> {
    if scores.len() < 2 {
        return Err(Error::InvalidParameter {
            name: "scores",
            reason: "at least two scores for a variance".into(),
        });
    }
    let mean_var = |f: &dyn Fn(&ImageScore) -> f64| {
        let n = scores.len() as f64;
        let mean = scores.iter().map(f).sum::<f64>() / n;
        (
            mean,
            scores.iter().map(|s| (f(s) - mean).powi(2)).sum::<f64>() / (n - 1.0),
        )
    };
    let (m_in_mean, m_in_var) = mean_var(&|s| s.m_in);
    let (m_out_mean, m_out_var) = mean_var(&|s| s.m_out);
    Ok(StatsRow {
        name: name.into(),
        m_in_mean,
        m_in_var,
        m_out_mean,
        m_out_var,
        gamma_m_out_mean: gamma * m_out_mean,
        gamma_m_out_var: gamma * gamma * m_out_var,
    })
}
