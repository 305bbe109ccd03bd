//! Decisions from p-values: one image at level `α`, or many images at once with a multiple-testing correction.
//!
//! Sign convention, everywhere in this crate's decisions: a **small p-value is anomalous**, and an image is
//! flagged when its p-value is at most the threshold (`p ≤ α` for one image). Scores keep their own conventions
//! ([`ImageScore::score`](crate::ImageScore): low = anomalous; [`Detector`](crate::Detector) anomaly scores: high =
//! anomalous); decide on p-values and the direction never matters.
//!
//! Testing many images at `α` each flags about `α` of the in-distribution ones (that is the guarantee). To bound
//! the chance of *any* false flag use [`Correction::Bonferroni`] (family-wise error ≤ α, any dependence); to
//! bound the expected *share* of false flags among the flagged use [`Correction::BenjaminiHochberg`] (false
//! discovery rate ≤ α; valid for conformal p-values sharing one calibration set, which are positively
//! dependent: Bates et al. 2023, "Testing for outliers with conformal p-values").
//!
//! ```
//! use cadet_detect::decision::{Correction, decide};
//!
//! let p = [0.001, 0.2, 0.004, 0.9, 0.03];
//! let each = decide(&p, 0.05, Correction::None)?;
//! assert_eq!(each.rejected, 3);
//! let bh = decide(&p, 0.05, Correction::BenjaminiHochberg)?;
//! // Sorted 0.001, 0.004, 0.03, 0.2, 0.9 against k · 0.05 / 5 = 0.01, 0.02, 0.03, 0.04, 0.05: k = 3.
//! assert_eq!(bh.flags(), vec![true, false, true, false, true]);
//! # Ok::<(), cadet_detect::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::{Error, ImageScore, Result};

/// How a batch of p-values is turned into decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Each image at level `α` (about `α` of in-distribution images flagged).
    None,
    /// Each image at `α / m` (`m` images): the chance of any false flag is at most `α`, whatever the dependence.
    Bonferroni,
    /// Benjamini–Hochberg at `α`: the expected share of false flags among the flagged is at most `α`.
    BenjaminiHochberg,
}

/// One image's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The image's p-value (small = anomalous).
    pub p_value: f64,
    /// Whether the image is flagged: `p_value ≤ threshold` of its batch.
    pub is_anomaly: bool,
    /// The method's statistics for the image, in the order of the method's statistics (empty when decided
    /// from bare p-values).
    pub statistics: Vec<f64>,
}

/// The decisions for a batch of images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decisions {
    /// The level.
    pub alpha: f64,
    /// The correction applied.
    pub correction: Correction,
    /// The p-value threshold the correction gives: an image is flagged when `p ≤ threshold` (0 when
    /// Benjamini–Hochberg flags none).
    pub threshold: f64,
    /// How many images are flagged.
    pub rejected: usize,
    /// One verdict per image, in input order.
    pub verdicts: Vec<Verdict>,
}

impl Decisions {
    /// Whether each image is flagged, in input order.
    pub fn flags(&self) -> Vec<bool> {
        self.verdicts.iter().map(|v| v.is_anomaly).collect()
    }
}

/// The Benjamini–Hochberg threshold: the largest `p₍ₖ₎` (ascending) with `p₍ₖ₎ ≤ k·α/m`, or `None` when there
/// is none.
fn bh_threshold(p_values: &[f64], alpha: f64) -> Option<f64> {
    let mut sorted = p_values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let m = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .filter(|&(i, &p)| p <= (i + 1) as f64 * alpha / m)
        .map(|(_, &p)| p)
        .next_back()
}

fn check(p_values: &[f64], alpha: f64) -> Result<()> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "alpha",
            reason: format!("a level in (0, 1), got {alpha}"),
        }));
    }
    if let Some(i) = p_values
        .iter()
        .position(|p| !(p.is_finite() && *p >= 0.0 && *p <= 1.0))
    {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "p_values",
            reason: format!("p-value {i} is {}, not in [0, 1]", p_values[i]),
        }));
    }
    Ok(())
}

/// Decides each of `p_values` at level `alpha` with `correction` (see the module documentation).
pub fn decide(p_values: &[f64], alpha: f64, correction: Correction) -> Result<Decisions> {
    decide_with(p_values, alpha, correction, |_| Vec::new())
}

/// Decides scored images ([`Calibration::score`](crate::Calibration::score)'s output) at level `alpha`, each
/// verdict carrying the image's statistics.
pub fn decide_scores(
    scores: &[ImageScore],
    alpha: f64,
    correction: Correction,
) -> Result<Decisions> {
    let p: Vec<f64> = scores.iter().map(|s| s.p_value).collect();
    decide_with(&p, alpha, correction, |i| scores[i].statistics.clone())
}

