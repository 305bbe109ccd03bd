//! Statistics of an image's transform features (and un-augmented view) against a stored [`Reference`]: the
//! paper's `m_in` and `m_out`, and the extensions below.
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
//!
//! With the un-augmented view's feature `v` beside the transforms ([`ViewLayout::IdentityFirst`]), and `v_j`
//! the same for reference image `j`:
//! - `view agreement`: `cos(v, ū)`, how well the un-augmented view agrees with the image's transforms. An
//!   adversarial perturbation is crafted on the un-augmented view, and crops and flips undo part of it, so the
//!   perturbed view disagrees with its own transforms; an in-distribution image's views agree;
//! - `identity cos (k)`: the mean of the `k` largest `cos(v, v_j)`, the k-NN detector's statistic.

use cadet_core::linalg::{Threads, matmul};
use ndarray::{Array2, ArrayView2, ArrayView3, Axis, s};
use serde::{Deserialize, Serialize};

use crate::stats::{ViewStats, mean_unit_feature, view_stats};
use crate::{Error, Result};

/// One statistic of an image's transforms (and, for the last two, of its un-augmented view).
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
    /// Cosine between the un-augmented view's feature and the image's mean unit transform feature `ū`
    /// (needs [`ViewLayout::IdentityFirst`]). An adversarial perturbation is crafted on the un-augmented view;
    /// crops, rescaling and flips undo part of it, so the perturbed view stops agreeing with the image's own
    /// transforms, which a clean image's views do (low = anomalous).
    ViewAgreement,
    /// Mean of the `k` largest cosine similarities between the un-augmented view's feature and the reference
    /// images' un-augmented views: the k-NN detector's statistic, calibrated like the others (needs
    /// [`ViewLayout::IdentityFirst`] for both the image and the reference).
    IdentityCosine {
        /// Nearest reference images averaged, `1 ≤ k ≤ |X⁽¹⁾|`.
        k: usize,
    },
}

/// The most images a reference X⁽¹⁾ may have (a billion): a calibration file claiming more is refused.
pub const MAX_REFERENCE_IMAGES: usize = 1_000_000_000;

/// Where an image's un-augmented view sits along the views axis of a features array `(N, views, d)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewLayout {
    /// The `n_trs` evaluation transforms only (the paper's).
    #[default]
    Transforms,
    /// The un-augmented view first ([`cadet_augment::CadetEval::identity_view`]), then the `n_trs` transforms:
    /// `1 + n_trs` views per image.
    IdentityFirst,
}

impl ViewLayout {
    /// Whether the layout is the paper's, transforms only.
    pub fn is_transforms_only(&self) -> bool {
        *self == Self::Transforms
    }

    /// Views per image for `n_trs` transforms.
    pub fn views(self, n_trs: usize) -> usize {
        n_trs + usize::from(self == Self::IdentityFirst)
    }

    /// The un-augmented views `(N, d)` (when the layout has them) and the transforms `(N, n_trs, d)` of
    /// `features`.
    pub fn split(
        self,
        features: ArrayView3<'_, f32>,
    ) -> Result<(Option<ArrayView2<'_, f32>>, ArrayView3<'_, f32>)> {
        match self {
            Self::Transforms => Ok((None, features)),
            Self::IdentityFirst => {
                let (n, views, d) = features.dim();
                if views < 2 {
                    return Err(Error::ShapeMismatch {
                        what: "features with the un-augmented view first (images, 1 + n_trs, d)",
                        // The view and at least one transform (m_in then asks for 2).
                        expected: vec![n, 2, d],
                        got: vec![n, views, d],
                    });
                }
                Ok((
                    Some(features.index_axis_move(Axis(1), 0)),
                    features.slice_move(s![.., 1.., ..]),
                ))
            }
        }
    }
}

impl Statistic {
    /// The values the statistic can take, with room for `f32` rounding: cosines and means of cosines lie in
    /// `[−1, 1]`, `local m_in` (a difference of two) in `[−2, 2]`, `feature norm` is non-negative and below
    /// `√f64::MAX` (so that its square, in the weighted sum's variance, stays finite). A stored value outside is
    /// not something an embedder produced: calibrations read from files are refused with it.
    pub fn range(&self) -> (f64, f64) {
        const SLACK: f64 = 1e-4;
        match self {
            Self::LocalMIn { .. } => (-2.0 - SLACK, 2.0 + SLACK),
            Self::FeatureNorm => (0.0, f64::MAX.sqrt()),
            _ => (-1.0 - SLACK, 1.0 + SLACK),
        }
    }

