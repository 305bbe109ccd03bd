//! What an attack returns: the adversarial images and, per sample, what happened.

use ndarray::Array4;
use serde::{Deserialize, Serialize};

/// The outcome for one image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleReport {
    /// Whether the goal was reached: the prediction changed from the label (untargeted) or became the target.
    pub success: bool,
    /// `max |x_adv − x|`.
    pub linf: f32,
    /// `‖x_adv − x‖₂`.
    pub l2: f32,
    /// Prediction on the clean image.
    pub clean_prediction: u32,
    /// Prediction on the returned image.
    pub adversarial_prediction: u32,
}

/// Adversarial images `(N, C, H, W)` in `[0, 1]` and a report per image. A failed attack returns its last
/// iterate and says so (`success: false`); it never passes off the clean image as adversarial.
#[derive(Debug, Clone)]
pub struct AttackOutput {
    /// The adversarial images.
    pub adversarial: Array4<f32>,
    /// One report per image.
    pub samples: Vec<SampleReport>,
}

impl AttackOutput {
    /// Share of images whose attack succeeded.
    pub fn success_rate(&self) -> f64 {
        self.samples.iter().filter(|s| s.success).count() as f64 / self.samples.len().max(1) as f64
    }

    /// Accuracy on the adversarial images against `labels`.
    pub fn adversarial_accuracy(&self, labels: &[u32]) -> f64 {
        let correct = self
            .samples
            .iter()
            .zip(labels)
            .filter(|(s, l)| s.adversarial_prediction == **l)
            .count();
        correct as f64 / self.samples.len().max(1) as f64
    }

    /// Accuracy on the clean images against `labels`.
    pub fn clean_accuracy(&self, labels: &[u32]) -> f64 {
        let correct = self
            .samples
            .iter()
            .zip(labels)
            .filter(|(s, l)| s.clean_prediction == **l)
            .count();
        correct as f64 / self.samples.len().max(1) as f64
    }

    /// Mean L∞ and L2 norms of the perturbations.
    pub fn mean_norms(&self) -> (f64, f64) {
        let n = self.samples.len().max(1) as f64;
        (
            self.samples.iter().map(|s| f64::from(s.linf)).sum::<f64>() / n,
            self.samples.iter().map(|s| f64::from(s.l2)).sum::<f64>() / n,
        )
    }
}
