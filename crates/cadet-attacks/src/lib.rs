//! # cadet-attacks
//!
//! Adversarial attacks against any [`Classifier`] (images in `[0, 1]` → logits, normalisation inside) on a
//! Burn autodiff device: [`Fgsm`], [`Pgd`] (L∞ and L2, optional seeded random start) and
//! [`CarliniWagner`] (L2, Adam in tanh space, optional L2 bound and binary search over `c`), batched, untargeted
//! or targeted. Every attack says per image whether it succeeded, the perturbation's L∞ and L2 norms, and the
//! clean and adversarial predictions ([`AttackOutput`]); a failure is reported, never disguised as the clean
//! image. [`Pgd::paper`], [`CarliniWagner::paper`] and [`Fgsm::paper`] are the paper's settings.
//!
//! Adaptive attacks, which know the detector: [`EotPgd`] takes each PGD step along the mean gradient over random
//! CADet evaluation transforms ([`EvalTransform`], applied differentiably: expectation over transformation), and
//! [`EotPgd::with_detector`] adds a differentiable surrogate of CADet's statistics ([`CadetSurrogate`]) to the
//! objective ([`AdaptiveEotPgd`]).
//!
//! The classifier-based detection baselines of the paper's Table 4 live here too, since they need input
//! gradients: [`Odin`]'s score, and Hu et al.'s (2019) noise robustness ([`NoiseRobustness`]) and number of steps
//! to the decision boundary ([`BoundarySteps`]), per image; `cadet-detect` calibrates them to p-values.
//!
//! ```
//! use burn::prelude::*;
//! use cadet_attacks::{Attack, Goal, Pgd};
//! use cadet_model::{CifarResNetConfig, Normalization, Normalized};
//!
//! let device = Device::flex().autodiff();
//! let net = CifarResNetConfig::new(20).init(&device)?; // untrained here; load weights in practice
//! let classifier = Normalized::new(net, Normalization::imagenet(), device);
//! let images = ndarray::Array4::<f32>::from_elem((2, 3, 32, 32), 0.5);
//! let pgd = Pgd { iterations: 3, ..Pgd::paper() };
//! let out = pgd.attack(&classifier, images.view(), &[3, 5], &Goal::Untargeted, &cadet_core::NoProgress)?;
//! assert!(out.samples.iter().all(|s| s.linf <= 0.02 + 1e-6));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod baseline_scores;
mod common;
mod cw;
mod eot;
mod error;
mod gradient;
mod report;
mod surrogate;
mod transform;

pub use baseline_scores::{BoundaryGoal, BoundarySteps, NoiseRobustness, NoiseScores, Odin};
/// The cadet-core traits this crate's signatures use, so that depending on it alone is enough.
pub use cadet_core::{NoProgress, Progress};
pub use cadet_model::Classifier;
pub use cw::CarliniWagner;
pub use eot::{AdaptiveEotPgd, EotPgd};
pub use error::{Error, Result};
pub use gradient::{Fgsm, Norm, Pgd};
pub use report::{AttackOutput, SampleReport};
pub use surrogate::{
    CadetSurrogate, EncoderFn, ImageEncoder, SurrogateReference, SurrogateStatistics,
    SurrogateTerms,
};
pub use transform::{EvalTransform, TransformDraw, apply_transforms};

use ndarray::ArrayView4;

/// What an attack aims at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// Any prediction other than the label.
    Untargeted,
    /// This class, one per image.
    Targeted(Vec<u32>),
}

/// An adversarial attack.
pub trait Attack {
    /// A description with the settings.
    fn name(&self) -> String;
    /// Attacks `images` (`(N, C, H, W)` in `[0, 1]`) with true `labels`.
    fn attack(
        &self,
        classifier: &dyn Classifier,
        images: ArrayView4<'_, f32>,
        labels: &[u32],
        goal: &Goal,
        progress: &dyn Progress,
    ) -> Result<AttackOutput>;
}
