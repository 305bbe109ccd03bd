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
    /// A tensor the model needs that the weights file lacks.
    #[error("{path}: no tensor `{key}`")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The key the model expects (with the file's prefix).
        key: String,
    },
    /// A tensor of the weights file that the architecture has no place for.
    #[error("{path}: unknown tensor `{key}` (not part of the architecture being loaded)")]
    UnexpectedTensor {
        /// The file.
        path: PathBuf,
        /// The file's key.
        key: String,
    },
    /// A tensor of the weights file whose shape differs from the model's.
    #[error("{path}: tensor `{key}` has shape {got:?}, the model expects {expected:?}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The file's key.
        key: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        got: Vec<usize>,
    },
    /// Images of an unusable shape.
    #[error("images: expected (N, {channels}, H, W), got {got:?}")]
    ImageShape {
        /// Channels required.
        channels: usize,
        /// Shape found.
        got: Vec<usize>,
    },
    /// A training loss that is NaN or infinite: the run diverged (or its inputs hold non-finite values). The
    /// step is not applied and nothing is saved.
    #[error(
        "the loss of step {step} is {value}: training diverged (lower the learning rate, check the inputs)"
    )]
    NonFiniteLoss {
        /// The step (counted from 1, as in the progress notes).
        step: u64,
        /// The loss.
        value: f32,
    },
    /// A file or folder operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint folder that cannot be used as asked: it holds another run, or a checkpoint is incomplete.
    #[error("checkpoint folder {path}: {reason}")]
    Checkpoint {
        /// The folder or checkpoint.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file whose bytes differ from those recorded when it was written (flipped bits, truncation, an edit).
    #[error(
        "{path}: SHA-256 {found} differs from the recorded {expected}: the file is corrupt or was changed"
    )]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// The digest recorded at write time (hex).
        expected: String,
        /// The digest of the file now (hex).
        found: String,
    },
    /// Imported weights made for another architecture than the model they are loaded into.
    #[error("{path}: weights for `{found}`, the model is `{expected}`")]
    WrongArchitecture {
        /// The file.
        path: PathBuf,
        /// The architecture of the model (e.g. `resnet20`).
        expected: String,
        /// The architecture the file names, or what its tensors show.
        found: String,
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
