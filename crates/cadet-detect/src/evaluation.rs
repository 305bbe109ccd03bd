//! Evaluation against named sets: the metrics of detection tables, and the paper's Table 5 statistics.

use cadet_core::metrics;
use serde::{Deserialize, Serialize};

use crate::cadet::ImageScore;
use crate::validity::RejectionLaw;
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
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "alpha",
            reason: format!("must lie in (0, 1), got {alpha}"),
        }));
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

/// One detector's row of a comparison table: its AUROC against the in-distribution test set on each anomaly set,
/// with a 95% interval, and for a calibrated detector the in-distribution share with `p ≤ α`.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodRow {
    /// The detector, e.g. `"m_in + γ·m_out (paper)"`, `"k-NN (k = 10)"`.
    pub name: String,
    /// Per anomaly set, in order.
    pub aurocs: Vec<metrics::AurocInterval>,
    /// In-distribution rejection at `α`: the rate, and whether the count lies in the exact 99% interval of the
    /// law of a valid conformal p-value's false-positive count, `BetaBinomial(m, k, n + 1 − k)` for `m` test
    /// and `n` calibration images, `k = ⌊α(n + 1)⌋` ([`RejectionLaw`]): it
    /// lands there 99% of the time over draws of both sets.
    pub rejected: Option<(f64, bool)>,
}

/// A [`MethodRow`] from anomaly scores (higher = more anomalous) of the in-distribution test set and of each
/// anomaly set, and, when the detector is calibrated, the in-distribution p-values with the number of
/// calibration images they were ranked against (`|X⁽²⁾|`).
pub fn method_row(
    name: impl Into<String>,
    in_distribution: &[f64],
    in_p_values: Option<(&[f64], usize)>,
    sets: &[&[f64]],
    alpha: f64,
) -> Result<MethodRow> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "alpha",
            reason: format!("must lie in (0, 1), got {alpha}"),
        }));
    }
    let aurocs = sets
        .iter()
        .map(|o| metrics::auroc_interval(in_distribution, o, 1.959964))
        .collect::<Result<_, _>>()?;
    let rejected = match in_p_values {
        Some((p, calibration_size)) if !p.is_empty() => {
            let count = p.iter().filter(|&&v| v <= alpha).count();
            let (lo, hi) =
                RejectionLaw::conformal(calibration_size, p.len(), alpha)?.interval(0.99);
            Some((count as f64 / p.len() as f64, (lo..=hi).contains(&count)))
        }
        _ => None,
    };
    Ok(MethodRow {
        name: name.into(),
        aurocs,
        rejected,
    })
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

/// How well each of CADet's two statistics alone tells a set from the in-distribution test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartAurocs {
    /// The set.
    pub name: String,
    /// AUROC with `m_in` alone as the score (low = anomalous, as for the CADet score).
    pub m_in: f64,
    /// AUROC with `m_out` alone as the score. Below 0.5: the set looks *more* similar to X⁽¹⁾ than
    /// in-distribution images do, and `γ·m_out` works against `m_in`.
    pub m_out: f64,
}

/// [`PartAurocs`] of `set` against `in_distribution` (both scored under the same calibration).
pub fn part_aurocs(
    name: impl Into<String>,
    in_distribution: &[ImageScore],
    set: &[ImageScore],
) -> Result<PartAurocs> {
    let anomaly = |scores: &[ImageScore], f: fn(&ImageScore) -> f64| -> Vec<f64> {
        scores.iter().map(|s| -f(s)).collect()
    };
    let auroc =
        |f: fn(&ImageScore) -> f64| metrics::auroc(&anomaly(in_distribution, f), &anomaly(set, f));
    Ok(PartAurocs {
        name: name.into(),
        m_in: auroc(|s| s.m_in)?,
        m_out: auroc(|s| s.m_out)?,
    })
}

