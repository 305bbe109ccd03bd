//! CADet's per-image statistics in `O(n_trs · d)` (the CADet paper, §3).
//!
//! With unit features `z_i` of an image's `n` transforms and `μ` the mean unit feature of X⁽¹⁾'s transforms:
//! `m_in = (‖Σ z_i‖² − Σ ‖z_i‖²) / (n(n−1))` (the mean cosine over ordered pairs `i ≠ j`) and
//! `m_out = ⟨Σ z_i, μ⟩ / n` (the mean cosine over all pairs with X⁽¹⁾'s transforms). X⁽¹⁾ enters only through
//! `μ`, so its size costs nothing at scoring time.

use cadet_core::linalg::dot;
use cadet_core::simd::dispatch;
use ndarray::{ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The two similarities of one image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ViewStats {
    /// Mean cosine similarity between the image's own transforms.
    pub m_in: f64,
    /// Mean cosine similarity between the image's transforms and X⁽¹⁾'s.
    pub m_out: f64,
}

/// `Σ_i z_i` (unit features, in `f64`) and `Σ_i ‖z_i‖²` of one image's transforms (`n_trs × d`, standard
/// layout or not); a zero row is an error.
fn sums(features: ArrayView2<'_, f32>) -> Result<(Vec<f64>, f64)> {
    let features = features.as_standard_layout();
    let mut s = vec![0.0f64; features.ncols()];
    let mut sq = 0.0;
    for (i, r) in features.rows().into_iter().enumerate() {
        let r = r.to_slice().expect("standard layout");
        let mut norm2 = dot(r, r);
        if !(norm2.is_finite() && norm2 > 0.0) {
            // The f32 sum of squares underflows for tiny rows (1e-30) and overflows for huge ones (1e30): the
            // cosine does not depend on the scale, so redo it in f64 before calling the row zero or infinite.
            norm2 = r.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        }
        if !norm2.is_finite() {
            // NaN or infinity somewhere in the row (or squares beyond f64): name the element.
            cadet_core::validate::finite_array(
                "transform features [transform, component]",
                ndarray::aview1(r).into_dyn(),
            )
            .map_err(|e| match e {
                cadet_core::Error::NonFinite {
                    what,
                    mut index,
                    value,
                } => {
                    index.insert(0, i);
                    cadet_core::Error::NonFinite { what, index, value }
                }
                other => other,
            })?;
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "features",
                reason: format!("transform {i}: squared norm overflows"),
            }));
        }
        if norm2 == 0.0 {
            return Err(Error::Core(cadet_core::Error::ZeroNorm {
                what: "transform features",
                row: i,
            }));
        }
        let inv = 1.0 / norm2.sqrt();
        dispatch(|| {
            s.iter_mut()
                .zip(r)
                .for_each(|(a, &v)| *a += f64::from(v) * inv)
        });
        sq += norm2 * inv * inv;
    }
    Ok((s, sq))
}

/// The mean unit feature `μ` of a set of images' transforms, `(m, n_trs, d)`.
pub fn mean_unit_feature(features: ArrayView3<'_, f32>) -> Result<Vec<f64>> {
    let (m, n, d) = features.dim();
    if m == 0 || n == 0 || d == 0 {
        return Err(cadet_core::Error::EmptyInput {
            what: "X(1) features",
        }
        .into());
    }
    let mut mu = vec![0.0; d];
    for (i, image) in features.axis_iter(Axis(0)).enumerate() {
        let (s, _) = sums(image).map_err(|e| Error::InImage {
            image: i,
            source: Box::new(e),
        })?;
        mu.iter_mut().zip(&s).for_each(|(a, v)| *a += v);
    }
    let count = (m * n) as f64;
    Ok(mu.into_iter().map(|v| v / count).collect())
}

/// `m_in`, `m_out` of one image from its transforms' features (`n_trs × d`, any norm) and `μ`.
pub fn view_stats(features: ArrayView2<'_, f32>, mu: &[f64]) -> Result<ViewStats> {
    let (n, d) = features.dim();
    if n < 2 {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "n_trs",
            reason: format!("m_in needs at least 2 transforms, got {n}"),
        }));
    }
    if d != mu.len() {
        return Err(Error::ShapeMismatch {
            what: "transform features",
            expected: vec![n, mu.len()],
            got: vec![n, d],
        });
    }
    let (s, sq) = sums(features)?; // rejects NaN and infinity row by row
    let norm2: f64 = s.iter().map(|v| v * v).sum();
    let n = n as f64;
    Ok(ViewStats {
        m_in: (norm2 - sq) / (n * (n - 1.0)),
        m_out: s.iter().zip(mu).map(|(a, b)| a * b).sum::<f64>() / n,
    })
}

/// Statistics of test images `(n, n_trs, d)` against X⁽¹⁾ `(m, n_trs', d)`, both given as features (from any
/// encoder, e.g. `.npy` files written elsewhere).
pub fn stats_from_features(
    test: ArrayView3<'_, f32>,
    x1: ArrayView3<'_, f32>,
) -> Result<Vec<ViewStats>> {
    let mu = mean_unit_feature(x1)?;
    test.axis_iter(Axis(0))
        .map(|img| view_stats(img, &mu))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn hand_case() {
        // Two transforms (1, 0) and (0, 2) → unit (1, 0), (0, 1): cos = 0 → m_in = 0.
        // μ = (1, 0): m_out = mean of cos((1,0),(1,0)) = 1 and cos((0,1),(1,0)) = 0 → 0.5.
        let f = array![[1.0f32, 0.0], [0.0, 2.0]];
        let s = view_stats(f.view(), &[1.0, 0.0]).unwrap();
        assert!((s.m_in - 0.0).abs() < 1e-12 && (s.m_out - 0.5).abs() < 1e-12);
        // Identical transforms: m_in = 1.
        let g = array![[3.0f32, 4.0], [0.6, 0.8], [6.0, 8.0]];
        assert!((view_stats(g.view(), &[0.0, 1.0]).unwrap().m_in - 1.0).abs() < 1e-12);
        assert!(view_stats(array![[1.0f32, 0.0]].view(), &[1.0, 0.0]).is_err());
        assert!(view_stats(array![[1.0f32, 0.0], [0.0, 0.0]].view(), &[1.0, 0.0]).is_err());
        assert!(view_stats(f.view(), &[1.0]).is_err());
        let nan = array![[1.0f32, 0.0], [f32::NAN, 1.0]];
        assert!(matches!(
            view_stats(nan.view(), &[1.0, 0.0]),
            Err(Error::Core(cadet_core::Error::NonFinite { .. }))
        ));
    }
}
