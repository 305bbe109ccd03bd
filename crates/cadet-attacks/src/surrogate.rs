//! A differentiable surrogate of CADet's statistics (cadet-detect's `method::statistic`), for attacks that aim
//! at the detector as well as the classifier.
//!
//! With `z_i` the unit encoder features of an image's `n` transforms, `ū = Σ z_i / n`, `v` the unit feature of
//! its un-augmented view, and for reference image `j` (X⁽¹⁾) its mean unit transform feature `ū_j`, its
//! `m_in_j` and the unit feature `r_j` of its un-augmented view:
//! - `m_in = (‖Σ z_i‖² − n) / (n(n−1))`;
//! - `local cos (k)`: the mean of the `k` largest `cos(ū, ū_j)`;
//! - `local m_in (k)`: `m_in` minus the mean `m_in_j` of the `k` reference images with the largest `cos(ū, ū_j)`
//!   (ties to the lower index, as cadet-detect breaks them);
//! - `identity cos (k)`: the mean of the `k` largest `cos(v, r_j)`;
//! - `view agreement`: `cos(v, ū)`.
//!
//! Low values of the cosines and agreement flag an anomaly, and local `m_in` is judged in both tails (the
//! headline method), so the attacker's reward is `λ · (Σ cosines + agreement − local m_in²)`. The top-`k` sets are
//! chosen on the current values (outside the graph); the gradient flows through the chosen similarities, the
//! subgradient of a top-`k` mean.

use burn::prelude::*;
use cadet_model::{FeatureModel, Normalized};
use ndarray::{Array2, ArrayView2, ArrayView3, ArrayView4, Axis, s};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::transform::{EvalTransform, apply_transforms};
use crate::{Error, Result};

/// An encoder of images `(N, C, H, W)` in `[0, 1]` to features `(N, D)`, its normalisation inside, on the
/// attacked classifier's device (an autodiff one).
pub trait ImageEncoder: Send + Sync {
    /// Features `(N, D)`.
    fn features(&self, images: Tensor<4>) -> Tensor<2>;
}

/// A feature model wrapped with its input normalisation (e.g. the supervised ResNet's pooled features, as
/// `BurnEmbedder` computes them for the detector).
impl<M: FeatureModel> ImageEncoder for Normalized<M> {
    fn features(&self, images: Tensor<4>) -> Tensor<2> {
        self.model
            .forward_features(self.normalization.apply(images))
    }
}

/// Any function from images in `[0, 1]` to features as an [`ImageEncoder`].
pub struct EncoderFn<F>(pub F);

impl<F: Fn(Tensor<4>) -> Tensor<2> + Send + Sync> ImageEncoder for EncoderFn<F> {
    fn features(&self, images: Tensor<4>) -> Tensor<2> {
        (self.0)(images)
    }
}

/// What the surrogate needs of X⁽¹⁾, as plain arrays: each reference image's mean unit transform feature `ū_j`,
/// its `m_in_j`, and the unit feature `r_j` of its un-augmented view.
#[derive(Debug, Clone, PartialEq)]
pub struct SurrogateReference {
    image_means: Array2<f32>,
    image_m_in: Vec<f64>,
    identity_units: Array2<f32>,
}

/// Unit rows in `f64`; a zero or non-finite row is an error.
fn unit(row: ndarray::ArrayView1<'_, f32>, what: &'static str, index: usize) -> Result<Vec<f64>> {
    let norm = row
        .iter()
        .map(|&v| f64::from(v).powi(2))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::Input {
            what,
            reason: format!("row {index}: zero or non-finite norm"),
        });
    }
    Ok(row.iter().map(|&v| f64::from(v) / norm).collect())
}

