//! # cadet-detect
//!
//! CADet (Guille-Escuret et al., *CADet: Fully Self-Supervised Anomaly Detection With Contrastive Learning*,
//! NeurIPS 2023, §3): one image in, a p-value out, flagging unseen classes and adversarial perturbations with
//! no outlier ever seen, and the threshold set by calibration rather than by test data.
//!
//! - [`Cadet`] → [`Calibration`]: the reference X⁽¹⁾ (`μ`, and its per-image features for local statistics), the
//!   method fitted on X⁽²⁾, the settings and the embedder's identity; saved as versioned, checksummed JSON,
//!   atomically. [`Calibration::score`] gives each image's statistics, score and p-value; `m_in` and `m_out` cost
//!   `O(n_trs · d)` ([`stats`]).
//! - [`Cadet::params`] calibrates the recommended method ([`DetectionMethod::recommended`]: needs ≥ 50 reference
//!   images and embeds each image's un-augmented view), [`Cadet::paper`] the paper's.
//! - [`method`]: the paper's `m_in + γ·m_out` ([`DetectionMethod::paper`]) is one point of a design
//!   space of [`Statistic`]s (local `m_out`, local cosine, local `m_in`, feature norm; with each image's
//!   un-augmented view beside its transforms ([`ViewLayout`]), view agreement and identity cosine) and
//!   [`Combination`]s (weighted sum, Fisher, minimum p-value over two-sided or one-sided conformal p-values), all
//!   with valid p-values.
//! - [`comparison`]: methods side by side on the same features (the examples' list and headline, which a
//!   reference allows, their calibrations and scores).
//! - [`Detector`]: one interface for CADet and the label-based [`baselines`] (MSP, MaxLogit, Energy,
//!   Mahalanobis, KNN, ViM), with the same calibration to p-values ([`Calibrated`], [`Calibrator`]).
//! - [`decision`]: per-image [`Verdict`]s at a level `α`, for one image or a batch with Bonferroni or
//!   Benjamini–Hochberg ([`decide_scores`]); small p-value = anomalous, everywhere.
//! - [`evaluation`]: AUROC, FPR@95TPR, AUPR-in/out and the rejection rate at `α` per named set; Table 5.
//! - [`features`]: saved transform features ([`TransformFeatures`]) and the folder the examples write them to
//!   ([`FeatureFolder`]: `x1.npy`, `x2.npy`, the scored sets, and a `layout.json` saying how views are laid out).
//! - [`validity`]: is the false-positive rate what the p-value promises? The exact law of the rejection count
//!   ([`validity::RejectionLaw`]) and resampling studies over many calibration/test splits.
//!
//! Convention: anomaly scores are higher for more anomalous inputs; CADet's own `score` is a similarity (low =
//! anomalous) and its anomaly score is `−score`.
//!
//! See [`Cadet`] for a runnable example.

pub mod baselines;
mod cadet;
pub mod comparison;
pub mod decision;
mod detector;
mod error;
pub mod evaluation;
pub mod features;
pub mod method;
mod pvalue;
pub mod stats;
pub mod validity;

pub use cadet::{
    Cadet, CadetParams, Calibration, EmbedderIdentity, ImageScore, MAX_TRANSFORMS, Scorer, Stream,
};
/// The traits this crate's signatures use, so that depending on `cadet-detect` alone is enough.
pub use cadet_core::params::ParamGuard;
pub use cadet_core::{Embedder, NoProgress, Progress};
pub use decision::{Correction, Decisions, Verdict, decide, decide_scores};
pub use detector::{CadetDetector, Calibrated, ClassifierOutputs, Detector};
pub use error::{Error, Result};
pub use features::{FeatureFolder, TransformFeatures};
pub use method::{Combination, DetectionMethod, Reference, Statistic, Tail, ViewLayout};
pub use pvalue::Calibrator;
pub use stats::{ViewStats, stats_from_features};
