//! The error type of `cadet-augment`.

/// Errors of the transforms and of view generation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An image with a channel count the transform cannot handle (colour transforms need 3).
    #[error("{what}: expected {expected} channels, got {got}")]
    Channels {
        /// Which transform.
        what: &'static str,
        /// Channels required.
        expected: usize,
        /// Channels found.
        got: usize,
    },
    /// An image too small for the operation (a crop larger than the image, a blur kernel wider than it).
    #[error("{what}: image of {height}×{width} is too small (needs {needed})")]
    TooSmall {
        /// Which operation.
        what: &'static str,
        /// Image height.
        height: usize,
        /// Image width.
        width: usize,
        /// What it needs.
        needed: String,
    },
    /// A transform parameter outside its valid range (`InvalidParameter`), empty input, NaN, mismatched
    /// shapes: the checks shared with `cadet-core`.
    #[error(transparent)]
    Core(#[from] cadet_core::Error),
}

/// `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