    /// How many nearest reference images the statistic averages (its `k`; 0 for those that use none or all).
    pub fn reference_images(&self) -> usize {
        match *self {
            Self::LocalMOut { k }
            | Self::LocalCosine { k }
            | Self::LocalMIn { k }
            | Self::IdentityCosine { k } => k,
            Self::MIn | Self::MOut | Self::FeatureNorm | Self::ViewAgreement => 0,
        }
    }

    /// Short name for tables: `m_in`, `m_out`, `local m_out (k=5)`, `norm`.
    pub fn label(&self) -> String {
        match self {
            Self::MIn => "m_in".into(),
            Self::MOut => "m_out".into(),
            Self::LocalMOut { k } => format!("local m_out (k={k})"),
            Self::LocalCosine { k } => format!("local cos (k={k})"),
            Self::LocalMIn { k } => format!("local m_in (k={k})"),
            Self::FeatureNorm => "norm".into(),
            Self::ViewAgreement => "view agreement".into(),
            Self::IdentityCosine { k } => format!("identity cos (k={k})"),
        }
    }

    /// Whether the statistic needs the un-augmented view's features ([`ViewLayout::IdentityFirst`]).
    pub fn needs_identity_view(&self) -> bool {
        matches!(self, Self::ViewAgreement | Self::IdentityCosine { .. })
    }
}

/// How far a reference's μ may be from the mean of the per-image features it stores (f32 rounding of the
/// stored means is about 1e-7).
const MU_TOLERANCE: f64 = 1e-5;

/// What scoring needs of X⁽¹⁾: `μ` (for `m_out`) and, when a local statistic is used, each reference image's
/// mean unit feature `ū_j` (an `|X⁽¹⁾| × d` matrix, `f32`), its `m_in`, and, for identity cos, the unit feature
/// of its un-augmented view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    size: usize,
    mu: Vec<f64>,
    /// Row-major `size × d`, or empty when not kept.
    image_means: Vec<f32>,
    /// Each reference image's `m_in` (kept with `image_means` when its images have 2 transforms or more).
    #[serde(default)]
    image_m_in: Vec<f64>,
    /// Row-major `size × d` unit features of each reference image's un-augmented view, or empty when not kept
    /// (then not written: a file without them reads as before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    identity_units: Vec<f32>,
}

