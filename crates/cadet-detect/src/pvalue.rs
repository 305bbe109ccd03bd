//! Calibration of anomaly scores to p-values, shared by CADet and the baselines.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Sorted anomaly scores (higher = more anomalous) of held-out in-distribution samples.
///
/// `p(a) = (1 + #{calibration scores > a}) / (n + 1)`: PAPER.md §3 with CADet's similarity `s = −a`
/// (`#{s' < s}`). If the test sample and the calibration samples are exchangeable (the null: in-distribution),
/// `P(p ≤ α) ≤ α`. Scores tied with the test score do not count, as in the paper; with continuous scores ties do
/// not occur.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibrator {
    sorted: Vec<f64>,
}

impl Calibrator {
    /// From the anomaly scores of held-out in-distribution samples (at least one, all finite).
    pub fn new(mut scores: Vec<f64>) -> Result<Self> {
        cadet_core::validate::finite_slice("calibration scores", &scores)?;
        scores.sort_by(f64::total_cmp);
        Ok(Self { sorted: scores })
    }

    /// Rebuilds from scores already sorted (e.g. read back from a file), checking the order.
    pub fn from_sorted(sorted: Vec<f64>) -> Result<Self> {
        cadet_core::validate::finite_slice("calibration scores", &sorted)?;
        if sorted.windows(2).any(|w| w[0] > w[1]) {
            return Err(Error::InvalidParameter {
                name: "scores",
                reason: "not sorted".into(),
            });
        }
        Ok(Self { sorted })
    }

    /// The sorted calibration scores.
    pub fn scores(&self) -> &[f64] {
        &self.sorted
    }

    /// The p-value of anomaly score `a`, in `[1/(n+1), 1]`.
    pub fn p_value(&self, a: f64) -> f64 {
        let above = self.sorted.len() - self.sorted.partition_point(|&s| s <= a);
        (1 + above) as f64 / (self.sorted.len() + 1) as f64
    }

    /// p-values of many scores.
    pub fn p_values(&self, scores: &[f64]) -> Vec<f64> {
        scores.iter().map(|&a| self.p_value(a)).collect()
    }

    /// The p-value of anomaly score `a` with ties counted against it: `(1 + #{calibration scores ≥ a}) / (n + 1)`,
    /// in `[1/(n+1), 1]`. This is the standard conformal p-value, valid under exchangeability whatever the ties
    /// (`P(p ≤ α) ≤ α`), whereas [`p_value`](Self::p_value) is valid only for continuous scores: with discrete
    /// scores (a number of attack steps, say) a test score tied with the largest calibration scores would get
    /// `1/(n+1)` far more often than `1/(n+1)` of the time. Equal to [`p_value`](Self::p_value) when no calibration
    /// score equals `a`.
    pub fn p_value_ties_counted(&self, a: f64) -> f64 {
        let at_or_above = self.sorted.len() - self.sorted.partition_point(|&s| s < a);
        (1 + at_or_above) as f64 / (self.sorted.len() + 1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_by_hand() {
        let c = Calibrator::new(vec![3.0, 1.0, 2.0, 4.0]).unwrap();
        // Above 2.5: {3, 4} → (1 + 2) / 5.
        assert_eq!(c.p_value(2.5), 0.6);
        assert_eq!(c.p_value(10.0), 0.2);
        assert_eq!(c.p_value(-1.0), 1.0);
        // A tie does not count: above 3 is only {4}.
        assert_eq!(c.p_value(3.0), 0.4);
        assert!(Calibrator::new(vec![]).is_err());
        assert!(Calibrator::new(vec![f64::NAN]).is_err());
        assert!(Calibrator::from_sorted(vec![2.0, 1.0]).is_err());
        // Ties counted: at or above 3 is {3, 4}; without ties the two rules agree.
        assert_eq!(c.p_value_ties_counted(3.0), 0.6);
        assert_eq!(c.p_value_ties_counted(2.5), c.p_value(2.5));
        assert_eq!(c.p_value_ties_counted(10.0), 0.2);
        assert_eq!(c.p_value_ties_counted(1.0), 1.0);
    }
}
