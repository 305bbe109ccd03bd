//! The error type of `cadet-model`.

use std::path::PathBuf;

/// Errors of model construction, weight import and embedding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration outside what the architecture supports.
    #[error("invalid configuration `{name}`: {reason}")]
    InvalidConfig {
        /// The setting.
        name: &'static str,
        /// Why, with the value.
        reason: String,
    },
    /// Weights that could not be read or do not fit the architecture.
    #[error("{path}: {reason}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What went wrong (missing or unexpected tensors, shapes).
        reason: String,
    },
    /// Images of an unusable shape.
    #[error("images: expected (N, {channels}, H, W), got {got:?}")]
    ImageShape {
        /// Channels required.
        channels: usize,
        /// Shape found.
        got: Vec<usize>,
    },
    /// A tensor could not be read back from the device.
    #[error("reading a tensor back from the device: {0}")]
    Readback(String),
}

/// `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for cadet_core::Error {
    fn from(e: Error) -> Self {
        cadet_core::Error::Embedder(Box::new(e))
    }
}
