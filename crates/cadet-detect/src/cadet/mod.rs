//! CADet (Guille-Escuret et al., NeurIPS 2023, §3): calibrate on two held-out in-distribution sets, then score images to p-values.

mod calibration;
mod features;
mod same_images;

pub use calibration::{Calibration, EmbedderIdentity, ImageScore, Scorer};

use cadet_augment::{CadetEval, cadet_eval};
use cadet_core::{Embedder, Progress};
use ndarray::{Array3, ArrayView4};
use serde::{Deserialize, Serialize};

use crate::method::{DetectionMethod, ViewLayout};
use crate::{Error, Result};

/// Which random stream an image's evaluation transforms are drawn from. An image's stream is its set's domain
/// plus a 40-bit hash of its pixels, so the sets' streams never overlap and an image's views depend on its
/// content and its set only, not on its batch or position. Calibration draws X⁽¹⁾ from [`Stream::X1`] and X⁽²⁾
/// from [`Stream::X2`]; scoring draws from [`Stream::Scored`], so features made with
/// [`Cadet::transform_features`] on those streams equal what `calibrate` and `score` compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The reference set X⁽¹⁾ (domain 0).
    X1,
    /// The calibration set X⁽²⁾ (domain `1 << 40`).
    X2,
    /// Images scored against a calibration (domain `2 << 40`).
    Scored,
    /// Another set of the caller's, `k = 0, 1, …` (domain `(3 + k) << 40`), e.g. a pool kept for resampling.
    Extra(u32),
}

impl Stream {
    /// The stream's domain: its index shifted past the 40 bits of the content hash.
    pub fn domain(self) -> u64 {
        let index = match self {
            Self::X1 => 0,
            Self::X2 => 1,
            Self::Scored => 2,
            Self::Extra(k) => 3 + u64::from(k),
        };
        index << 40
    }
}

/// The most transforms per image [`CadetParams::check`] accepts: far above any useful count (the paper uses 50;
/// the statistics settle by a few hundred), low enough that view counts and feature sizes cannot overflow.
pub const MAX_TRANSFORMS: usize = 4096;

/// Unchecked settings of [`Cadet`]: [`Cadet::params`] (the recommended method) or [`Cadet::paper`] (the paper's),
/// then `.n_trs(…)`, `.method(…)`, … and [`check`](CadetParams::check).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CadetParams {
    pub(crate) n_trs: usize,
    pub(crate) pipeline: CadetEval,
    pub(crate) seed: u64,
    pub(crate) batch_images: usize,
    /// Statistics and their combination; version-1 files, which have none, are the paper's.
    #[serde(default)]
    pub(crate) method: DetectionMethod,
    /// Whether each image's features start with its un-augmented view (files before version 3: no; not written
    /// when no, so such a file reads as before).
    #[serde(default, skip_serializing_if = "ViewLayout::is_transforms_only")]
    pub(crate) layout: ViewLayout,
    /// Whether [`CadetParams::identity_view`] was called: until it is, the layout follows the method (the
    /// un-augmented view exactly when the method needs it), whatever the order of the calls.
    #[serde(skip)]
    pub(crate) layout_chosen: bool,
}

/// Equal settings: the same transforms, seed, batch, method and view layout (however the layout was chosen).
impl PartialEq for CadetParams {
    fn eq(&self, other: &Self) -> bool {
        self.n_trs == other.n_trs
            && self.pipeline == other.pipeline
            && self.seed == other.seed
            && self.batch_images == other.batch_images
            && self.method == other.method
            && self.layout == other.layout
    }
}

/// The layout a method gets unless [`CadetParams::identity_view`] chooses one: the un-augmented view exactly when
/// the method needs it.
fn layout_for(method: &DetectionMethod) -> ViewLayout {
    if method.needs_identity_view() {
        ViewLayout::IdentityFirst
    } else {
        ViewLayout::Transforms
    }
}