/// Table 5 statistics of a set's scores under calibration constant `gamma`.
pub fn stats_row(name: impl Into<String>, scores: &[ImageScore], gamma: f64) -> Result<StatsRow> {
    if scores.len() < 2 {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "scores",
            reason: "at least two scores for a variance".into(),
        }));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(m: &[(f64, f64)]) -> Vec<ImageScore> {
        m.iter()
            .map(|&(m_in, m_out)| ImageScore {
                m_in,
                m_out,
                statistics: vec![m_in, m_out],
                score: m_in + m_out,
                p_value: 0.5,
            })
            .collect()
    }

    /// By hand: `m_in` 0.9, 0.8 in distribution against 0.7, 0.85: three of the four pairs put the anomaly
    /// lower, so 0.75. `m_out` 0.4, 0.5 against 0.45, 0.6: one pair of four lower, so 0.25 (inverted).
    #[test]
    fn part_aurocs_by_hand() {
        let i = scores(&[(0.9, 0.4), (0.8, 0.5)]);
        let o = scores(&[(0.7, 0.45), (0.85, 0.6)]);
        let p = part_aurocs("set", &i, &o).unwrap();
        assert_eq!(p.name, "set");
        assert!((p.m_in - 0.75).abs() < 1e-12, "{p:?}");
        assert!((p.m_out - 0.25).abs() < 1e-12, "{p:?}");
        // A set against itself: chance.
        let same = part_aurocs("same", &i, &i).unwrap();
        assert!((same.m_in - 0.5).abs() < 1e-12 && (same.m_out - 0.5).abs() < 1e-12);
        assert!(part_aurocs("empty", &i, &[]).is_err());
    }

    /// Means and sample variances by hand: m_in 0.9, 0.8, 0.7 → 0.8 and 0.01; m_out 0.2, 0.4, 0.6 → 0.4 and
    /// 0.04; γ = 2 doubles the mean and quadruples the variance.
    #[test]
    fn stats_row_by_hand() {
        let r = stats_row("x", &scores(&[(0.9, 0.2), (0.8, 0.4), (0.7, 0.6)]), 2.0).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(r.m_in_mean, 0.8) && close(r.m_in_var, 0.01), "{r:?}");
        assert!(
            close(r.m_out_mean, 0.4) && close(r.m_out_var, 0.04),
            "{r:?}"
        );
        assert!(
            close(r.gamma_m_out_mean, 0.8) && close(r.gamma_m_out_var, 0.16),
            "{r:?}"
        );
        assert!(stats_row("one", &scores(&[(0.9, 0.2)]), 1.0).is_err());
    }

    /// The `!` flag's interval is the law of a valid detector's count over draws of the test *and* the
    /// calibration set. With |X2| = 200 and 200 test images at α = 5%, 20 rejections (10%) happen to an exactly
    /// valid detector about 2% of the time (X2 drawn "easy"): inside the 99% interval, where the Binomial(200,
    /// 0.05) interval, 3–19, flagged it (about one valid row in 25 flagged instead of one in 100). 35 is off.
    #[test]
    fn rejection_flag_includes_the_calibration_sets_randomness() {
        let flag = |count: usize| {
            let p: Vec<f64> = (0..200)
                .map(|i| if i < count { 0.01 } else { 0.5 })
                .collect();
            method_row("m", &[0.0, 1.0], Some((&p, 200)), &[], 0.05)
                .unwrap()
                .rejected
                .unwrap()
        };
        assert_eq!(flag(20), (0.1, true));
        assert!(flag(10).1);
        assert!(!flag(35).1);
        assert!(!flag(0).1);
        // The law's interval is wider than the binomial one on both sides.
        let (lo, hi) = crate::validity::RejectionLaw::conformal(200, 200, 0.05)
            .unwrap()
            .interval(0.99);
        let (blo, bhi) = metrics::binomial_interval(200, 0.05, 0.99).unwrap();
        assert!(lo <= blo && hi > bhi, "law {lo}–{hi}, binomial {blo}–{bhi}");
    }
}
