//! # cadet-detect
//!
//! CADet (PAPER.md §3): one image in, a p-value out, flagging unseen classes and adversarial perturbations with
//! no outlier ever seen, and the threshold set by calibration rather than by test data.
//!
//! - [`Cadet`] → [`Calibration`]: `μ` of X⁽¹⁾'s transforms, `γ` and the sorted scores of X⁽²⁾, the settings and
//!   the embedder's identity; saved as versioned JSON, atomically. [`Calibration::score`] gives each image's
//!   `m_in`, `m_out`, score and p-value, computing the statistics in `O(n_trs · d)` ([`stats`]).
//! - [`Detector`]: one interface for CADet and the label-based [`baselines`] (MSP, MaxLogit, Energy,
//!   Mahalanobis, KNN, ViM), with the same calibration to p-values ([`Calibrated`], [`Calibrator`]).
//! - [`evaluation`]: AUROC, FPR@95TPR, AUPR-in/out and the rejection rate at `α` per named set; Table 5.
//!
//! Convention: anomaly scores are higher for more anomalous inputs; CADet's own `score` is a similarity (low =
//! anomalous) and its anomaly score is `−score`.
//!
//! See [`Cadet`] for a runnable example.
#![warn(missing_docs)]

pub mod baselines;
mod cadet;
mod detector;
mod error;
pub mod evaluation;
pub mod method;
mod pvalue;
pub mod stats;

pub use cadet::{Cadet, CadetParams, Calibration, EmbedderIdentity, ImageScore};
pub use detector::{CadetDetector, Calibrated, ClassifierOutputs, Detector};
pub use error::{Error, Result};
pub use method::{Combination, DetectionMethod, Reference, Statistic, Tail};
pub use pvalue::Calibrator;
pub use stats::{ViewStats, stats_from_features};
