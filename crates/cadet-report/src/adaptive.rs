//! The adaptive-attack table: for each attack and each calibrated detector, the classifier's attack success, the
//! share of attacked images the detector flags at `α`, the share that both fool the classifier and pass the
//! detector (the attacker's real success), and the detector's AUROC against clean in-distribution images.
//!
//! The table holds plain per-image results (success flags and [`ImageScore`]s), so any attack fills it;
//! [`AdaptiveAttackTable::push_eot_attacks`] runs the two adaptive attacks the examples share (EOT-PGD through
//! CADet's transforms, then also rewarded by a surrogate of CADet's statistics). The examples
//! `adaptive_attack`, `quickstart --adaptive` and `reproduce_cifar --adaptive` print it as Markdown.

use std::fmt;
use std::time::Instant;

use cadet_attacks::{
    Attack, CadetSurrogate, Classifier, EotPgd, Goal, ImageEncoder, SurrogateReference,
    SurrogateTerms,
};
use cadet_core::{Progress, metrics};
use cadet_detect::{Calibration, ImageScore};
use ndarray::{Array4, ArrayView3, ArrayView4};

use crate::Result;

/// The images one attack produced, judged by every detector of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackedImages {
    /// The attack's name (e.g. `Attack::name()`).
    pub attack: String,
    /// Per attacked image, whether the attack fooled the classifier.
    pub success: Vec<bool>,
    /// Per detector (in the table's order), the attacked images' scores.
    pub scores: Vec<Vec<ImageScore>>,
    /// Seconds the attack took.
    pub seconds: f64,
}

/// One row of the table: an attack judged by one detector. Shares in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveRow {
    /// The attack's name.
    pub attack: String,
    /// The detector's name.
    pub detector: String,
    /// Share of attacked images that fool the classifier.
    pub success: f64,
    /// Share of attacked images with `p ≤ α`.
    pub detected: f64,
    /// Share of attacked images that fool the classifier and have `p > α`.
    pub undetected_success: f64,
    /// AUROC of the detector's score, attacked images against the clean ones.
    pub auroc: f64,
    /// Seconds the attack took.
    pub seconds: f64,
}

/// Attacks against detectors, as the attacker sees them: see the [module](self).
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveAttackTable {
    /// One line of context (model, sizes, attack settings).
    pub header: String,
    /// Level of the detectors' test.
    pub alpha: f64,
    /// The detectors' names.
    pub detectors: Vec<String>,
    /// Per detector, its share of clean in-distribution images with `p ≤ α` (its false-positive rate).
    pub clean_rejection: Vec<f64>,
    /// The rows, attack by attack, each attack's detectors in order.
    pub rows: Vec<AdaptiveRow>,
    /// Per detector, the clean images' anomaly scores (`−score`), the AUROC's negative side.
    clean_anomaly: Vec<Vec<f64>>,
}

fn share(count: usize, n: usize) -> f64 {
    count as f64 / n.max(1) as f64
}

fn invalid(reason: String) -> crate::Error {
    crate::Error::Core(cadet_core::Error::InvalidParameter {
        name: "adaptive attack table",
        reason,
    })
}