fn decide_with(
    p_values: &[f64],
    alpha: f64,
    correction: Correction,
    statistics: impl Fn(usize) -> Vec<f64>,
) -> Result<Decisions> {
    check(p_values, alpha)?;
    let threshold = match correction {
        Correction::None => Some(alpha),
        Correction::Bonferroni => Some(alpha / p_values.len().max(1) as f64),
        Correction::BenjaminiHochberg => bh_threshold(p_values, alpha),
    };
    let verdicts: Vec<Verdict> = p_values
        .iter()
        .enumerate()
        .map(|(i, &p)| Verdict {
            p_value: p,
            is_anomaly: threshold.is_some_and(|t| p <= t),
            statistics: statistics(i),
        })
        .collect();
    Ok(Decisions {
        alpha,
        correction,
        threshold: threshold.unwrap_or(0.0),
        rejected: verdicts.iter().filter(|v| v.is_anomaly).count(),
        verdicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Benjamini–Hochberg by its definition: reject the `k` smallest, `k` the largest with `p₍ₖ₎ ≤ kα/m`.
    fn bh_brute(p: &[f64], alpha: f64) -> Vec<bool> {
        let m = p.len();
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
        let k = (1..=m)
            .rev()
            .find(|&k| p[order[k - 1]] <= k as f64 * alpha / m as f64)
            .unwrap_or(0);
        let mut out = vec![false; m];
        for &i in &order[..k] {
            out[i] = true;
        }
        out
    }

    #[test]
    fn bh_matches_its_definition_and_the_hand_case() {
        let d = decide(
            &[0.01, 0.04, 0.03, 0.2],
            0.05,
            Correction::BenjaminiHochberg,
        )
        .unwrap();
        // Sorted 0.01, 0.03, 0.04, 0.2 against 0.0125, 0.025, 0.0375, 0.05: only k = 1 passes.
        assert_eq!(d.flags(), vec![true, false, false, false]);
        assert_eq!(d.threshold, 0.01);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for _ in 0..500 {
            let m = rng.random_range(1..40);
            let p: Vec<f64> = (0..m)
                .map(|_| {
                    // Some ties and some tiny values.
                    (rng.random::<f64>().powi(3) * 20.0).round() / 20.0
                })
                .collect();
            let d = decide(&p, 0.1, Correction::BenjaminiHochberg).unwrap();
            assert_eq!(d.flags(), bh_brute(&p, 0.1), "{p:?}");
            assert_eq!(d.rejected, d.flags().iter().filter(|&&f| f).count());
        }
    }

    #[test]
    fn bonferroni_and_none() {
        let p = [0.001, 0.02, 0.5];
        assert_eq!(decide(&p, 0.05, Correction::None).unwrap().rejected, 2);
        let b = decide(&p, 0.05, Correction::Bonferroni).unwrap();
        assert_eq!(b.flags(), vec![true, false, false]);
        assert!((b.threshold - 0.05 / 3.0).abs() < 1e-15);
    }

    /// Under the global null (uniform p-values), the chance that Bonferroni or BH flags anything is at most α
    /// (for BH the false discovery rate equals that chance when all are null); without correction the share of
    /// flags is α. 4,000 batches of 50.
    #[test]
    fn error_rates_under_the_null() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let (batches, m, alpha) = (4_000, 50, 0.1);
        let (mut any_bonf, mut any_bh, mut flags) = (0, 0, 0);
        for _ in 0..batches {
            // Conformal p-values of 50 images against one calibration set of 99: ranks among 100.
            let cal: Vec<f64> = (0..99).map(|_| rng.random()).collect();
            let p: Vec<f64> = (0..m)
                .map(|_| {
                    let x: f64 = rng.random();
                    (1 + cal.iter().filter(|&&c| c >= x).count()) as f64 / 100.0
                })
                .collect();
            any_bonf +=
                usize::from(decide(&p, alpha, Correction::Bonferroni).unwrap().rejected > 0);
            any_bh += usize::from(
                decide(&p, alpha, Correction::BenjaminiHochberg)
                    .unwrap()
                    .rejected
                    > 0,
            );
            flags += decide(&p, alpha, Correction::None).unwrap().rejected;
        }
        let se = (alpha * (1.0 - alpha) / batches as f64).sqrt();
        assert!(
            (any_bonf as f64 / batches as f64) < alpha + 3.0 * se,
            "Bonferroni {any_bonf}"
        );
        assert!(
            (any_bh as f64 / batches as f64) < alpha + 3.0 * se,
            "BH {any_bh}"
        );
        let share = flags as f64 / (batches * m) as f64;
        assert!((share - alpha).abs() < 0.01, "uncorrected share {share}");
    }

    #[test]
    fn bad_levels_and_p_values_are_errors() {
        for alpha in [0.0, 1.0, f64::NAN, -0.1] {
            assert!(decide(&[0.5], alpha, Correction::None).is_err());
        }
        assert!(decide(&[0.5, f64::NAN], 0.05, Correction::None).is_err());
        assert!(decide(&[1.5], 0.05, Correction::None).is_err());
        assert_eq!(
            decide(&[], 0.05, Correction::BenjaminiHochberg)
                .unwrap()
                .rejected,
            0
        );
        // A p-value of 0 is a discovery.
        let d = decide(&[0.0, 0.9], 0.05, Correction::BenjaminiHochberg).unwrap();
        assert_eq!(d.flags(), vec![true, false]);
    }
}
