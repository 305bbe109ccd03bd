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
#[cfg(feature = "model")]
pub mod training;

/// README's Rust snippets, compiled and run as doctests so that they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
