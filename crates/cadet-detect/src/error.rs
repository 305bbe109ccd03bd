//! The error type of `cadet-detect`.

use std::path::PathBuf;

/// Errors of calibration, scoring, the baselines and calibration files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Arrays whose shapes do not fit together.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Which array.
        what: &'static str,
        /// The shape required (0 stands for "any").
        expected: Vec<usize>,
        /// The shape found.
        got: Vec<usize>,
    },
    /// A calibration set too small or too uniform to calibrate on (e.g. zero variance of `m_out`).
    #[error("calibration impossible: {0}")]
    Degenerate(String),
    /// The embedder differs from the one the calibration was made with.
    #[error("embedder mismatch: {0}")]
    EmbedderMismatch(String),
    /// A calibration file that cannot be read or written, is corrupt, or has an unsupported version.
    #[error("{path}: {reason}")]
    CalibrationFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// The underlying error (I/O, JSON, a failed check), when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A saved features' layout sidecar (`layout.json`) that cannot be written or read, or disagrees with the
    /// features or with the layout a reader was told ([`crate::features`]).
    #[error("{path}: {reason}")]
    FeaturesFile {
        /// The sidecar.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A failure in one image of a set (`image` counts from 0), e.g. a NaN in its transform features: the
    /// source says what and where within the image (transform row, component).
    #[error("image {image}: {source}")]
    InImage {
        /// The image's index in its set.
        image: usize,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// A numerical failure of a fit (a covariance that is not positive definite, ...).
    #[error("{0}")]
    Numerical(String),
    /// A hyperparameter outside its valid range (`InvalidParameter`), empty input, NaN or infinity, an
    /// embedder's failure: the checks shared with `cadet-core`.
    #[error(transparent)]
    Core(#[from] cadet_core::Error),
    /// A failure while making the views.
    #[error(transparent)]
    Augment(#[from] cadet_augment::Error),
    /// A features file that could not be read as `(images, views, d)` float32 (its path, a lying header, the
    /// limits, another dtype or number of dimensions).
    #[error("{source} (expected (images, views, d) float32 features)")]
    FeaturesRead {
        /// The reader's error, naming the file.
        #[source]
        source: cadet_data::Error,
    },
    /// A features file that could not be written.
    #[error(transparent)]
    Data(#[from] cadet_data::Error),
}

/// `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