impl CadetParams {
    /// Transforms per image (the paper: 50; at least 2).
    pub fn n_trs(mut self, n_trs: usize) -> Self {
        self.n_trs = n_trs;
        self
    }
    /// The evaluation pipeline (the paper's: `cadet_eval(size)`, with a resize to 256 for 224 px ImageNet).
    pub fn pipeline(mut self, pipeline: CadetEval) -> Self {
        self.pipeline = pipeline;
        self
    }
    /// Seed of the transforms.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Images per call to the embedder (each contributes `n_trs` views, one more with the un-augmented view);
    /// larger batches feed a GPU better.
    pub fn batch_images(mut self, batch_images: usize) -> Self {
        self.batch_images = batch_images;
        self
    }
    /// The detection method (default with [`Cadet::params`]: [`DetectionMethod::recommended`]; with
    /// [`Cadet::paper`]: [`DetectionMethod::paper`], `m_in + γ·m_out`). Unless
    /// [`identity_view`](Self::identity_view) is given, the un-augmented view is embedded exactly when the method
    /// needs it.
    pub fn method(mut self, method: DetectionMethod) -> Self {
        if !self.layout_chosen {
            self.layout = layout_for(&method);
        }
        self.method = method;
        self
    }
    /// Whether to embed each image's un-augmented view ([`cadet_augment::CadetEval::identity_view`]) before its
    /// transforms: features become `(N, 1 + n_trs, d)` ([`ViewLayout::IdentityFirst`]), one more forward pass per
    /// image. Methods with [`Statistic::ViewAgreement`](crate::Statistic::ViewAgreement) or
    /// [`Statistic::IdentityCosine`](crate::Statistic::IdentityCosine) need it.
    pub fn identity_view(mut self, on: bool) -> Self {
        self.layout_chosen = true;
        self.layout = if on {
            ViewLayout::IdentityFirst
        } else {
            ViewLayout::Transforms
        };
        self
    }
    /// Checks every setting without consuming them (see [`ParamGuard`](cadet_core::params::ParamGuard)).
    pub fn validate(&self) -> Result<()> {
        self.method.validate()?;
        self.pipeline.validate()?;
        if self.method.needs_identity_view() && self.layout != ViewLayout::IdentityFirst {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "identity_view",
                reason: format!(
                    "{} needs the un-augmented view: leave CadetParams::identity_view at its default or set it to \
                     true, or choose a method without view statistics (Cadet::paper)",
                    self.method.label()
                ),
            }));
        }
        if !(2..=MAX_TRANSFORMS).contains(&self.n_trs) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "n_trs",
                reason: format!(
                    "2 to {MAX_TRANSFORMS} transforms per image (the paper: 50), got {}",
                    self.n_trs
                ),
            }));
        }
        if self.batch_images == 0 {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "batch_images",
                reason: "must be at least 1".into(),
            }));
        }
        Ok(())
    }

    /// Validates the settings and makes the detector (the [`ParamGuard`](cadet_core::params::ParamGuard) way in, without importing the
    /// trait).
    pub fn check(self) -> Result<Cadet> {
        self.validate()?;
        Ok(Cadet { params: self })
    }

    /// Transforms per image.
    pub fn transforms(&self) -> usize {
        self.n_trs
    }

    /// How each image's views are laid out in its features.
    pub fn layout(&self) -> ViewLayout {
        self.layout
    }
}

/// The CADet detector's settings, validated; [`Cadet::calibrate`] makes a [`Calibration`] that scores images.
///
/// ```
/// use cadet_core::{Embedder, NoProgress};
/// use cadet_detect::Cadet;
/// use ndarray::{Array2, Array4, ArrayView4};
///
/// /// A toy embedder: per-channel means and a corner pixel.
/// struct Toy;
/// impl Embedder for Toy {
///     fn dim(&self) -> usize { 4 }
///     fn embed(&self, x: ArrayView4<'_, f32>) -> cadet_core::Result<Array2<f32>> {
///         Ok(Array2::from_shape_fn((x.dim().0, 4), |(n, k)| {
///             if k < 3 { x.slice(ndarray::s![n, k, .., ..]).mean().unwrap() + 0.1 } else { x[[n, 0, 0, 0]] }
///         }))
///     }
/// }
/// let images = |n: usize, shift: usize| {
///     Array4::from_shape_fn((n, 3, 16, 16), |(i, c, y, x)| {
///         (((i + 100 * shift) * 7919 ^ (c * 31 + y * 17 + x)) % 251) as f32 / 250.0
///     })
/// };
/// let cadet = Cadet::params(16).n_trs(8).check()?;
/// // The recommended method compares each image with its 50 nearest reference images: |X1| ≥ 50.
/// let calibration = cadet.calibrate(&Toy, images(60, 0).view(), images(40, 3).view(), &NoProgress)?;
/// let scores = calibration.score(&Toy, images(5, 1).view(), &NoProgress)?;
/// assert!(scores.iter().all(|s| s.p_value > 0.0 && s.p_value <= 1.0));
/// # Ok::<(), cadet_detect::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Cadet {
    pub(crate) params: CadetParams,
}

