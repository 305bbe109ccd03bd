//! Kernels for the MMD: the paper's cosine similarity, linear, Gaussian, and any of them applied after an
//! [`Embedder`](cadet_core::Embedder).

mod embedding;
mod gaussian;

pub use embedding::EmbeddingKernel;
pub use gaussian::{Bandwidth, GaussianKernel};

use cadet_core::linalg::{Threads, matmul};
use cadet_core::{Kernel, Result, validate};
use ndarray::{Array2, ArrayView2, Zip};

/// Cosine similarity `⟨x, y⟩ / (‖x‖ ‖y‖)`: the paper's learned similarity when applied to encoder features.
/// Rows of zero norm are rejected ([`cadet_core::Error::ZeroNorm`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CosineKernel;

/// Linear kernel `⟨x, y⟩`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinearKernel;

pub use cadet_core::linalg::normalize_rows;

/// Checks a pair of sample matrices: non-empty, finite, same feature dimension.
pub(crate) fn check_pair(x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Result<()> {
    validate::samples("kernel input x", x, None)?;
    validate::samples("kernel input y", y, Some(x.ncols()))
}

impl Kernel for CosineKernel {
    fn name(&self) -> &str {
        "cosine"
    }
    fn gram(&self, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        check_pair(x, y)?;
        let (xn, yn) = (
            normalize_rows("kernel input x", x)?,
            normalize_rows("kernel input y", y)?,
        );
        matmul(xn.view(), yn.t(), Threads::Rayon)
    }
    fn feature_map(&self, x: ArrayView2<'_, f32>) -> Result<Option<Array2<f32>>> {
        validate::samples("kernel input", x, None)?;
        normalize_rows("kernel input", x).map(Some)
    }
}

impl Kernel for LinearKernel {
    fn name(&self) -> &str {
        "linear"
    }
    fn gram(&self, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        check_pair(x, y)?;
        finite_output(
            "linear kernel Gram matrix (f32 overflow)",
            matmul(x, y.t(), Threads::Rayon)?,
        )
    }
    fn feature_map(&self, x: ArrayView2<'_, f32>) -> Result<Option<Array2<f32>>> {
        validate::samples("kernel input", x, None)?;
        Ok(Some(x.to_owned()))
    }
}

/// A kernel's output must be finite: from finite inputs, a non-finite entry is an `f32` overflow (an error,
/// never a silently wrong Gram matrix).
pub(crate) fn finite_output(what: &'static str, a: Array2<f32>) -> Result<Array2<f32>> {
    validate::finite_array(what, a.view().into_dyn())?;
    Ok(a)
}

/// Squared Euclidean distances `‖x_i − y_j‖²` through one matrix product, clamped at 0.
pub(crate) fn squared_distances(
    x: ArrayView2<'_, f32>,
    y: ArrayView2<'_, f32>,
) -> Result<Array2<f32>> {
    let sq = |a: ArrayView2<'_, f32>| -> Vec<f64> {
        a.rows()
            .into_iter()
            .map(|r| r.iter().map(|&v| f64::from(v).powi(2)).sum())
            .collect()
    };
    let (nx, ny) = (sq(x), sq(y));
    let mut d = finite_output(
        "inner products of the distances (f32 overflow)",
        matmul(x, y.t(), Threads::Rayon)?,
    )?;
    Zip::indexed(&mut d).for_each(|(i, j), v| {
        *v = (nx[i] + ny[j] - 2.0 * f64::from(*v)).max(0.0) as f32;
    });
    finite_output("squared distances (f32 overflow)", d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use cadet_core::Error;
    use ndarray::array;

    #[test]
    fn cosine_and_linear_match_definitions() {
        let x = array![[1.0f32, 0.0, 2.0], [3.0, -1.0, 0.5]];
        let y = array![[0.0f32, 1.0, 1.0], [2.0, 2.0, -1.0], [1.0, 1.0, 1.0]];
        let c = CosineKernel.gram(x.view(), y.view()).unwrap();
        let l = LinearKernel.gram(x.view(), y.view()).unwrap();
        for i in 0..2 {
            for j in 0..3 {
                let dot: f32 = (0..3).map(|k| x[[i, k]] * y[[j, k]]).sum();
                let nx: f32 = (0..3).map(|k| x[[i, k]].powi(2)).sum::<f32>().sqrt();
                let ny: f32 = (0..3).map(|k| y[[j, k]].powi(2)).sum::<f32>().sqrt();
                assert_relative_eq!(l[[i, j]], dot, epsilon = 1e-5);
                assert_relative_eq!(c[[i, j]], dot / (nx * ny), epsilon = 1e-6);
            }
        }
        let phi = CosineKernel.feature_map(x.view()).unwrap().unwrap();
        let via_phi = matmul(phi.view(), phi.t(), Threads::Single).unwrap();
        let direct = CosineKernel.gram(x.view(), x.view()).unwrap();
        for (a, b) in via_phi.iter().zip(direct.iter()) {
            assert_relative_eq!(*a, *b, epsilon = 1e-6);
        }
    }

    #[test]
    fn cosine_rejects_zero_rows_and_nan() {
        let x = array![[1.0f32, 0.0], [0.0, 0.0]];
        assert!(matches!(
            CosineKernel.gram(x.view(), x.view()),
            Err(Error::ZeroNorm { row: 1, .. })
        ));
        let y = array![[1.0f32, f32::NAN]];
        assert!(matches!(
            LinearKernel.gram(y.view(), y.view()),
            Err(Error::NonFinite { .. })
        ));
        let z = array![[1.0f32, 0.0, 1.0]];
        assert!(matches!(
            LinearKernel.gram(x.view(), z.view()),
            Err(Error::DimensionMismatch {
                expected: 2,
                got: 3,
                ..
            })
        ));
    }
}
