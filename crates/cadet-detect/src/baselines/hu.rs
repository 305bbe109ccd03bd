//! Hu et al. (2019), "A New Defense Against Adversarial Images: Turning a Weakness into a Strength", self-calibrated
//! on in-distribution data: two per-image criteria, each a conformal p-value against held-out in-distribution
//! scores, combined into one valid p-value. The scores themselves need the classifier and its input gradients
//! (`cadet-attacks`: `NoiseRobustness`, `BoundarySteps`); this crate only calibrates them.

use serde::{Deserialize, Serialize};

use crate::pvalue::Calibrator;
use crate::{Error, Result};

/// The Bonferroni combination of `k` p-values: `min(1, k · min pᵢ)`.
///
/// Valid whatever the dependence between the p-values: `P(k · min pᵢ ≤ α) ≤ Σᵢ P(pᵢ ≤ α/k) ≤ α` under the null.
/// Thresholding it at `α` flags a sample when any criterion flags it at `α / k`, which is Hu et al.'s rule (an
/// image is adversarial when it fails either criterion) with the level split between the criteria. Their two
/// criteria are computed on the same image and are far from independent, so Fisher's or Stouffer's combinations
/// (which assume independence) would not be valid. Empty input gives 1.
pub fn bonferroni(p_values: &[f64]) -> f64 {
    if p_values.is_empty() {
        return 1.0;
    }
    let min = p_values.iter().copied().fold(1.0f64, f64::min);
    (p_values.len() as f64 * min).min(1.0)
}

/// Hu et al.'s two criteria calibrated on held-out in-distribution images (e.g. X⁽²⁾), as anomaly scores (higher
/// = more anomalous):
/// - `noise`: criterion 1, how much Gaussian noise moves the softmax (`NoiseScores::l1_change` of
///   `cadet-attacks`; high = not robust to noise = anomalous);
/// - `steps`: criterion 2, the number of attack steps to change the prediction (`BoundarySteps`; many =
///   anomalous).
///
/// Each criterion's p-value counts ties against the test image ([`Calibrator::p_value`]): step counts
/// are integers and tie often, where the paper's tie rule would not be valid. The combined p-value is
/// [`bonferroni`]`([p_noise, p_steps]) = min(1, 2 · min(p_noise, p_steps))`, valid when the test image is
/// exchangeable with the calibration images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HuCalibration {
    /// Criterion 1's calibration scores.
    pub noise: Calibrator,
    /// Criterion 2's calibration scores.
    pub steps: Calibrator,
}

fn same_length(noise: &[f64], steps: &[f64]) -> Result<()> {
    if noise.len() != steps.len() {
        return Err(Error::ShapeMismatch {
            what: "step scores (one per image, as the noise scores)",
            expected: vec![noise.len()],
            got: vec![steps.len()],
        });
    }
    Ok(())
}

impl HuCalibration {
    /// From both criteria's anomaly scores of the same held-out in-distribution images (at least one, finite).
    pub fn fit(noise: Vec<f64>, steps: Vec<f64>) -> Result<Self> {
        same_length(&noise, &steps)?;
        Ok(Self {
            noise: Calibrator::new(noise)?,
            steps: Calibrator::new(steps)?,
        })
    }

    /// Each criterion's p-values `(p_noise, p_steps)` for images with these scores.
    pub fn criterion_p_values(&self, noise: &[f64], steps: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        same_length(noise, steps)?;
        cadet_core::validate::finite_slice("noise scores", noise)?;
        cadet_core::validate::finite_slice("step scores", steps)?;
        Ok((
            noise.iter().map(|&a| self.noise.p_value(a)).collect(),
            steps.iter().map(|&a| self.steps.p_value(a)).collect(),
        ))
    }