impl Reference {
    /// From X⁽¹⁾'s features `(m, views, d)` laid out as `layout` says; `keep_images` keeps the `ū_j` (and,
    /// with the un-augmented views, their unit features) for local statistics.
    pub fn from_features(
        x1: ArrayView3<'_, f32>,
        layout: ViewLayout,
        keep_images: bool,
    ) -> Result<Self> {
        let (identity, x1) = layout.split(x1)?;
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
        let identity_units = match (keep_images, identity) {
            (true, Some(identity)) => unit_rows(identity)?.into_iter().collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            size: x1.dim().0,
            mu,
            image_means,
            image_m_in,
            identity_units,
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
            identity_units: Vec::new(),
        })
    }

    /// A reference holding `μ` only (a calibration file of version 1).
    pub(crate) fn from_mu(mu: Vec<f64>, size: usize) -> Self {
        Self {
            size,
            mu,
            image_means: Vec::new(),
            image_m_in: Vec::new(),
            identity_units: Vec::new(),
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
        self.per_image(&self.image_means)
    }

    /// A kept `|X⁽¹⁾| × d` row-major matrix as a view; `None` when not kept (empty).
    fn per_image<'a>(&self, values: &'a [f32]) -> Option<ArrayView2<'a, f32>> {
        if values.is_empty() {
            return None;
        }
        ArrayView2::from_shape((self.size, self.mu.len()), values).ok()
    }

    /// Whether the reference holds its images' un-augmented views (checked for shape by `check`).
    pub(crate) fn holds_identity_units(&self) -> bool {
        !self.identity_units.is_empty()
    }

    /// Forgets the un-augmented views (when no statistic compares with them).
    pub(crate) fn drop_identity_units(&mut self) {
        self.identity_units = Vec::new();
    }

    /// The unit features of the reference images' un-augmented views, `|X⁽¹⁾| × d`, when kept.
    pub fn identity_units(&self) -> Option<ArrayView2<'_, f32>> {
        self.per_image(&self.identity_units)
    }

    /// Checks `1 ≤ k ≤ |X⁽¹⁾|` for `statistic`.
    fn check_k(&self, statistic: Statistic, k: usize) -> Result<()> {
        if k == 0 {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "k",
                reason: format!(
                    "{} averages the k nearest reference images: k must be at least 1",
                    statistic.label()
                ),
            }));
        }
        if k > self.size {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "k",
                reason: format!(
                    "{} needs 1 ≤ k ≤ |X(1)| = {}, got {k}: give at least {k} reference images (X(1)), or a \
                     method with a smaller k",
                    statistic.label(),
                    self.size
                ),
            }));
        }
        Ok(())
    }

    /// Checks the reference supports `statistic`.
    pub fn supports(&self, statistic: Statistic) -> Result<()> {
        match statistic {
            Statistic::IdentityCosine { k } => {
                let label = statistic.label();
                self.check_k(statistic, k)?;
                if self.identity_units().is_none() {
                    return Err(Error::Core(cadet_core::Error::InvalidParameter {
                        name: "reference",
                        reason: format!(
                            "{label} needs the reference images' un-augmented views, which this reference \
                             does not hold (build it from features with the un-augmented view first)"
                        ),
                    }));
                }
                Ok(())
            }
            Statistic::LocalMOut { k }
            | Statistic::LocalCosine { k }
            | Statistic::LocalMIn { k } => {
                let label = statistic.label();
                self.check_k(statistic, k)?;
                // Local m_out at k = |X⁽¹⁾| is m_out, which μ alone gives; every other local statistic compares
                // with single reference images.
                let full_m_out = matches!(statistic, Statistic::LocalMOut { .. }) && k == self.size;
                if !full_m_out && self.image_means().is_none() {
                    return Err(Error::Core(cadet_core::Error::InvalidParameter {
                        name: "reference",
                        reason: format!(
                            "{label} needs the reference images' features, which this calibration does not hold"
                        ),
                    }));
                }
                if matches!(statistic, Statistic::LocalMIn { .. })
                    && self.image_m_in.len() != self.size
                {
                    return Err(Error::Core(cadet_core::Error::InvalidParameter {
                        name: "reference",
                        reason: format!(
                            "{label} needs the reference images' m_in: a reference built from transform \
                             features with at least 2 transforms per image"
                        ),
                    }));
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
        // A size read from a file is a claim: beyond a billion images no reference was ever embedded, and a
        // table would print whatever number the file holds.
        if self.size > MAX_REFERENCE_IMAGES {
            return Err(Error::Degenerate(format!(
                "reference: {} images, more than the {MAX_REFERENCE_IMAGES} a reference can hold",
                self.size
            )));
        }
        // μ is a mean of unit vectors: its norm is in (0, 1] (up to rounding). Zero would make every m_out 0,
        // above 1 no features give it.
        let norm = self.mu.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(norm > 0.0 && norm <= 1.0 + 1e-3) {
            return Err(Error::Degenerate(format!(
                "reference: μ has norm {norm:e}, a mean of unit features has a norm in (0, 1]"
            )));
        }
        if self.image_m_in.iter().any(|v| v.abs() > 1.0 + 1e-3) {
            return Err(Error::Degenerate(
                "reference: an image's m_in (a mean cosine) outside [-1, 1]".into(),
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
        self.check_per_image("image features", &self.image_means)?;
        self.check_per_image("un-augmented view features", &self.identity_units)?;
        // Each reference image once: a reference given twice over (hostile pass 18) counts its images twice in
        // every local statistic. Rows of mean features (d ≥ 2, f32) repeat only when images do.
        if let Some(means) = self.image_means() {
            let mut seen = std::collections::HashSet::with_capacity(means.nrows());
            let repeated = means
                .rows()
                .into_iter()
                .filter(|row| {
                    !seen.insert(
                        row.iter()
                            .map(|v| (v + 0.0).to_bits())
                            .collect::<Vec<u32>>(),
                    )
                })
                .count();
            if 2 * repeated >= means.nrows() && repeated > 0 {
                return Err(Error::Degenerate(format!(
                    "reference: {repeated} of its {} images' features repeat other images': the reference \
                     images given more than once",
                    means.nrows()
                )));
            }
        }
        // μ is the mean of the images' mean features: a file that drops (or adds, or edits) reference images
        // without recomputing μ scores against two different X⁽¹⁾ (the images' means are stored in f32, so
        // they agree to about 1e-7; dropping one of 4,000 images moves μ by about 2.5e-4).
        if let Some(means) = self.image_means() {
            let m = means.nrows() as f64;
            let worst = means
                .columns()
                .into_iter()
                .zip(&self.mu)
                .map(|(column, mu)| {
                    (column.iter().map(|&v| f64::from(v)).sum::<f64>() / m - mu).abs()
                })
                .fold(0.0f64, f64::max);
            if worst > MU_TOLERANCE {
                return Err(Error::Degenerate(format!(
                    "reference: μ differs from the mean of its {} images' features by {worst:.2e} (more than \
                     {MU_TOLERANCE:e}): the images or μ were changed after calibration",
                    self.size
                )));
            }
        }
        Ok(())
    }

    /// A kept per-image matrix holds `|X⁽¹⁾| × d` finite values (or nothing).
    fn check_per_image(&self, what: &str, values: &[f32]) -> Result<()> {
        if !values.is_empty()
            && (Some(values.len()) != self.size.checked_mul(self.mu.len())
                || values.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::Degenerate(format!(
                "reference: {} {what} for {} images of dimension {}, or not finite",
                values.len(),
                self.size,
                self.mu.len()
            )));
        }
        // Each image's row is a mean of unit vectors or a unit vector: a zero row (never produced from features,
        // which refuse zero norms) would make every cosine with it undefined, a norm above 1 is not a mean of unit
        // vectors.
        if let Some(row) = values.chunks(self.mu.len().max(1)).position(|r| {
            let norm = r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
            !(norm > 0.0 && norm <= 1.0 + 1e-3)
        }) {
            return Err(Error::Degenerate(format!(
                "reference: {what} of image {row} are all zero or have a norm above 1 (unit features' means have \
                 norms in (0, 1])"
            )));
        }
        Ok(())
    }
}

/// The mean unit feature `ū` of one image's transforms (`n_trs × d`).
fn mean_unit(features: ArrayView2<'_, f32>) -> Result<Vec<f64>> {
    mean_unit_feature(features.insert_axis(Axis(0)))
}

/// Each row of `views` (`N × d`, un-augmented views) scaled to unit length, `f32`, the norm taken in `f64` (a
/// tiny or huge row is still a direction); a non-finite value or a zero row is an error naming its image.
fn unit_rows(views: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    const WHAT: &str = "un-augmented view features [image, component]";
    let mut out = Array2::<f32>::zeros(views.dim());
    for (i, (row, mut dst)) in views.outer_iter().zip(out.outer_iter_mut()).enumerate() {
        if let Some((j, &v)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(cadet_core::Error::NonFinite {
                what: WHAT,
                index: vec![i, j],
                value: f64::from(v),
            }
            .into());
        }
        let norm = row
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return Err(cadet_core::Error::ZeroNorm {
                what: "un-augmented view features (image)",
                row: i,
            }
            .into());
        }
        dst.iter_mut()
            .zip(row)
            .for_each(|(d, &v)| *d = (f64::from(v) / norm) as f32);
    }
    Ok(out)
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

/// The `statistics` of each image of `features` `(N, views, d)`, laid out as `layout` says, against
/// `reference`. Local statistics take one blocked matrix product of the images' `ū` (or un-augmented views) with
/// the reference's (`O(N · |X⁽¹⁾| · d)`); the others are `O(N · n_trs · d)`.
pub fn image_statistics(
    features: ArrayView3<'_, f32>,
    layout: ViewLayout,
    reference: &Reference,
    statistics: &[Statistic],
) -> Result<Vec<ImageStatistics>> {
    let (identity, features) = layout.split(features)?;
    if let (None, Some(s)) = (
        identity,
        statistics.iter().find(|s| s.needs_identity_view()),
    ) {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "layout",
            reason: format!(
                "{} needs the un-augmented view's features before the transforms (ViewLayout::IdentityFirst)",
                s.label()
            ),
        }));
    }
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
    let identity_values = match identity {
        Some(views) => identity_statistics(views, features, reference, statistics)?,
        None => vec![Vec::new(); n],
    };
    for (i, (image, stats)) in features.outer_iter().zip(out.iter_mut()).enumerate() {
        let (mut next_local, mut next_identity) = (0, 0);
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
                Statistic::ViewAgreement | Statistic::IdentityCosine { .. } => {
                    next_identity += 1;
                    identity_values[i][next_identity - 1]
                }
            };
            stats.values.push(v);
        }
    }
    Ok(out)
}

