//! Label-based baselines of the paper's Table 3, from a classifier's logits and features: MSP, MaxLogit,
//! Energy, Mahalanobis (class-conditional Gaussian with tied covariance), KNN (k-th nearest neighbour in
//! normalised feature space) and ViM (virtual logit from the residual of a principal subspace). And the
//! adversarial-detection baseline of Hu et al. (2019), self-calibrated ([`HuCalibration`], [`bonferroni`]); its
//! scores, and ODIN's, come from `cadet-attacks` (they need input gradients), and ODIN's anomaly score `−S`
//! calibrates with a plain [`Calibrator`](crate::Calibrator).

mod hu;
mod knn;
mod logits;
mod mahalanobis;
mod vim;

pub use hu::{HuCalibration, bonferroni};
pub use knn::Knn;
pub use logits::{Energy, MaxLogit, Msp};
pub use mahalanobis::Mahalanobis;
pub use vim::Vim;

use faer::Mat;
use ndarray::ArrayView2;

use crate::{ClassifierOutputs, Error, Result};

/// The features of `input`, checked against the fitted dimension.
pub(crate) fn features<'a>(
    input: &ClassifierOutputs<'a>,
    dim: usize,
    who: &'static str,
) -> Result<ArrayView2<'a, f32>> {
    let f = input
        .features
        .ok_or(Error::Core(cadet_core::Error::InvalidParameter {
            name: "features",
            reason: format!("{who} needs features"),
        }))?;
    if f.ncols() != dim {
        return Err(Error::ShapeMismatch {
            what: "features",
            expected: vec![0, dim],
            got: f.shape().to_vec(),
        });
    }
    cadet_core::validate::samples("features", f, Some(dim))?;
    Ok(f)
}

/// An `f64` faer matrix from an `f32` ndarray view.
pub(crate) fn to_faer(a: ArrayView2<'_, f32>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| f64::from(a[[i, j]]))
}

/// `logsumexp` of a row, stably.
pub(crate) fn logsumexp(row: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = row.clone().fold(f64::NEG_INFINITY, f64::max);
    max + row.map(|v| (v - max).exp()).sum::<f64>().ln()
}