impl AdaptiveAttackTable {
    /// A table of `detectors` (name and the clean in-distribution images' scores, each detector on the same
    /// images) at level `α ∈ (0, 1)`.
    pub fn new(
        header: impl Into<String>,
        detectors: Vec<(String, Vec<ImageScore>)>,
        alpha: f64,
    ) -> Result<Self> {
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(invalid(format!("α must be in (0, 1), got {alpha}")));
        }
        if detectors.is_empty() || detectors.iter().any(|(_, s)| s.is_empty()) {
            return Err(invalid(
                "needs at least one detector and clean scores for each".into(),
            ));
        }
        let n = detectors[0].1.len();
        if let Some((name, s)) = detectors.iter().find(|(_, s)| s.len() != n) {
            return Err(invalid(format!(
                "detector {name:?} scored {} clean images, the first {n}",
                s.len()
            )));
        }
        Ok(Self {
            header: header.into(),
            alpha,
            clean_rejection: detectors
                .iter()
                .map(|(_, s)| share(s.iter().filter(|s| s.p_value <= alpha).count(), n))
                .collect(),
            clean_anomaly: detectors
                .iter()
                .map(|(_, s)| s.iter().map(|s| -s.score).collect())
                .collect(),
            detectors: detectors.into_iter().map(|(name, _)| name).collect(),
            rows: Vec::new(),
        })
    }

    /// Adds one attack's rows (one per detector); its scores must come one list per detector, one score per
    /// attacked image.
    pub fn push(&mut self, attacked: &AttackedImages) -> Result<()> {
        let n = attacked.success.len();
        if n == 0 {
            return Err(invalid(format!("{}: no attacked images", attacked.attack)));
        }
        if attacked.scores.len() != self.detectors.len() {
            return Err(invalid(format!(
                "{}: scores from {} detectors, the table has {}",
                attacked.attack,
                attacked.scores.len(),
                self.detectors.len()
            )));
        }
        let mut rows = Vec::with_capacity(self.detectors.len());
        for ((detector, scores), clean) in self
            .detectors
            .iter()
            .zip(&attacked.scores)
            .zip(&self.clean_anomaly)
        {
            if scores.len() != n {
                return Err(invalid(format!(
                    "{}: {detector:?} scored {} images, {n} were attacked",
                    attacked.attack,
                    scores.len()
                )));
            }
            let flagged: Vec<bool> = scores.iter().map(|s| s.p_value <= self.alpha).collect();
            let anomaly: Vec<f64> = scores.iter().map(|s| -s.score).collect();
            rows.push(AdaptiveRow {
                attack: attacked.attack.clone(),
                detector: detector.clone(),
                success: share(attacked.success.iter().filter(|&&s| s).count(), n),
                detected: share(flagged.iter().filter(|&&f| f).count(), n),
                undetected_success: share(
                    attacked
                        .success
                        .iter()
                        .zip(&flagged)
                        .filter(|&(&s, &f)| s && !f)
                        .count(),
                    n,
                ),
                auroc: metrics::auroc(clean, &anomaly)?,
                seconds: attacked.seconds,
            });
        }
        self.rows.extend(rows);
        Ok(())
    }

    /// Runs `eot` (objective (a): the classifier's loss in expectation over CADet's transforms) and then `eot`
    /// with a surrogate of CADet's statistics on `encoder` against `reference` (objective (b), weighted by
    /// `terms`) on `images` with true `labels`, and adds both attacks' rows. `judge(adversarial, i)` scores the
    /// `i`-th attack's images by every detector of the table, in its order (embed them with a stream of their
    /// own, e.g. `Stream::Extra(first + i)`).
    #[allow(clippy::too_many_arguments)]
    pub fn push_eot_attacks(
        &mut self,
        classifier: &dyn Classifier,
        encoder: &dyn ImageEncoder,
        reference: SurrogateReference,
        terms: SurrogateTerms,
        eot: &EotPgd,
        images: ArrayView4<'_, f32>,
        labels: &[u32],
        mut judge: impl FnMut(&Array4<f32>, usize) -> Result<Vec<Vec<ImageScore>>, cadet_detect::Error>,
        progress: &dyn Progress,
    ) -> Result<()> {
        let surrogate = CadetSurrogate::new(encoder, reference, terms)?;
        let attacks: [Box<dyn Attack + '_>; 2] = [
            Box::new(eot.clone()),
            Box::new(eot.clone().with_detector(surrogate)),
        ];
        for (i, attack) in attacks.iter().enumerate() {
            let started = Instant::now();
            let out = attack.attack(classifier, images, labels, &Goal::Untargeted, progress)?;
            let seconds = started.elapsed().as_secs_f64();
            progress.note(&format!(
                "{}: success {:.1}% in {seconds:.0} s",
                attack.name(),
                100.0 * out.success_rate()
            ));
            let scores = judge(&out.adversarial, i)?;
            self.push(&AttackedImages {
                attack: attack.name(),
                success: out.samples.iter().map(|s| s.success).collect(),
                scores,
                seconds,
            })?;
        }
        Ok(())
    }
}

/// The scores of `features` (transform features in the calibrations' layout) by each calibration, in order: what
/// a `judge` of [`AdaptiveAttackTable::push_eot_attacks`] returns once it has embedded the attacked images.
pub fn score_by_each(
    calibrations: &[&Calibration],
    features: ArrayView3<'_, f32>,
) -> Result<Vec<Vec<ImageScore>>, cadet_detect::Error> {
    calibrations
        .iter()
        .map(|c| c.score_features(features))
        .collect()
}

