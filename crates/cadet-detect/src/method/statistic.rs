//! Statistics of an image's transform features against a stored [`Reference`]: the paper's `m_in` and `m_out`,
//! and the extensions `local m_out` and the feature norm.
//!
//! With `z_i` the unit features of an image's `n` transforms and `ū = Σ z_i / n` their mean, and `ū_j` the same
//! for reference image `j` (X⁽¹⁾):
//! - `m_in = (‖Σ z_i‖² − n) / (n(n−1))`: the mean cosine over ordered pairs of the image's own transforms;
//! - `m_out = ⟨ū, μ⟩` with `μ = mean_j ū_j`: the mean cosine over all pairs with X⁽¹⁾'s transforms;
//! - `local m_out (k)`: the mean of the `k` largest `⟨ū, ū_j⟩` over reference images `j` (the mean cosine over
//!   all transform pairs of the image and reference image `j`), so `k = |X⁽¹⁾|` is `m_out`. It compares the image
//!   with its nearest reference images rather than with their mean, which a small encoder's shared feature
//!   direction cannot fool (issue 12);
//! - `local cos (k)`: the mean of the `k` largest `cos(ū, ū_j)`, directions only;
//! - `local m_in (k)`: `m_in` minus the mean `m_in` of the `k` reference images nearest by `cos(ū, ū_j)`;
//! - `feature norm`: the mean Euclidean norm of the raw transform features (weak features, small norm).

use cadet_core::linalg::{Threads, matmul};
use ndarray::{Array2, ArrayView2, ArrayView3, Axis, s};
use serde::{Deserialize, Serialize};

use crate::stats::{ViewStats, mean_unit_feature, view_stats};
use crate::{Error, Result};

/// One statistic of an image's transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Mean cosine similarity between the image's own transforms (the paper's `m_in`).
    MIn,
    /// Mean cosine similarity to all of X⁽¹⁾'s transforms (the paper's `m_out`).
    MOut,
    /// Mean of the `k` largest similarities to single reference images (`k = |X⁽¹⁾|`: `m_out`).
    LocalMOut {
        /// Nearest reference images averaged, `1 ≤ k ≤ |X⁽¹⁾|`.
        k: usize,
    },
    /// Mean of the `k` largest *cosine* similarities `cos(ū, ū_j)` to single reference images: the direction of
    /// the image's mean unit feature against each reference image's, without their lengths. `⟨ū, ū_j⟩` mixes the
    /// direction with `‖ū‖` and `‖ū_j‖` (how consistent each image's transforms are), so the reference images
    /// whose transforms agree most crowd the top `k` whatever the direction; the cosine compares directions
    /// only, the k-NN idea on the transforms' mean.
    LocalCosine {
        /// Nearest reference images averaged, `1 ≤ k ≤ |X⁽¹⁾|`.
        k: usize,
    },
    /// `m_in` of the image minus the mean `m_in` of its `k` nearest reference images (by `cos(ū, ū_j)`): how
    /// much more (or less) the image's transforms agree than those of the in-distribution images it resembles.
    /// Raw `m_in` mixes that with how self-consistent the image's kind of content is anyway; the residual keeps
    /// the part an adversarial perturbation (lower) or a simpler unseen image (higher) changes.
    LocalMIn {
        /// Nearest reference images whose `m_in` is averaged, `1 ≤ k ≤ |X⁽¹⁾|`.
        k: usize,
    },
    /// Mean Euclidean norm of the transforms' raw features.
    FeatureNorm,
}

impl Statistic {
    /// Short name for tables: `m_in`, `m_out`, `local m_out (k=5)`, `norm`.
    pub fn label(&self) -> String {
        match self {
            Self::MIn => "m_in".into(),
            Self::MOut => "m_out".into(),
            Self::LocalMOut { k } => format!("local m_out (k={k})"),
            Self::LocalCosine { k } => format!("local cos (k={k})"),
            Self::LocalMIn { k } => format!("local m_in (k={k})"),
            Self::FeatureNorm => "norm".into(),
        }
    }
}

/// What scoring needs of X⁽¹⁾: `μ` (for `m_out`) and, when a local statistic is used, each reference image's
/// mean unit feature `ū_j` (an `|X⁽¹⁾| × d` matrix, `f32`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    size: usize,
    mu: Vec<f64>,
    /// Row-major `size × d`, or empty when not kept.
    image_means: Vec<f32>,
    /// Each reference image's `m_in` (kept with `image_means` when its images have 2 transforms or more).
    #[serde(default)]
    image_m_in: Vec<f64>,
}

