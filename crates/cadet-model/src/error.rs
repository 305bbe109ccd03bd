//! The error type of `cadet-model`.

use std::path::{Path, PathBuf};

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
    /// A network's output holds NaN or an infinity although its weights are finite (weights near `f32::MAX`
    /// overflow) or its inputs hold non-finite values: an error, never a prediction.
    #[error(
        "the {what} hold {value}: the model overflowed (finite weights too large) or its inputs are not finite"
    )]
    NonFiniteOutput {
        /// What the output is ("classifier logits").
        what: &'static str,
        /// The first non-finite value.
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
    /// A TensorFlow checkpoint whose CRC-32C checksum (of a tensor's bytes, or of a block of its index)
    /// differs from the one TensorFlow recorded: flipped bits, truncation, or an entry pointing elsewhere.
    #[error(
        "{path}: {what}: CRC-32C {computed:#010x} differs from the recorded {stored:#010x}: the checkpoint is \
         corrupt"
    )]
    Crc32cMismatch {
        /// The file.
        path: PathBuf,
        /// Which bytes: the tensor (its key, offset and size) or the index block.
        what: String,
        /// The checksum TensorFlow recorded (unmasked).
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// A weight that is NaN or infinite: the file is damaged (or was trained into divergence), and a model
    /// with it would give NaN features and scores.
    #[error(
        "{path}: tensor `{tensor}` holds {value} at element {index}: weights must be finite numbers (the file \
         is damaged)"
    )]
    NonFiniteWeight {
        /// The file.
        path: PathBuf,
        /// The tensor's key in the file (or its path in the model, for a checkpoint).
        tensor: String,
        /// The flat index of the first non-finite element.
        index: usize,
        /// That element.
        value: f64,
    },
    /// A size read from a file (a tensor's shape, a header's length) beyond a
    /// [`Limits`](cadet_core::limits::Limits) bound, checked before anything is allocated.
    #[error("{path}: {what}: over the limit of {limit}")]
    LimitExceeded {
        /// The file.
        path: PathBuf,
        /// What the file claims, with its size.
        what: String,
        /// The bound, naming the `Limits` field that raises it.
        limit: String,
    },
    /// An output path that is one of the input files: writing would destroy the input.
    #[error(
        "{output}: this output is the input file {input}; writing it would destroy the input, choose another path"
    )]
    OutputIsInput {
        /// The output path as given.
        output: PathBuf,
        /// The input file it is.
        input: PathBuf,
    },
    /// A tensor could not be read back from the device (Burn's error kept as the source).
    #[error("reading a tensor back from the device: {0}")]
    Readback(#[from] burn::tensor::DataError),
    /// A tensor read back whose values do not fit its shape.
    #[error("a tensor read back does not fit its shape: {0}")]
    ReadbackShape(#[from] ndarray::ShapeError),
    /// A file could not be written; the message names it (written by `cadet_core::io::write_atomic`).
    #[error("{0}")]
    Write(#[source] std::io::Error),
}

impl Error {
    /// The error of reading `path`: [`Error::Io`], or [`Error::Weights`] when the cause is a refusal of
    /// [`cadet_core::limits`] (a FIFO, a device, a file over a cap), whose message already names the path.
    pub(crate) fn reading(path: &Path, source: std::io::Error) -> Self {
        let text = source.to_string();
        match text.strip_prefix(&format!("{}: ", path.display())) {
            Some(reason) if source.kind() == std::io::ErrorKind::InvalidInput => Error::Weights {
                path: path.to_path_buf(),
                reason: reason.to_string(),
            },
            _ => Error::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    /// A [`cadet_core::Error::LimitExceeded`] (from [`Limits`](cadet_core::limits::Limits)) about `path`.
    pub(crate) fn limit(path: &Path, e: cadet_core::Error) -> Self {
        match e {
            cadet_core::Error::LimitExceeded { what, limit } => Error::LimitExceeded {
                path: path.to_path_buf(),
                what,
                limit,
            },
            other => Error::Weights {
                path: path.to_path_buf(),
                reason: other.to_string(),
            },
        }
    }
}

/// `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for cadet_core::Error {
    fn from(e: Error) -> Self {
        cadet_core::Error::Embedder(Box::new(e))
    }
}
