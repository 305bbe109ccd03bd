//! The error type of `cadet-core`, shared by the traits every other crate implements.

/// Errors raised by `cadet-core` and by implementations of its traits.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input that must hold at least one element holds none.
    #[error("{what}: empty input")]
    EmptyInput {
        /// Which input.
        what: &'static str,
    },
    /// Two inputs that must agree on a size do not.
    #[error("{what}: expected {expected}, got {got}")]
    DimensionMismatch {
        /// Which size.
        what: &'static str,
        /// The size required.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// An array has a shape other than the one required.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Which array.
        what: &'static str,
        /// The shape required (0 stands for "any").
        expected: Vec<usize>,
        /// The shape found.
        got: Vec<usize>,
    },
    /// NaN or ±infinity where finite numbers are required.
    #[error("{what}: non-finite value {value} at index {index:?}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Index of the first offending element.
        index: Vec<usize>,
        /// The offending value.
        value: f64,
    },
    /// A row of zero norm given to a kernel that normalises rows (cosine similarity is undefined there).
    #[error("{what}: row {row} has zero norm, its cosine similarity is undefined")]
    ZeroNorm {
        /// Which input.
        what: &'static str,
        /// The row.
        row: usize,
    },
    /// A parameter outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it is invalid, with the value.
        reason: String,
    },
    /// A size read from a file or a flag is over a [`Limits`](crate::limits::Limits) bound (or overflows).
    #[error("{what}: over the limit of {limit}")]
    LimitExceeded {
        /// What was claimed, with its size.
        what: String,
        /// The bound, naming the `Limits` field that raises it.
        limit: String,
    },
    /// An [`Embedder`](crate::Embedder) failed; the source is the implementation's own error.
    #[error("embedder failed: {0}")]
    Embedder(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