cadet_core::param_guard!(CadetParams => Cadet, Error);

impl Cadet {
    /// The recommended settings for `size × size` views: [`DetectionMethod::recommended`] (Fisher's combination
    /// of local and view statistics, which needs **at least 50 reference images** in X⁽¹⁾ and embeds each image's
    /// un-augmented view besides its transforms), 50 transforms, `cadet_eval(size)`, seed 0, 16 images per
    /// embedder call. [`Cadet::paper`] gives the paper's method instead; `.method(…)` any other.
    ///
    /// Why not the paper's by default: on the encoders measured in this project (CIFAR ResNets, the quickstart's
    /// small SimCLR encoder) `m_in + γ·m_out` is at or below chance on unseen classes, where the recommended
    /// method detects them and adversarial images (docs/results.md).
    pub fn params(size: usize) -> CadetParams {
        Self::paper(size).method(DetectionMethod::recommended())
    }

    /// The paper's settings for `size × size` views: `m_in + γ·m_out` ([`DetectionMethod::paper`]), 50 transforms,
    /// `cadet_eval(size)`, seed 0, 16 images per embedder call; no minimum on |X⁽¹⁾| (the paper: 300 images).
    pub fn paper(size: usize) -> CadetParams {
        CadetParams {
            n_trs: 50,
            pipeline: cadet_eval(size),
            seed: 0,
            batch_images: 16,
            method: DetectionMethod::paper(),
            layout: ViewLayout::Transforms,
            layout_chosen: false,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &CadetParams {
        &self.params
    }

    /// The detection method these settings calibrate.
    pub fn method(&self) -> &DetectionMethod {
        &self.params.method
    }

    /// `(N, n_trs, d)` features of the `n_trs` evaluation transforms of each image (`(N, 1 + n_trs, d)`, the
    /// un-augmented view first, with [`CadetParams::identity_view`]), each image's views drawn from `stream`
    /// (see [`Stream`]: the same image gets the same views in any batch): what calibration ([`Stream::X1`],
    /// [`Stream::X2`]) and scoring ([`Stream::Scored`]) compute internally, for saving, for
    /// [`Cadet::calibrate_features`] or for scoring elsewhere. Images are `(N, C, H, W)` in `[0, 1]`.
    pub fn transform_features<E: Embedder + ?Sized>(
        &self,
        embedder: &E,
        images: ArrayView4<'_, f32>,
        stream: Stream,
        progress: &dyn Progress,
    ) -> Result<Array3<f32>> {
        progress.start("CADet transform features", images.dim().0 as u64);
        let out = features::transform_features(self, embedder, images, stream, progress)?;
        progress.finish();
        Ok(out)
    }

    /// Calibrates on two disjoint held-out in-distribution sets: `x1` (X⁽¹⁾, the paper: 300 images; any size, e.g.
    /// the training set, for local statistics) is the reference; `x2` (X⁽²⁾, the paper: 2000) fits the
    /// combination (for the paper's: `γ = sqrt(Var m_in / Var m_out)` and the calibration scores). Images are `(N, C, H, W)` in `[0, 1]`.
    pub fn calibrate<E: Embedder + ?Sized>(
        &self,
        embedder: &E,
        x1: ArrayView4<'_, f32>,
        x2: ArrayView4<'_, f32>,
        progress: &dyn Progress,
    ) -> Result<Calibration> {
        if x1.dim().0 == 0 || x2.dim().0 < 2 {
            return Err(Error::Degenerate(format!(
                "X(1) needs ≥ 1 image and X(2) ≥ 2, got {} and {}",
                x1.dim().0,
                x2.dim().0
            )));
        }
        if x1.shape()[1..] != x2.shape()[1..] {
            return Err(Error::ShapeMismatch {
                what: "X(2) images",
                expected: x1.shape().to_vec(),
                got: x2.shape().to_vec(),
            });
        }
        progress.start("CADet calibration: X(1)", x1.dim().0 as u64);
        let f1 = features::transform_features(self, embedder, x1, Stream::X1, progress)?;
        progress.start("CADet calibration: X(2)", x2.dim().0 as u64);
        let f2 = features::transform_features(self, embedder, x2, Stream::X2, progress)?;
        progress.finish();
        let identity = EmbedderIdentity::of(embedder, x1.shape()[1..].try_into().expect("3 dims"))?;
        self.calibrate_features(
            Some(identity),
            f1.view(),
            f2.view(),
            &cadet_core::NoProgress,
        )
    }
}