impl Reference {
    /// From X⁽¹⁾'s transform features `(m, n_trs, d)`; `keep_images` keeps the `ū_j` for local statistics.
    pub fn from_features(x1: ArrayView3<'_, f32>, keep_images: bool) -> Result<Self> {
        let mu = mean_unit_feature(x1)?;
        let n = x1.dim().1;
        let (mut image_means, mut image_m_in) = (Vec::new(), Vec::new());
        if keep_images {
            image_means.reserve(x1.len_of(Axis(0)) * mu.len());
            for image in x1.outer_iter() {
                let u = mean_unit(image)?;
                if n >= 2 {
                    // ‖Σ z_i‖² = n²‖ū‖², so m_in = (n‖ū‖² − 1)/(n − 1).
                    let norm2: f64 = u.iter().map(|v| v * v).sum();
                    image_m_in.push((n as f64 * norm2 - 1.0) / (n as f64 - 1.0));
                }
                image_means.extend(u.iter().map(|&v| v as f32));
            }
        }
        Ok(Self {
            size: x1.dim().0,
            mu,
            image_means,
            image_m_in,
        })
    }

    /// From X⁽¹⁾'s per-image mean unit features `ū_j` (`m × d`, each the mean of an image's unit transform
    /// features, computed elsewhere); `μ` is their mean.
    pub fn from_image_means(means: ArrayView2<'_, f32>) -> Result<Self> {
        cadet_core::validate::samples("reference image means", means, None)?;
        let (m, d) = means.dim();
        let mut mu = vec![0.0f64; d];
        for r in means.outer_iter() {
            mu.iter_mut()
                .zip(r)
                .for_each(|(a, &v)| *a += f64::from(v) / m as f64);
        }
        Ok(Self {
            size: m,
            mu,
            image_means: means.iter().copied().collect(),
            image_m_in: Vec::new(),
        })
    }

    /// A reference holding `μ` only (a calibration file of version 1).
    pub(crate) fn from_mu(mu: Vec<f64>, size: usize) -> Self {
        Self {
            size,
            mu,
            image_means: Vec::new(),
            image_m_in: Vec::new(),
        }
    }

    /// `|X⁽¹⁾|`.
    pub fn len(&self) -> usize {
        self.size
    }

