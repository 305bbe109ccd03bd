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
#[cfg(feature = "model")]
pub use cadet_model as model;
#[cfg(feature = "model")]
pub mod training;
