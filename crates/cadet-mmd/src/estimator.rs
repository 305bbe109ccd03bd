//! The unbiased MMD² estimator on its own.

use cadet_core::Kernel;
use ndarray::ArrayView2;

use crate::Result;
use crate::pooled::PooledSample;

/// Unbiased MMD² between the samples `x` (`m × d`) and `y` (`n × d`), rows are samples.
///
/// For `m = n`, exactly eq. 4 of the paper:
/// `MMD²_u = 1/(n(n−1)) Σ_{i≠j} [k(X_i,X_j) + k(Y_i,Y_j) − k(X_i,Y_j) − k(Y_i,X_j)]`, which pairs `X_i` with
/// `Y_i` by row order. For `m ≠ n`, where eq. 4 is undefined, the unbiased two-sample U-statistic of Gretton et
/// al. (2012): `Σ_{i≠j} k(X_i,X_j)/(m(m−1)) + Σ_{i≠j} k(Y_i,Y_j)/(n(n−1)) − 2 Σ_{i,j} k(X_i,Y_j)/(mn)`.
///
/// Errors: a set with no row or no column, fewer than two rows, mismatched dimensions, NaN or infinity, or a
/// zero row under the cosine kernel.
///
/// ```
/// use cadet_mmd::{LinearKernel, mmd2_unbiased};
/// use ndarray::array;
///
/// // Linear kernel on 1-d points, n = 2. Over i ≠ j: XX 2·(1·2) = 4, YY 2·(3·5) = 30,
/// // cross terms x1y2 + y1x2 + x2y1 + y2x1 = 5 + 6 + 6 + 5 = 22.
/// let x = array![[1.0f32], [2.0]];
/// let y = array![[3.0f32], [5.0]];
/// let mmd2 = mmd2_unbiased(x.view(), y.view(), &LinearKernel)?;
/// assert!((mmd2 - (4.0 + 30.0 - 22.0) / 2.0).abs() < 1e-9);
/// # Ok::<(), cadet_mmd::Error>(())
/// ```
pub fn mmd2_unbiased<K: Kernel + ?Sized>(
    x: ArrayView2<'_, f32>,
    y: ArrayView2<'_, f32>,
    kernel: &K,
) -> Result<f64> {
    Ok(PooledSample::new(x, y, kernel, 0)?.statistic())
}
