//! One interface for CADet and the label-based baselines: anomaly scores (higher = more anomalous) and the same
//! calibration to p-values.

use cadet_core::Embedder;
use ndarray::{ArrayView2, ArrayView4};

use crate::Result;
use crate::cadet::Calibration;
use crate::pvalue::Calibrator;

/// An out-of-distribution detector.
///
/// **Convention:** [`anomaly_scores`](Self::anomaly_scores) are higher for more anomalous inputs, everywhere in
/// cadet-rs (the metrics of `cadet-core` take them as they are).
pub trait Detector {
    /// What the detector reads for a batch: images for CADet, a classifier's outputs for the baselines.
    type Input<'a>;
    /// Short name for tables, e.g. `"MSP"`.
    fn name(&self) -> &str;
    /// One anomaly score per input sample.
    fn anomaly_scores(&self, input: Self::Input<'_>) -> Result<Vec<f64>>;
}

/// A classifier's outputs for a batch: logits `(N, classes)` and, for feature-space detectors, the penultimate
/// features `(N, d)`.
#[derive(Debug, Clone, Copy)]
pub struct ClassifierOutputs<'a> {
    /// Logits.
    pub logits: ArrayView2<'a, f32>,
    /// Penultimate-layer features (required by Mahalanobis, KNN and ViM).
    pub features: Option<ArrayView2<'a, f32>>,
}

/// A detector with a p-value calibration fitted on held-out in-distribution data.
#[derive(Debug, Clone)]
pub struct Calibrated<D> {
    /// The detector.
    pub detector: D,
    /// Its calibration.
    pub calibrator: Calibrator,
}

impl<D: Detector> Calibrated<D> {
    /// Calibrates `detector` on held-out in-distribution inputs (never used to fit the detector itself).
    pub fn fit(detector: D, held_out: D::Input<'_>) -> Result<Self> {
        let calibrator = Calibrator::new(detector.anomaly_scores(held_out)?)?;
        Ok(Self {
            detector,
            calibrator,
        })
    }

    /// p-values of a batch: small means anomalous.
    pub fn p_values(&self, input: D::Input<'_>) -> Result<Vec<f64>> {
        Ok(self
            .calibrator
            .p_values(&self.detector.anomaly_scores(input)?))
    }
}

/// CADet as a [`Detector`]: a calibration and the embedder it was made with; the anomaly score is `−score`.
#[derive(Debug, Clone, Copy)]
pub struct CadetDetector<'c, E: ?Sized> {
    /// The calibration.
    pub calibration: &'c Calibration,
    /// The embedder.
    pub embedder: &'c E,
}

impl<E: Embedder + ?Sized> Detector for CadetDetector<'_, E> {
    type Input<'a> = ArrayView4<'a, f32>;
    fn name(&self) -> &str {
        "CADet"
    }
    fn anomaly_scores(&self, images: ArrayView4<'_, f32>) -> Result<Vec<f64>> {
        let scores = self
            .calibration
            .score(self.embedder, images, &cadet_core::NoProgress)?;
        Ok(scores.iter().map(|s| -s.score).collect())
    }
}
