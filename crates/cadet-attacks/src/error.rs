//! The error type of `cadet-attacks`.

/// Errors of the attacks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Inputs that do not fit together (labels per image, targets per image, image values outside [0, 1]).
    #[error("{what}: {reason}")]
    Input {
        /// Which input.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A parameter outside its valid range (ε < 0, no step, ...): `cadet_core::Error::InvalidParameter`, the
    /// workspace's one such variant.
    #[error(transparent)]
    Core(#[from] cadet_core::Error),
    /// A gradient that could not be obtained from the backend, or a non-finite logit.
    #[error("backend: {0}")]
    Backend(String),
    /// A tensor that could not be read back from the device (Burn's error kept as the source).
    #[error("reading a tensor back from the device: {0}")]
    Readback(#[from] burn::tensor::DataError),
    /// An error of the model crate (its source kept).
    #[error(transparent)]
    Model(#[from] cadet_model::Error),
}

/// `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
