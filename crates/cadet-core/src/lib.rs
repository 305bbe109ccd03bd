//! # cadet-core
//!
//! The base of cadet-rs: the two contracts between the statistical crates and the neural ones, the shared error
//! type, input checks, a fast matrix product, and the detection metrics.
//!
//! - [`Embedder`]: images `(N, C, H, W)`, `f32` in `[0, 1]` → features `(N, D)`.
//! - [`Kernel`]: a symmetric similarity between feature rows (cosine, linear, Gaussian live in `cadet-mmd`).
//! - [`Progress`]: how long computations report progress.
//! - [`io`]: atomic file writes (unique temporary file, `fsync`, rename), used for every file the crates write.
//! - [`fuzz`]: a seeded byte-mutation fuzzer for file readers, run as ordinary tests.
//! - [`limits`]: bounds on sizes read from untrusted files and flags, checked before allocating; regular files only.
//! - [`metrics`]: AUROC, ROC curve, FPR at a TPR, AUPR-in / AUPR-out, with *higher score = more anomalous*.
//!
//! ```
//! use cadet_core::metrics;
//!
//! // Scores of in-distribution samples and of anomalies (higher = more anomalous).
//! let normal = [0.1, 0.4, 0.35, 0.8];
//! let anomalous = [0.9, 0.7, 0.95];
//! let auroc = metrics::auroc(&normal, &anomalous)?;
//! assert!((auroc - 11.0 / 12.0).abs() < 1e-12);
//! // Share of normal samples flagged when 95% of anomalies are caught:
//! assert_eq!(metrics::fpr_at_tpr(&normal, &anomalous, 0.95)?, 0.25);
//! # Ok::<(), cadet_core::Error>(())
//! ```

mod error;
pub mod fuzz;
pub mod io;
pub mod json;
pub mod limits;
pub mod linalg;
pub mod metrics;
pub mod params;
mod progress;
pub mod simd;
mod traits;
pub mod validate;

pub use error::{Error, Result};
pub use progress::{NoProgress, Progress};
pub use traits::{Embedder, Kernel};
