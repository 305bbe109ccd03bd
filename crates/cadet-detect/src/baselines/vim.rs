//! ViM: virtual-logit matching (Wang et al., 2022).

use faer::{Mat, Side};
use ndarray::ArrayView2;

use super::{features, logsumexp, to_faer};
use crate::detector::{ClassifierOutputs, Detector};
use crate::{Error, Result};

/// ViM: features are shifted by the origin `o = −W⁺b` of the classifier `l = Wf + b`; the principal subspace
/// of dimension `D` of the shifted training features is kept, and the norm of the residual (the component
/// outside it), scaled by `α` to match the training logits, acts as a virtual logit. Anomaly score:
/// `α ‖x^{P⊥}‖ − logsumexp(l)`.
#[derive(Debug, Clone)]
pub struct Vim {
    origin: Vec<f64>,
    /// Basis of the residual subspace, `d × (d − D)`.
    residual: Mat<f64>,
    alpha: f64,
}

impl Vim {
    /// The paper's principal dimension for features of dimension `d`: 1000 for `d ≥ 2048`, 512 for `d ≥ 768`,
    /// else `d / 2`.
    pub fn default_dim(d: usize) -> usize {
        if d >= 2048 {
            1000
        } else if d >= 768 {
            512
        } else {
            d / 2
        }
    }

    /// Fits on in-distribution training features with the classifier's last layer `weights` (`classes × d`)
    /// and `bias` (`classes`); `principal_dim < d`.
    pub fn fit(
        train: ArrayView2<'_, f32>,
        weights: ArrayView2<'_, f32>,
        bias: &[f32],
        principal_dim: usize,
    ) -> Result<Self> {
        let (n, d) = train.dim();
        cadet_core::validate::samples("training features", train, None)?;
        if weights.ncols() != d || bias.len() != weights.nrows() {
            return Err(Error::ShapeMismatch {
                what: "classifier weights",
                expected: vec![bias.len(), d],
                got: weights.shape().to_vec(),
            });
        }
        if principal_dim == 0 || principal_dim >= d {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "principal_dim",
                reason: format!("need 0 < D < {d}, got {principal_dim}"),
            }));
        }
        // o = −W⁺ b with the pseudo-inverse from a thin SVD (singular values below 1e-10 · max dropped).
        let w = to_faer(weights);
        let svd = w
            .thin_svd()
            .map_err(|e| Error::Numerical(format!("SVD of W: {e:?}")))?;
        let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
        let smax = (0..s.nrows()).map(|i| s[i]).fold(0.0, f64::max);
        let mut origin = vec![0.0; d];
        for k in 0..s.nrows() {
            if s[k] > 1e-10 * smax {
                let coef: f64 = (0..u.nrows())
                    .map(|i| u[(i, k)] * f64::from(bias[i]))
                    .sum::<f64>()
                    / s[k];
                for (j, o) in origin.iter_mut().enumerate() {
                    *o -= v[(j, k)] * coef;
                }
            }
        }
        let x = Mat::from_fn(n, d, |i, j| f64::from(train[[i, j]]) - origin[j]);
        let cov = x.transpose() * &x * faer::Scale(1.0 / n as f64);
        let eig = cov
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| Error::Numerical(format!("eigendecomposition: {e:?}")))?;
        // Eigenvalues ascending: the first d − D eigenvectors span the residual subspace.
        let residual = eig.U().subcols(0, d - principal_dim).to_owned();
        let vlogit = residual_norms(&x, &residual);
        let logits = to_faer(train) * w.transpose();
        let max_logit_mean = (0..n)
            .map(|i| {
                (0..logits.ncols())
                    .map(|c| logits[(i, c)] + f64::from(bias[c]))
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .sum::<f64>()
            / n as f64;
        let vlogit_mean = vlogit.iter().sum::<f64>() / n as f64;
        if vlogit_mean <= 0.0 {
            return Err(Error::Degenerate(
                "training features have no residual outside the principal subspace".into(),
            ));
        }
        Ok(Self {
            origin,
            residual,
            alpha: max_logit_mean / vlogit_mean,
        })
    }

    /// The origin `o = −W⁺b` the features are shifted by.
    pub fn origin(&self) -> &[f64] {
        &self.origin
    }

    /// The scale `α` of the virtual logit.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }
}

/// `‖x_i R‖` for each row of `x`.
fn residual_norms(x: &Mat<f64>, residual: &Mat<f64>) -> Vec<f64> {
    let proj = x * residual;
    (0..proj.nrows())
        .map(|i| {
            (0..proj.ncols())
                .map(|j| proj[(i, j)].powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

impl Detector for Vim {
    type Input<'a> = ClassifierOutputs<'a>;
    fn name(&self) -> &str {
        "ViM"
    }
    fn anomaly_scores(&self, input: ClassifierOutputs<'_>) -> Result<Vec<f64>> {
        let f = features(&input, self.origin.len(), "ViM")?;
        cadet_core::validate::samples("logits", input.logits, None)?;
        if input.logits.nrows() != f.nrows() {
            return Err(Error::ShapeMismatch {
                what: "logits",
                expected: vec![f.nrows(), 0],
                got: input.logits.shape().to_vec(),
            });
        }
        let x = Mat::from_fn(f.nrows(), f.ncols(), |i, j| {
            f64::from(f[[i, j]]) - self.origin[j]
        });
        let norms = residual_norms(&x, &self.residual);
        Ok(input
            .logits
            .rows()
            .into_iter()
            .zip(norms)
            .map(|(l, r)| self.alpha * r - logsumexp(l.iter().map(|&v| f64::from(v))))
            .collect())
    }
}