    /// Whether X⁽¹⁾ is empty (never, for a reference built by [`from_features`](Self::from_features)).
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.mu.len()
    }

    /// `μ`, the mean unit feature of X⁽¹⁾'s transforms.
    pub fn mu(&self) -> &[f64] {
        &self.mu
    }

    /// The `ū_j`, `|X⁽¹⁾| × d`, when kept.
    pub fn image_means(&self) -> Option<ArrayView2<'_, f32>> {
        if self.image_means.is_empty() {
            return None;
        }
        ArrayView2::from_shape((self.size, self.mu.len()), &self.image_means).ok()
    }

    /// Checks the reference supports `statistic`.
    pub fn supports(&self, statistic: Statistic) -> Result<()> {
        match statistic {
            Statistic::LocalMOut { k }
            | Statistic::LocalCosine { k }
            | Statistic::LocalMIn { k } => {
                let label = statistic.label();
                if k == 0 || k > self.size {
                    return Err(Error::InvalidParameter {
                        name: "k",
                        reason: format!("{label} needs 1 ≤ k ≤ |X(1)| = {}, got {k}", self.size),
                    });
                }
                // Local m_out at k = |X⁽¹⁾| is m_out, which μ alone gives; every other local statistic compares
                // with single reference images.
                let full_m_out = matches!(statistic, Statistic::LocalMOut { .. }) && k == self.size;
                if !full_m_out && self.image_means().is_none() {
                    return Err(Error::InvalidParameter {
                        name: "reference",
                        reason: format!(
                            "{label} needs the reference images' features, which this calibration does not hold"
                        ),
                    });
                }
                if matches!(statistic, Statistic::LocalMIn { .. })
                    && self.image_m_in.len() != self.size
                {
                    return Err(Error::InvalidParameter {
                        name: "reference",
                        reason: format!(
                            "{label} needs the reference images' m_in: a reference built from transform \
                             features with at least 2 transforms per image"
                        ),
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Checks internal consistency (after reading a file).
    pub(crate) fn check(&self) -> Result<()> {
        if self.size == 0 || self.mu.is_empty() || self.mu.iter().any(|v| !v.is_finite()) {
            return Err(Error::Degenerate(
                "reference: empty, or μ not finite".into(),
            ));
        }
        if !self.image_m_in.is_empty()
            && (self.image_m_in.len() != self.size
                || self.image_m_in.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::Degenerate(format!(
                "reference: {} m_in values for {} images, or not finite",
                self.image_m_in.len(),
                self.size
            )));
        }
        if !self.image_means.is_empty()
            && (self.image_means.len() != self.size * self.mu.len()
                || self.image_means.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::Degenerate(format!(
                "reference: {} image features for {} images of dimension {}, or not finite",
                self.image_means.len(),
                self.size,
                self.mu.len()
            )));
        }
        Ok(())
    }
}

/// The mean unit feature `ū` of one image's transforms (`n_trs × d`).
fn mean_unit(features: ArrayView2<'_, f32>) -> Result<Vec<f64>> {
    mean_unit_feature(features.insert_axis(Axis(0)))
}

/// The statistics of one image: the paper's pair (always, for reports) and the requested ones, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageStatistics {
    /// `m_in` and `m_out`.
    pub paper: ViewStats,
    /// The requested statistics' values, in the order asked for.
    pub values: Vec<f64>,
}

/// Images whose `ū` is compared with the reference in one matrix product: bounds the `block × |X⁽¹⁾|`
/// similarity matrix.
const BLOCK: usize = 256;

/// The `statistics` of each image of `features` `(N, n_trs, d)` against `reference`. Local statistics take one
/// blocked matrix product of the images' `ū` with the reference's `ū_j` (`O(N · |X⁽¹⁾| · d)`); the others are
/// `O(N · n_trs · d)`.
pub fn image_statistics(
    features: ArrayView3<'_, f32>,
    reference: &Reference,
    statistics: &[Statistic],
) -> Result<Vec<ImageStatistics>> {
    let (n, n_trs, d) = features.dim();
    if d != reference.dim() {
        return Err(Error::ShapeMismatch {
            what: "transform features",
            expected: vec![n, n_trs, reference.dim()],
            got: vec![n, n_trs, d],
        });
    }
    for &s in statistics {
        reference.supports(s)?;
    }
    let mut out: Vec<ImageStatistics> = Vec::with_capacity(n);
    for (i, image) in features.outer_iter().enumerate() {
        out.push(ImageStatistics {
            paper: view_stats(image, reference.mu()).map_err(|e| Error::InImage {
                image: i,
                source: Box::new(e),
            })?,
            values: Vec::with_capacity(statistics.len()),
        });
    }
    // The local statistics computed by the blocked product (local m_out at k = |X⁽¹⁾| is m_out).
    let local: Vec<Statistic> = statistics
        .iter()
        .copied()
        .filter(|s| match s {
            Statistic::LocalMOut { k } => *k < reference.len(),
            Statistic::LocalCosine { .. } | Statistic::LocalMIn { .. } => true,
            _ => false,
        })
        .collect();
    // Per image, the local statistics' values in the order of `local`.
    let mut local_values: Vec<Vec<f64>> = vec![Vec::new(); n];
    if let (false, Some(refs)) = (local.is_empty(), reference.image_means()) {
        let ref_norms: Vec<f32> = refs
            .outer_iter()
            .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect();
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            let mut means = Array2::<f32>::zeros((end - start, d));
            for (row, image) in means
                .outer_iter_mut()
                .zip(features.slice(s![start..end, .., ..]).outer_iter())
            {
                for (dst, v) in row.into_iter().zip(mean_unit(image)?) {
                    *dst = v as f32;
                }
            }
            // ⟨ū, ū_j⟩ for the block; the cosines divide by the two lengths.
            let dots = matmul(means.view(), refs.t(), Threads::Rayon)?;
            for (i, (row, mean)) in dots.outer_iter().zip(means.outer_iter()).enumerate() {
                let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
                let cosines: Vec<f32> = row
                    .iter()
                    .zip(&ref_norms)
                    .map(|(v, r)| v / (norm * r).max(f32::MIN_POSITIVE))
                    .collect();
                let dots = row.to_vec();
                let m_in = out[start + i].paper.m_in;
                local_values[start + i] = local
                    .iter()
                    .map(|s| match *s {
                        Statistic::LocalMOut { k } => top_k_mean(dots.clone(), k),
                        Statistic::LocalCosine { k } => top_k_mean(cosines.clone(), k),
                        Statistic::LocalMIn { k } => {
                            m_in - neighbours_mean(&cosines, k, &reference.image_m_in)
                        }
                        _ => unreachable!("local statistics only"),
                    })
                    .collect();
            }
        }
    }
    for (i, (image, stats)) in features.outer_iter().zip(out.iter_mut()).enumerate() {
        let mut next_local = 0;
        for &s in statistics {
            let v = match s {
                Statistic::MIn => stats.paper.m_in,
                Statistic::MOut => stats.paper.m_out,
                // k = |X⁽¹⁾|: the mean over every reference image is ⟨ū, μ⟩, computed as m_out is (exactly).
                Statistic::LocalMOut { k } if k == reference.len() => stats.paper.m_out,
                Statistic::LocalMOut { .. }
                | Statistic::LocalCosine { .. }
                | Statistic::LocalMIn { .. } => {
                    next_local += 1;
                    local_values[i][next_local - 1]
                }
                Statistic::FeatureNorm => feature_norm(image),
            };
            stats.values.push(v);
        }
    }
    Ok(out)
}

/// The mean of the `k` largest values: the `k` largest first (`O(len)`), summed in `f64`.
fn top_k_mean(mut values: Vec<f32>, k: usize) -> f64 {
    if k < values.len() {
        values.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    }
    values[..k].iter().map(|&v| f64::from(v)).sum::<f64>() / k as f64
}

/// The mean of `values[j]` over the `k` indices `j` of the largest `keys` (ties broken by index).
fn neighbours_mean(keys: &[f32], k: usize, values: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let desc = |a: &usize, b: &usize| keys[*b].total_cmp(&keys[*a]).then(a.cmp(b));
    if k < order.len() {
        order.select_nth_unstable_by(k - 1, desc);
    }
    order[..k].iter().map(|&j| values[j]).sum::<f64>() / k as f64
}

/// Mean Euclidean norm of the rows (already checked finite by `view_stats`).
fn feature_norm(features: ArrayView2<'_, f32>) -> f64 {
    let n = features.nrows() as f64;
    features
        .outer_iter()
        .map(|r| r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt())
        .sum::<f64>()
        / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, array};

    /// By hand: reference images with ū (1, 0) and (0, 1); a test image whose two transforms are (1, 0) and
    /// (1, 0): ū = (1, 0), similarities 1 and 0 → local k=1: 1, k=2: 0.5 = m_out (μ = (½, ½) → ⟨ū, μ⟩ = ½).
    #[test]
    fn local_m_out_by_hand() {
        let x1 = Array3::from_shape_vec((2, 2, 2), vec![1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0, 1.0])
            .unwrap();
        let r = Reference::from_features(x1.view(), true).unwrap();
        let test = array![[[1.0f32, 0.0], [5.0, 0.0]]];
        let stats = [
            Statistic::LocalMOut { k: 1 },
            Statistic::LocalMOut { k: 2 },
            Statistic::MOut,
            Statistic::FeatureNorm,
        ];
        let s = image_statistics(test.view(), &r, &stats).unwrap();
        let v = &s[0].values;
        assert!(
            (v[0] - 1.0).abs() < 1e-7 && (v[1] - 0.5).abs() < 1e-12,
            "{v:?}"
        );
        assert!(
            (v[2] - 0.5).abs() < 1e-12 && (v[3] - 3.0).abs() < 1e-12,
            "{v:?}"
        );
        assert!(image_statistics(test.view(), &r, &[Statistic::LocalMOut { k: 3 }]).is_err());
        assert!(image_statistics(test.view(), &r, &[Statistic::LocalMOut { k: 0 }]).is_err());
        let no_images = Reference::from_features(x1.view(), false).unwrap();
        assert!(
            image_statistics(test.view(), &no_images, &[Statistic::LocalMOut { k: 1 }]).is_err()
        );
    }
}
