//! # cadet-mmd
//!
//! Section 4 of CADet (Guille-Escuret et al., NeurIPS 2023) on any embeddings: the unbiased MMD² estimator (eq. 4), a
//! permutation test whose p-values are valid, MMD-CC (clean calibration), and the experiments behind the
//! paper's Tables 1 and 2.
//!
//! - [`mmd2_unbiased`]: eq. 4 (and Gretton's U-statistic for unequal sizes).
//! - [`PermutationTest`]: `p = (1 + #{null ≥ est}) / (n_perm + 1)`, seeded, every permutation of a chunk at
//!   once as one matrix product, chunks on all cores; [`PermutationTest::clean_calibration`] for MMD-CC.
//! - Kernels: [`CosineKernel`] (the paper's learned similarity on encoder features), [`LinearKernel`],
//!   [`GaussianKernel`] (fixed or median-heuristic bandwidth), [`EmbeddingKernel`] (any `Embedder` first).
//! - [`DriftMonitor`]: a fixed reference with its features precomputed, testing each incoming batch (drift
//!   monitoring over a stream) at `O(batch · D)` per permutation.
//! - [`experiments`]: rejection rates over repeated samplings (Table 1) and AUROC of small-set detection
//!   (Table 2).
//!
//! ```
//! use cadet_mmd::{CosineKernel, PermutationTest, mmd2_unbiased};
//! use ndarray::Array2;
//!
//! // Two samples of 50 embeddings; y is shifted along the first coordinate.
//! let x = Array2::from_shape_fn((50, 8), |(i, j)| (((i * 31 + j * 17) % 23) as f32 - 11.0) / 11.0);
//! let y = Array2::from_shape_fn((50, 8), |(i, j)| {
//!     (((i * 29 + j * 13) % 19) as f32 - 9.0) / 9.0 + if j == 0 { 3.0 } else { 0.0 }
//! });
//! let test = PermutationTest::params().n_perm(200).seed(0).check()?;
//! let result = test.two_sample(x.view(), y.view(), &CosineKernel)?;
//! assert_eq!(result.statistic, mmd2_unbiased(x.view(), y.view(), &CosineKernel)?);
//! assert!(result.p_value < 0.01); // the shift is detected
//! # Ok::<(), cadet_mmd::Error>(())
//! ```

pub mod drift;
mod error;
mod estimator;
pub mod experiments;
pub mod kernels;
mod permutation;
mod pooled;
mod sampling;

/// The cadet-core traits this crate's signatures use, so that depending on it alone is enough.
pub use cadet_core::params::ParamGuard;
pub use cadet_core::{Embedder, Kernel, NoProgress, Progress};
pub use drift::{DriftMonitor, DriftResult};
pub use error::{Error, Result};
pub use estimator::mmd2_unbiased;
pub use kernels::{Bandwidth, CosineKernel, EmbeddingKernel, GaussianKernel, LinearKernel};
pub use permutation::{
    MAX_PERMUTATIONS, Method, PermutationTest, PermutationTestParams, TestResult, p_value,
};
pub use pooled::{PooledSample, Representation};