/// Markdown: the header, then one row per detector for the clean images and one per attack and detector.
impl fmt::Display for AdaptiveAttackTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alpha = self.alpha;
        writeln!(f, "{}\n", self.header)?;
        writeln!(
            f,
            "| attack | detector | attack success | detected (p ≤ {alpha}) | success and undetected | AUROC vs clean | \
             attack time |\n|---|---|---|---|---|---|---|"
        )?;
        for (name, rejection) in self.detectors.iter().zip(&self.clean_rejection) {
            writeln!(
                f,
                "| clean test images | {name} | – | {:.1}% | – | – | – |",
                100.0 * rejection
            )?;
        }
        for r in &self.rows {
            writeln!(
                f,
                "| {} | {} | {:.1}% | {:.1}% | {:.1}% | {:.1}% | {:.0} s |",
                r.attack,
                r.detector,
                100.0 * r.success,
                100.0 * r.detected,
                100.0 * r.undetected_success,
                100.0 * r.auroc,
                r.seconds
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(pairs: &[(f64, f64)]) -> Vec<ImageScore> {
        pairs
            .iter()
            .map(|&(score, p_value)| ImageScore {
                m_in: 0.0,
                m_out: 0.0,
                statistics: Vec::new(),
                score,
                p_value,
            })
            .collect()
    }

    /// Every figure by hand on four clean and four attacked images.
    #[test]
    fn rows_by_hand() {
        // Clean: scores 4, 3, 2, 1 (low = anomalous); one p ≤ 0.05.
        let clean = scored(&[(4.0, 0.9), (3.0, 0.5), (2.0, 0.2), (1.0, 0.04)]);
        let mut table =
            AdaptiveAttackTable::new("h", vec![("d".into(), clean)], 0.05).expect("valid");
        assert_eq!(table.clean_rejection, vec![0.25]);
        // Attacked: scores 3.5, 0.5, 0.2, 2.5; p 0.3, 0.01, 0.05, 0.4; the attack fooled images 0, 1, 3.
        let attacked = AttackedImages {
            attack: "a".into(),
            success: vec![true, true, false, true],
            scores: vec![scored(&[(3.5, 0.3), (0.5, 0.01), (0.2, 0.05), (2.5, 0.4)])],
            seconds: 2.0,
        };
        table.push(&attacked).expect("valid");
        let r = &table.rows[0];
        assert_eq!(r.success, 0.75);
        // p ≤ α: images 1 and 2 (0.05 included).
        assert_eq!(r.detected, 0.5);
        // Fooled and undetected: images 0 and 3.
        assert_eq!(r.undetected_success, 0.5);
        // AUROC of −score: attacked {−3.5, −0.5, −0.2, −2.5} vs clean {−4, −3, −2, −1}: pairs where the
        // attacked is higher: −3.5 beats −4 (1); −0.5 and −0.2 beat all four (8); −2.5 beats −4, −3 (2) → 11/16.
        assert!((r.auroc - 11.0 / 16.0).abs() < 1e-12);
        let text = table.to_string();
        assert!(
            text.contains("| clean test images | d | – | 25.0% |"),
            "{text}"
        );
        assert!(
            text.contains("| a | d | 75.0% | 50.0% | 50.0% | 68.8% | 2 s |"),
            "{text}"
        );
    }

    #[test]
    fn mismatched_lengths_are_refused() {
        let clean = scored(&[(1.0, 0.5), (2.0, 0.5)]);
        assert!(AdaptiveAttackTable::new("h", vec![("d".into(), clean.clone())], 1.0).is_err());
        assert!(
            AdaptiveAttackTable::new(
                "h",
                vec![
                    ("d".into(), clean.clone()),
                    ("e".into(), clean[..1].to_vec())
                ],
                0.05
            )
            .is_err()
        );
        let mut table =
            AdaptiveAttackTable::new("h", vec![("d".into(), clean.clone())], 0.05).expect("valid");
        let mut attacked = AttackedImages {
            attack: "a".into(),
            success: vec![true, false],
            scores: vec![clean[..1].to_vec()],
            seconds: 0.0,
        };
        assert!(table.push(&attacked).is_err());
        attacked.scores = vec![clean.clone(), clean];
        assert!(table.push(&attacked).is_err());
        assert!(table.rows.is_empty());
    }
}