    /// The combined p-value `min(1, 2 · min(p_noise, p_steps))` of each image: small means anomalous.
    pub fn p_values(&self, noise: &[f64], steps: &[f64]) -> Result<Vec<f64>> {
        let (pn, ps) = self.criterion_p_values(noise, steps)?;
        Ok(pn
            .iter()
            .zip(&ps)
            .map(|(&a, &b)| bonferroni(&[a, b]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn bonferroni_by_hand() {
        assert_eq!(bonferroni(&[0.2, 0.05]), 0.1);
        assert_eq!(bonferroni(&[0.7, 0.6]), 1.0);
        assert_eq!(bonferroni(&[0.01, 0.02, 0.5]), 0.03);
        assert_eq!(bonferroni(&[]), 1.0);
    }

    #[test]
    fn p_values_by_hand() {
        // Noise scores 0.1..0.4, steps 1, 2, 2, 5.
        let hu = HuCalibration::fit(vec![0.3, 0.1, 0.4, 0.2], vec![2.0, 1.0, 5.0, 2.0]).unwrap();
        let (pn, ps) = hu
            .criterion_p_values(&[0.35, 0.05, 0.5], &[2.0, 6.0, 1.0])
            .unwrap();
        // 0.35: above {0.4} → 2/5; 0.05: all four → 1; 0.5: none → 1/5.
        assert_eq!(pn, vec![0.4, 1.0, 0.2]);
        // 2 steps: at or above {2, 2, 5} → 4/5; 6: none → 1/5; 1: all → 1.
        assert_eq!(ps, vec![0.8, 0.2, 1.0]);
        let p = hu.p_values(&[0.35, 0.05, 0.5], &[2.0, 6.0, 1.0]).unwrap();
        assert_eq!(p, vec![0.8, 0.4, 0.4]);
        assert!(hu.p_values(&[0.1], &[1.0, 2.0]).is_err());
        assert!(hu.p_values(&[f64::NAN], &[1.0]).is_err());
        assert!(HuCalibration::fit(vec![0.1], vec![]).is_err());
        assert!(HuCalibration::fit(vec![], vec![]).is_err());
    }

    /// Scores of one in-distribution image: a continuous noise score and a discrete, correlated step count.
    fn draw(rng: &mut ChaCha8Rng) -> (f64, f64) {
        let u: f64 = rng.random_range(0.0..1.0);
        let noise = u + 0.3 * rng.random_range(0.0..1.0);
        let steps = (1.0 + 4.0 * u + rng.random_range(0.0..1.5)).floor();
        (noise, steps)
    }

    #[test]
    fn the_combined_p_value_is_valid_under_the_null() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let trials = 4000;
        let n = 39;
        let alphas = [0.05, 0.1, 0.2];
        let mut rejected = [0usize; 3];
        let mut rejected_tie_blind = 0usize;
        for _ in 0..trials {
            let (noise, steps): (Vec<f64>, Vec<f64>) = (0..n).map(|_| draw(&mut rng)).unzip();
            let hu = HuCalibration::fit(noise, steps).unwrap();
            let (a, b) = draw(&mut rng);
            let p = hu.p_values(&[a], &[b]).unwrap()[0];
            for (r, &alpha) in rejected.iter_mut().zip(&alphas) {
                *r += usize::from(p <= alpha);
            }
            // The step criterion alone with the paper's tie rule (ties not counted) is not valid.
            rejected_tie_blind += usize::from(hu.steps.p_value_ties_ignored(b) <= 0.05);
        }
        for (r, alpha) in rejected.iter().zip(alphas) {
            // At most α, up to 3 binomial standard deviations.
            let bound =
                trials as f64 * alpha + 3.0 * (trials as f64 * alpha * (1.0 - alpha)).sqrt();
            assert!(
                (*r as f64) <= bound,
                "α = {alpha}: {r} of {trials} rejected (bound {bound:.0})"
            );
        }
        let tie_blind = rejected_tie_blind as f64 / trials as f64;
        assert!(tie_blind > 0.1, "tie-blind steps: {tie_blind}");
    }
}
