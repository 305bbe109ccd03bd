//! # cadet
//!
//! Contrastive anomaly detection (CADet, Guille-Escuret et al., NeurIPS 2023) in Rust: this facade re-exports the
//! workspace's crates so that one dependency is enough.
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`core`] | `cadet-core` | `Embedder` and `Kernel` traits, errors, detection metrics |
//! | [`augment`] | `cadet-augment` | SimCLR training views, CADet evaluation views, batches of views |
//! | [`data`] | `cadet-data` | loaders (CIFAR, `.npy`, image folders, IDX), splits, the synthetic data set |
//! | [`detect`] | `cadet-detect` | CADet calibration and scoring with p-values, label-based baselines, evaluation |
//! | `attacks` | `cadet-attacks` | PGD, CW, FGSM against any Burn classifier (feature `model`, default) |
//! | `model` | `cadet-model` | ResNets, SimCLRv2 head and NT-Xent on Burn, pretrained CIFAR ResNets, `BurnEmbedder` (feature `model`, default) |
//! | [`mmd`] | `cadet-mmd` | unbiased MMD², permutation tests, MMD-CC, the paper's Table 1–2 experiments |
//! | [`ndarray`] | `ndarray` | the array crate every signature uses, at the version these crates were built with |
//! | [`prelude`] | | one `use cadet::prelude::*;` for calibrating and scoring |
//!
//! The examples print and draw what CADet found with the unpublished `cadet-report` crate (tables, ROC curves,
//! histograms), so that depending on `cadet` does not compile plotting and fonts.
//!
//! ```
//! use cadet::mmd::{CosineKernel, PermutationTest};
//! use ndarray::Array2;
//!
//! let x = Array2::from_shape_fn((30, 4), |(i, j)| ((i * 7 + j * 3) % 5) as f32 + 1.0);
//! let y = Array2::from_shape_fn((30, 4), |(i, j)| ((i * 5 + j) % 7) as f32 + 1.0);
//! let test = PermutationTest::params().n_perm(200).seed(1).check()?;
//! let result = test.two_sample(x.view(), y.view(), &CosineKernel)?;
//! assert!(result.p_value > 0.0 && result.p_value <= 1.0);
//! # Ok::<(), cadet::mmd::Error>(())
//! ```

#[cfg(feature = "model")]
pub use cadet_attacks as attacks;
pub use cadet_augment as augment;
pub use cadet_core as core;
/// The contracts every crate's signatures use, at the top so that `cadet` alone is enough.
pub use cadet_core::{Embedder, Kernel, NoProgress, Progress};
pub use cadet_data as data;
pub use cadet_detect as detect;
pub use cadet_mmd as mmd;
/// The `ndarray` every signature of these crates takes (arrays of images, features, statistics): use
/// `cadet::ndarray` rather than a separate `ndarray` dependency, whose version could differ (E0308, "multiple
/// different versions of crate `ndarray`").
pub use ndarray;

/// What a program that calibrates and scores needs, in one import: `use cadet::prelude::*;`.
///
/// ```
/// use cadet::prelude::*;
///
/// let x: Array2<f32> = Array2::zeros((2, 3));
/// assert_eq!(x.dim(), (2, 3));
/// let _ = DetectionMethod::paper();
/// ```
pub mod prelude {
    pub use crate::ndarray::{
        self, Array1, Array2, Array3, Array4, ArrayView2, ArrayView3, ArrayView4, s,
    };
    pub use cadet_core::limits::Limits;
    pub use cadet_core::{Embedder, Kernel, NoProgress, Progress};
    pub use cadet_detect::{
        Cadet, CadetParams, Calibration, Combination, Correction, Decisions, DetectionMethod,
        EmbedderIdentity, ImageScore, Scorer, Statistic, Tail, Verdict, decide, decide_scores,
    };
    pub use cadet_mmd::{
        CosineKernel, DriftMonitor, DriftResult, GaussianKernel, LinearKernel, PermutationTest,
        TestResult,
    };
}
#[cfg(feature = "model")]
pub use cadet_model as model;
/// The `burn` these crates were built with (its `Device`, `Tensor`, modules and configs): use `cadet::burn`
/// rather than a separate `burn` dependency, whose version could differ.
#[cfg(feature = "model")]
pub use cadet_model::burn;
#[cfg(feature = "model")]
pub mod training;

/// README's Rust snippets, compiled and run as doctests so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// docs/guide.md's Rust snippets, compiled (and, unless they need files or devices a test machine lacks, run) as
/// doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
pub struct GuideDoctests;

/// What the guide's snippets take as given (an embedder and three small image sets), so that each snippet shows
/// only its own point: one hidden line, `# let (embedder, x1, x2, images) = cadet::__guide::setup()?;`. Not part
/// of the API: doctests are compiled against the library as users get it, so this cannot be `cfg(doctest)`.
#[doc(hidden)]
pub mod __guide {
    use crate::prelude::*;

    /// The guide's stand-in model: 8 × 8 average pooling of 32 × 32 RGB images, 48 features.
    pub struct Pooled;

    impl Embedder for Pooled {
        fn dim(&self) -> usize {
            48
        }
        fn embed(&self, x: ArrayView4<'_, f32>) -> cadet_core::Result<Array2<f32>> {
            Ok(Array2::from_shape_fn((x.dim().0, 48), |(i, k)| {
                let (c, y, z) = (k / 16, 8 * (k / 4 % 4), 8 * (k % 4));
                x.slice(s![i, c, y..y + 8, z..z + 8]).mean().unwrap_or(0.0)
            }))
        }
        fn name(&self) -> String {
            "pooled-8x8-v1".into()
        }
    }

    /// The embedder and three disjoint sets of 32 × 32 synthetic images: X⁽¹⁾ (60), X⁽²⁾ (120), test (40).
    #[allow(clippy::type_complexity)]
    pub fn setup() -> Result<(Pooled, Array4<f32>, Array4<f32>, Array4<f32>), cadet_data::Error> {
        let data = cadet_data::Synthetic {
            classes: 4,
            per_class: 60,
            size: 32,
            seed: 1,
            plain: false,
        }
        .generate()?;
        let parts = data.split(&[60, 120, 40], 0)?;
        Ok((
            Pooled,
            parts[0].images_f32(),
            parts[1].images_f32(),
            parts[2].images_f32(),
        ))
    }
}