impl SurrogateReference {
    /// From the `ū_j` (`K × D`), the un-augmented views' features `r_j` (`K × D`, normalised here) and the number
    /// `n ≥ 2` of transforms each `ū_j` averages (`m_in_j = (n‖ū_j‖² − 1)/(n − 1)`, as cadet-detect computes it).
    pub fn new(
        image_means: ArrayView2<'_, f32>,
        identity_features: ArrayView2<'_, f32>,
        transforms_per_image: usize,
    ) -> Result<Self> {
        let (k, d) = image_means.dim();
        if k == 0 || d == 0 || identity_features.dim() != (k, d) {
            return Err(Error::Input {
                what: "reference",
                reason: format!(
                    "image means {:?} and un-augmented views {:?}: need the same K ≥ 1 rows of D ≥ 1",
                    image_means.dim(),
                    identity_features.dim()
                ),
            });
        }
        if transforms_per_image < 2 {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "transforms_per_image",
                reason: format!("m_in needs at least 2, got {transforms_per_image}"),
            }));
        }
        if image_means.iter().any(|v| !v.is_finite()) {
            return Err(Error::Input {
                what: "reference image means",
                reason: "non-finite value".into(),
            });
        }
        let n = transforms_per_image as f64;
        let image_m_in = image_means
            .outer_iter()
            .map(|u| {
                let norm2: f64 = u.iter().map(|&v| f64::from(v).powi(2)).sum();
                (n * norm2 - 1.0) / (n - 1.0)
            })
            .collect();
        let mut identity_units = Array2::<f32>::zeros((k, d));
        for (j, (row, mut dst)) in identity_features
            .outer_iter()
            .zip(identity_units.outer_iter_mut())
            .enumerate()
        {
            let u = unit(row, "reference un-augmented views", j)?;
            dst.iter_mut().zip(u).for_each(|(a, b)| *a = b as f32);
        }
        Ok(Self {
            image_means: image_means.to_owned(),
            image_m_in,
            identity_units,
        })
    }

    /// From X⁽¹⁾'s features `(K, 1 + n, D)`, each image's un-augmented view first and then its `n ≥ 2`
    /// transforms (cadet-detect's `ViewLayout::IdentityFirst`, what `Cadet::transform_features` returns with
    /// `identity_view(true)`).
    pub fn from_features(features: ArrayView3<'_, f32>) -> Result<Self> {
        let (k, views, d) = features.dim();
        if views < 3 {
            return Err(Error::Input {
                what: "reference features",
                reason: format!(
                    "(K, 1 + n, D) with n ≥ 2 transforms after the un-augmented view, got {:?}",
                    features.dim()
                ),
            });
        }
        let mut means = Array2::<f32>::zeros((k, d));
        for (i, (image, mut dst)) in features
            .outer_iter()
            .zip(means.outer_iter_mut())
            .enumerate()
        {
            let mut sum = vec![0.0f64; d];
            for z in image.slice(s![1.., ..]).outer_iter() {
                sum.iter_mut()
                    .zip(unit(z, "reference transform features", i)?)
                    .for_each(|(a, b)| *a += b);
            }
            dst.iter_mut()
                .zip(sum)
                .for_each(|(a, b)| *a = (b / (views - 1) as f64) as f32);
        }
        Self::new(means.view(), features.index_axis(Axis(1), 0), views - 1)
    }

    /// `K = |X⁽¹⁾|`.
    pub fn len(&self) -> usize {
        self.image_means.nrows()
    }

    /// Whether the reference has no image (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Feature dimension `D`.
    pub fn dim(&self) -> usize {
        self.image_means.ncols()
    }

    /// Each reference image's `m_in_j`.
    pub fn image_m_in(&self) -> &[f64] {
        &self.image_m_in
    }
}

/// Which statistics the surrogate rewards, and how much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurrogateTerms {
    /// The `k` of each local cos term.
    pub local_cosine_k: Vec<usize>,
    /// The `k` of each identity cos term.
    pub identity_cosine_k: Vec<usize>,
    /// Reward view agreement.
    pub view_agreement: bool,
    /// Penalise the square of local `m_in` with this `k` (needs at least 2 transforms).
    pub local_m_in_k: Option<usize>,
    /// Weight `λ ≥ 0` of the detector terms against the classifier's loss.
    pub lambda: f32,
}