/// Per image, the values of the statistics of `statistics` that use the un-augmented view (`views`, `N × d`),
/// in their order: view agreement against the transforms' `ū`, identity cos by a blocked product with the
/// reference's un-augmented views.
fn identity_statistics(
    views: ArrayView2<'_, f32>,
    transforms: ArrayView3<'_, f32>,
    reference: &Reference,
    statistics: &[Statistic],
) -> Result<Vec<Vec<f64>>> {
    let wanted: Vec<Statistic> = statistics
        .iter()
        .copied()
        .filter(Statistic::needs_identity_view)
        .collect();
    let n = views.nrows();
    if wanted.is_empty() {
        return Ok(vec![Vec::new(); n]);
    }
    if views.ncols() != reference.dim() {
        return Err(Error::ShapeMismatch {
            what: "un-augmented view features",
            expected: vec![n, reference.dim()],
            got: vec![n, views.ncols()],
        });
    }
    let units = unit_rows(views)?;
    let mut out: Vec<Vec<f64>> = vec![Vec::with_capacity(wanted.len()); n];
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        // cos(v, v_j) for the block: both sides are unit rows.
        let cosines = match reference.identity_units() {
            Some(refs)
                if wanted
                    .iter()
                    .any(|s| matches!(s, Statistic::IdentityCosine { .. })) =>
            {
                Some(matmul(
                    units.slice(s![start..end, ..]),
                    refs.t(),
                    Threads::Rayon,
                )?)
            }
            _ => None,
        };
        for (i, values) in out.iter_mut().enumerate().take(end).skip(start) {
            for s in &wanted {
                let v = match *s {
                    Statistic::ViewAgreement => {
                        let mean = mean_unit(transforms.index_axis(Axis(0), i)).map_err(|e| {
                            Error::InImage {
                                image: i,
                                source: Box::new(e),
                            }
                        })?;
                        let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
                        let dot: f64 = units
                            .row(i)
                            .iter()
                            .zip(&mean)
                            .map(|(&a, b)| f64::from(a) * b)
                            .sum();
                        dot / norm.max(f64::MIN_POSITIVE)
                    }
                    Statistic::IdentityCosine { k } => match &cosines {
                        Some(c) => top_k_mean(c.row(i - start).to_vec(), k),
                        // Reference::supports rejects this before any work; kept as an error, not a panic.
                        None => {
                            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                                name: "reference",
                                reason: format!(
                                    "{} needs the reference's un-augmented views",
                                    s.label()
                                ),
                            }));
                        }
                    },
                    _ => unreachable!("statistics of the un-augmented view only"),
                };
                values.push(v);
            }
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
        let r = Reference::from_features(x1.view(), ViewLayout::Transforms, true).unwrap();
        let test = array![[[1.0f32, 0.0], [5.0, 0.0]]];
        let stats = [
            Statistic::LocalMOut { k: 1 },
            Statistic::LocalMOut { k: 2 },
            Statistic::MOut,
            Statistic::FeatureNorm,
        ];
        let s = image_statistics(test.view(), ViewLayout::Transforms, &r, &stats).unwrap();
        let v = &s[0].values;
        assert!(
            (v[0] - 1.0).abs() < 1e-7 && (v[1] - 0.5).abs() < 1e-12,
            "{v:?}"
        );
        assert!(
            (v[2] - 0.5).abs() < 1e-12 && (v[3] - 3.0).abs() < 1e-12,
            "{v:?}"
        );
        assert!(
            image_statistics(
                test.view(),
                ViewLayout::Transforms,
                &r,
                &[Statistic::LocalMOut { k: 3 }]
            )
            .is_err()
        );
        assert!(
            image_statistics(
                test.view(),
                ViewLayout::Transforms,
                &r,
                &[Statistic::LocalMOut { k: 0 }]
            )
            .is_err()
        );
        let no_images = Reference::from_features(x1.view(), ViewLayout::Transforms, false).unwrap();
        assert!(
            image_statistics(
                test.view(),
                ViewLayout::Transforms,
                &no_images,
                &[Statistic::LocalMOut { k: 1 }]
            )
            .is_err()
        );
    }
}
