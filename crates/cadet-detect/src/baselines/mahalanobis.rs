//! Mahalanobis distance to the nearest class mean under a tied covariance (Lee et al., 2018).

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};
use ndarray::ArrayView2;

use super::{features, to_faer};
use crate::detector::{ClassifierOutputs, Detector};
use crate::{Error, Result};

/// Class-conditional Gaussians with one shared covariance, fitted on in-distribution features and labels;
/// anomaly score `min_c (f − μ_c)ᵀ Σ⁻¹ (f − μ_c)`. A ridge of `1e-6 · tr(Σ)/d` keeps `Σ` invertible when
/// features are rank-deficient.
#[derive(Debug, Clone)]
pub struct Mahalanobis {
    /// Class means, `classes × d`.
    means: Mat<f64>,
    /// `Σ⁻¹`.
    precision: Mat<f64>,
}

impl Mahalanobis {
    /// Fits class means and the tied covariance; every class in `0..classes` needs a sample.
    pub fn fit(features: ArrayView2<'_, f32>, labels: &[u32], classes: usize) -> Result<Self> {
        let (n, d) = features.dim();
        cadet_core::validate::samples("features", features, None)?;
        if labels.len() != n {
            return Err(Error::ShapeMismatch {
                what: "labels",
                expected: vec![n],
                got: vec![labels.len()],
            });
        }
        let mut means = Mat::<f64>::zeros(classes, d);
        let mut counts = vec![0usize; classes];
        for (row, &l) in features.rows().into_iter().zip(labels) {
            let l = l as usize;
            if l >= classes {
                return Err(Error::Core(cadet_core::Error::InvalidParameter {
                    name: "labels",
                    reason: format!("label {l} ≥ {classes} classes"),
                }));
            }
            counts[l] += 1;
            for (j, &v) in row.iter().enumerate() {
                means[(l, j)] += f64::from(v);
            }
        }
        if let Some(c) = counts.iter().position(|&c| c == 0) {
            return Err(Error::Degenerate(format!("class {c} has no sample")));
        }
        for (c, &count) in counts.iter().enumerate() {
            for j in 0..d {
                means[(c, j)] /= count as f64;
            }
        }
        let centred = Mat::from_fn(n, d, |i, j| {
            f64::from(features[[i, j]]) - means[(labels[i] as usize, j)]
        });
        let mut cov = centred.transpose() * &centred;
        let trace: f64 = (0..d).map(|j| cov[(j, j)]).sum();
        let ridge = 1e-6 * trace / d as f64 + f64::MIN_POSITIVE;
        for j in 0..d {
            for k in 0..d {
                cov[(j, k)] /= n as f64;
            }
            cov[(j, j)] += ridge / n as f64;
        }
        let llt = cov
            .llt(Side::Lower)
            .map_err(|e| Error::Numerical(format!("covariance not positive definite: {e:?}")))?;
        Ok(Self {
            means,
            precision: llt.inverse(),
        })
    }
}

impl Detector for Mahalanobis {
    type Input<'a> = ClassifierOutputs<'a>;
    fn name(&self) -> &str {
        "Mahalanobis"
    }
    fn anomaly_scores(&self, input: ClassifierOutputs<'_>) -> Result<Vec<f64>> {
        let f = to_faer(features(&input, self.means.ncols(), "Mahalanobis")?);
        let pf = &f * &self.precision; // n × d
        let cross = &pf * self.means.transpose(); // n × classes
        let pm = &self.means * &self.precision;
        let mm: Vec<f64> = (0..self.means.nrows())
            .map(|c| {
                (0..self.means.ncols())
                    .map(|j| pm[(c, j)] * self.means[(c, j)])
                    .sum()
            })
            .collect();
        Ok((0..f.nrows())
            .map(|i| {
                let ff: f64 = (0..f.ncols()).map(|j| pf[(i, j)] * f[(i, j)]).sum();
                mm.iter()
                    .enumerate()
                    .map(|(c, m)| ff - 2.0 * cross[(i, c)] + m)
                    .fold(f64::INFINITY, f64::min)
            })
            .collect())
    }
}