impl SurrogateTerms {
    /// The statistics of cadet-report's headline method (`DetectionMethod::fisher_views(50, 1, 10)`): local cos
    /// and identity cos at `k` = 1 and 10, view agreement, local `m_in` at `k` = 50; `λ` = 1.
    pub fn headline() -> Self {
        Self {
            local_cosine_k: vec![1, 10],
            identity_cosine_k: vec![1, 10],
            view_agreement: true,
            local_m_in_k: Some(50),
            lambda: 1.0,
        }
    }
}

/// The surrogate's statistics of a batch of images, one value per image in each vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurrogateStatistics {
    /// `m_in`.
    pub m_in: Vec<f64>,
    /// Local `m_in` (`m_in` minus the mean `m_in_j` of the nearest reference images), when a term asks for it.
    pub local_m_in: Option<Vec<f64>>,
    /// Local cos, one vector per `k` of [`SurrogateTerms::local_cosine_k`].
    pub local_cosine: Vec<Vec<f64>>,
    /// Identity cos, one vector per `k` of [`SurrogateTerms::identity_cosine_k`].
    pub identity_cosine: Vec<Vec<f64>>,
    /// View agreement (always computed).
    pub view_agreement: Vec<f64>,
}

/// The statistics as tensors of shape `(B)`, still in the graph.
struct Terms {
    m_in: Tensor<1>,
    local_m_in: Option<Tensor<1>>,
    local_cosine: Vec<Tensor<1>>,
    identity_cosine: Vec<Tensor<1>>,
    view_agreement: Tensor<1>,
}

/// A differentiable surrogate of CADet's statistics: an encoder, a reference and the rewarded terms.
pub struct CadetSurrogate<'a> {
    encoder: &'a dyn ImageEncoder,
    reference: SurrogateReference,
    terms: SurrogateTerms,
}

impl std::fmt::Debug for CadetSurrogate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CadetSurrogate")
            .field("reference_images", &self.reference.len())
            .field("dim", &self.reference.dim())
            .field("terms", &self.terms)
            .finish_non_exhaustive()
    }
}

/// Rows of `(B, D)` scaled to unit length.
fn unit_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// A tensor's values on the host.
fn host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(Error::Readback)
}

/// Per row of the row-major `rows × cols` matrix `values`, the indices of the `k` largest (ties to the lower
/// index).
fn top_k(values: &[f32], cols: usize, k: usize) -> Vec<Vec<usize>> {
    values
        .chunks(cols)
        .map(|row| {
            let mut order: Vec<usize> = (0..cols).collect();
            order.sort_by(|a, b| row[*b].total_cmp(&row[*a]).then(a.cmp(b)));
            order.truncate(k);
            order
        })
        .collect()
}

/// Mean over the chosen columns of each row of `m` `(B, K)`, in the graph.
fn gathered_mean(m: Tensor<2>, chosen: &[Vec<usize>], k: usize) -> Tensor<1> {
    let b = chosen.len();
    let idx: Vec<i64> = chosen.iter().flatten().map(|&j| j as i64).collect();
    let device = m.device();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [b, k]), &device);
    m.gather(1, idx).mean_dim(1).reshape([b])
}

