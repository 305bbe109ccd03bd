//! Calibration of anomaly scores to p-values, shared by CADet and the baselines.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Sorted anomaly scores (higher = more anomalous) of held-out in-distribution samples.
///
/// `p(a) = (1 + #{calibration scores ≥ a}) / (n + 1)`, the conformal p-value: if the test sample and the
/// calibration samples are exchangeable (the null: in-distribution), `P(p ≤ α) ≤ α`, whatever the ties. The
/// paper writes the count with a strict inequality (`#{s' < s}` on CADet's similarity `s = −a`), which is the
/// same for continuous scores and anti-conservative for discrete ones (a saturated softmax, a number of attack
/// steps): [`p_value_ties_ignored`](Self::p_value_ties_ignored) keeps that form for comparison.
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
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "scores",
                reason: "not sorted".into(),
            }));
        }
        Ok(Self { sorted })
    }

    /// The sorted calibration scores.
    pub fn scores(&self) -> &[f64] {
        &self.sorted
    }

    /// The p-value of anomaly score `a`, `(1 + #{calibration scores ≥ a}) / (n + 1)`, in `[1/(n+1), 1]`: ties
    /// count against the test sample, so the p-value is valid whatever the ties.
    pub fn p_value(&self, a: f64) -> f64 {
        let at_or_above = self.sorted.len() - self.sorted.partition_point(|&s| s < a);
        (1 + at_or_above) as f64 / (self.sorted.len() + 1) as f64
    }

    /// p-values of many scores.
    pub fn p_values(&self, scores: &[f64]) -> Vec<f64> {
        scores.iter().map(|&a| self.p_value(a)).collect()
    }

    /// The paper's literal form, ties not counted: `(1 + #{calibration scores > a}) / (n + 1)`. Equal to
    /// [`p_value`](Self::p_value) when no calibration score equals `a`; **not valid** for discrete scores: a test
    /// score tied with the largest calibration scores gets `1/(n+1)` far more often than `1/(n+1)` of the time.
    /// Kept to show that (tests) and to reproduce results computed with it.
    pub fn p_value_ties_ignored(&self, a: f64) -> f64 {
        let above = self.sorted.len() - self.sorted.partition_point(|&s| s <= a);
        (1 + above) as f64 / (self.sorted.len() + 1) as f64
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
        // A tie counts: at or above 3 is {3, 4}.
        assert_eq!(c.p_value(3.0), 0.6);
        assert!(Calibrator::new(vec![]).is_err());
        assert!(Calibrator::new(vec![f64::NAN]).is_err());
        assert!(Calibrator::from_sorted(vec![2.0, 1.0]).is_err());
        // Ties ignored (the paper's literal form): above 3 is only {4}; without ties the two rules agree.
        assert_eq!(c.p_value_ties_ignored(3.0), 0.4);
        assert_eq!(c.p_value_ties_ignored(2.5), c.p_value(2.5));
        assert_eq!(c.p_value_ties_ignored(10.0), 0.2);
        assert_eq!(c.p_value(1.0), 1.0);
    }

    /// Exchangeable discrete scores (4 values, many ties): counting ties keeps `P(p ≤ α) ≤ α`; the paper's
    /// strict count rejects every test score tied with the top calibration scores (here a quarter of them).
    #[test]
    fn discrete_scores_are_valid_with_ties_counted() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (n, trials, alpha) = (19, 20_000, 0.1);
        let (mut counted, mut ignored) = (0usize, 0usize);
        for _ in 0..trials {
            let scores: Vec<f64> = (0..n)
                .map(|_| f64::from(rng.random_range(0..4u8)))
                .collect();
            let a = f64::from(rng.random_range(0..4u8));
            let cal = Calibrator::new(scores.clone()).unwrap();
            // Brute force: the definitions, counted directly.
            let at_or_above = scores.iter().filter(|&&s| s >= a).count();
            assert_eq!(cal.p_value(a), (1 + at_or_above) as f64 / (n + 1) as f64);
            counted += usize::from(cal.p_value(a) <= alpha);
            ignored += usize::from(cal.p_value_ties_ignored(a) <= alpha);
        }
        let bound = trials as f64 * alpha + 3.0 * (trials as f64 * alpha * (1.0 - alpha)).sqrt();
        assert!((counted as f64) <= bound, "{counted} of {trials} rejected");
        assert!(ignored as f64 > 2.0 * bound, "{ignored} of {trials}");
    }
}