impl<'a> CadetSurrogate<'a> {
    /// The surrogate of `encoder` against `reference`; checks every `k` (`1 ≤ k ≤ K`) and `λ` (finite, ≥ 0).
    pub fn new(
        encoder: &'a dyn ImageEncoder,
        reference: SurrogateReference,
        terms: SurrogateTerms,
    ) -> Result<Self> {
        if !(terms.lambda.is_finite() && terms.lambda >= 0.0) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "lambda",
                reason: format!("must be finite and ≥ 0, got {}", terms.lambda),
            }));
        }
        let k_max = reference.len();
        if let Some(k) = terms
            .local_cosine_k
            .iter()
            .chain(&terms.identity_cosine_k)
            .chain(terms.local_m_in_k.iter())
            .find(|&&k| k == 0 || k > k_max)
        {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "k",
                reason: format!("needs 1 ≤ k ≤ |X(1)| = {k_max}, got {k}"),
            }));
        }
        Ok(Self {
            encoder,
            reference,
            terms,
        })
    }

    /// The rewarded terms.
    pub fn terms(&self) -> &SurrogateTerms {
        &self.terms
    }

    /// The reference.
    pub fn reference(&self) -> &SurrogateReference {
        &self.reference
    }

    /// The least number of transforms per image the terms need (2 with local `m_in`, else 1).
    pub fn min_transforms(&self) -> usize {
        if self.terms.local_m_in_k.is_some() {
            2
        } else {
            1
        }
    }

    /// The encoder's features of `images` `(N, C, H, W)` (in the graph).
    pub(crate) fn features(&self, images: Tensor<4>) -> Tensor<2> {
        self.encoder.features(images)
    }

    /// The statistics, in the graph, from the un-augmented views' features `(B, D)` and the transforms'
    /// `(B, n, D)` (raw, normalised here).
    fn terms_of(&self, identity: Tensor<2>, transforms: Tensor<3>) -> Result<Terms> {
        let [b, n, d] = transforms.dims();
        let [bi, di] = identity.dims();
        if bi != b || di != d || d != self.reference.dim() || b == 0 || n == 0 {
            return Err(Error::Input {
                what: "surrogate features",
                reason: format!(
                    "un-augmented views [{bi}, {di}] and transforms [{b}, {n}, {d}] against a reference of \
                     dimension {}",
                    self.reference.dim()
                ),
            });
        }
        if n < self.min_transforms() {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "samples",
                reason: format!("local m_in needs at least 2 transforms per image, got {n}"),
            }));
        }
        let device = identity.device();
        let z = unit_rows(transforms.reshape([b * n, d])).reshape([b, n, d]);
        let sum = z.sum_dim(1).reshape([b, d]);
        let nf = n as f32;
        let norm2 = sum.clone().powi_scalar(2).sum_dim(1).reshape([b]);
        let m_in = if n >= 2 {
            (norm2.clone() - nf) / (nf * (nf - 1.0))
        } else {
            norm2.clone().zeros_like()
        };
        let mean = sum / nf;
        let mean_unit = unit_rows(mean.clone());
        let v = unit_rows(identity);
        let view_agreement = (v.clone() * mean_unit.clone()).sum_dim(1).reshape([b]);
        let k = self.reference.len();
        let refs = |a: &Array2<f32>| {
            Tensor::<2>::from_data(
                TensorData::new(a.iter().copied().collect::<Vec<f32>>(), [k, d]),
                &device,
            )
        };
        let (mut local_cosine, mut local_m_in) = (Vec::new(), None);
        if !self.terms.local_cosine_k.is_empty() || self.terms.local_m_in_k.is_some() {
            // cos(ū, ū_j): the unit ū against the unit ū_j.
            let ref_units = unit_rows(refs(&self.reference.image_means));
            let cos = mean_unit.matmul(ref_units.transpose());
            let values = host(cos.clone().detach())?;
            for &kk in &self.terms.local_cosine_k {
                local_cosine.push(gathered_mean(cos.clone(), &top_k(&values, k, kk), kk));
            }
            if let Some(kk) = self.terms.local_m_in_k {
                let neighbours: Vec<f32> = top_k(&values, k, kk)
                    .iter()
                    .map(|js| {
                        (js.iter()
                            .map(|&j| self.reference.image_m_in[j])
                            .sum::<f64>()
                            / kk as f64) as f32
                    })
                    .collect();
                let neighbours = Tensor::<1>::from_data(TensorData::new(neighbours, [b]), &device);
                local_m_in = Some(m_in.clone() - neighbours);
            }
        }
        let mut identity_cosine = Vec::new();
        if !self.terms.identity_cosine_k.is_empty() {
            let cos = v.matmul(refs(&self.reference.identity_units).transpose());
            let values = host(cos.clone().detach())?;
            for &kk in &self.terms.identity_cosine_k {
                identity_cosine.push(gathered_mean(cos.clone(), &top_k(&values, k, kk), kk));
            }
        }
        Ok(Terms {
            m_in,
            local_m_in,
            local_cosine,
            identity_cosine,
            view_agreement,
        })
    }

    /// The attacker's reward summed over the batch, in the graph: `λ · Σ_images (Σ cosines + agreement −
    /// local m_in²)` (the terms [`SurrogateTerms`] selects).
    pub(crate) fn reward(&self, identity: Tensor<2>, transforms: Tensor<3>) -> Result<Tensor<1>> {
        let t = self.terms_of(identity, transforms)?;
        let mut r = t.view_agreement.clone().zeros_like();
        for c in t.local_cosine.into_iter().chain(t.identity_cosine) {
            r = r + c;
        }
        if self.terms.view_agreement {
            r = r + t.view_agreement;
        }
        if let Some(res) = t.local_m_in {
            r = r - res.powi_scalar(2);
        }
        Ok(r.sum() * self.terms.lambda)
    }

    /// The statistics from features computed elsewhere: the un-augmented views' `(B, D)` and the transforms'
    /// `(B, n, D)` (raw features; any device).
    pub fn statistics_of_features(
        &self,
        identity: Tensor<2>,
        transforms: Tensor<3>,
    ) -> Result<SurrogateStatistics> {
        let t = self.terms_of(identity, transforms)?;
        let to = |x: Tensor<1>| -> Result<Vec<f64>> {
            Ok(host(x)?.into_iter().map(f64::from).collect())
        };
        Ok(SurrogateStatistics {
            m_in: to(t.m_in)?,
            local_m_in: t.local_m_in.map(to).transpose()?,
            local_cosine: t.local_cosine.into_iter().map(to).collect::<Result<_>>()?,
            identity_cosine: t
                .identity_cosine
                .into_iter()
                .map(to)
                .collect::<Result<_>>()?,
            view_agreement: to(t.view_agreement)?,
        })
    }

    /// The statistics of `images` `(B, C, H, W)` in `[0, 1]` on `device` (the encoder's), from `n` transforms
    /// of each drawn from `transform` with `seed` (image `i` from stream `i`) and the image itself as the
    /// un-augmented view.
    pub fn statistics(
        &self,
        images: ArrayView4<'_, f32>,
        n: usize,
        transform: &EvalTransform,
        seed: u64,
        device: &Device,
    ) -> Result<SurrogateStatistics> {
        transform.validate()?;
        let (b, _, h, w) = images.dim();
        if b == 0 || n == 0 {
            return Err(Error::Input {
                what: "images",
                reason: format!("{b} images and {n} transforms"),
            });
        }
        let x = crate::common::to_tensor(images, device).detach();
        let mut draws = Vec::with_capacity(b * n);
        for i in 0..b {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64);
            draws.extend((0..n).map(|_| transform.sample(h, w, &mut rng)));
        }
        // Image-major: image i's transforms are rows i·n .. (i + 1)·n.
        let repeated =
            x.clone()
                .unsqueeze_dim::<5>(1)
                .repeat_dim(1, n)
                .reshape([b * n, images.dim().1, h, w]);
        let t = apply_transforms(repeated, &draws, [h, w])?;
        let f = self.features(Tensor::cat(vec![x, t], 0)).detach();
        let d = f.dims()[1];
        let identity = f.clone().slice([0..b, 0..d]);
        let transforms = f.slice([b..b + b * n, 0..d]).reshape([b, n, d]);
        self.statistics_of_features(identity, transforms)
    }
}
