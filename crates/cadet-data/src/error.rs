//! The error type of `cadet-data`.

use std::path::PathBuf;

/// Errors of the loaders, splits and the synthetic data set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A binary file whose length or header does not fit its format (truncated, wrong magic number, ...).
    #[error("{path}: malformed {format} file: {reason}")]
    Malformed {
        /// The file (empty for in-memory bytes).
        path: PathBuf,
        /// The format expected.
        format: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An `.npy` file with a dtype or shape other than the one required.
    #[error("{path}: {reason}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong (dtype, shape, header).
        reason: String,
    },
    /// An image file the decoder rejects.
    #[error("{path}: cannot decode image: {reason}")]
    Undecodable {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// A folder with no class subfolders or no images.
    #[error("{path}: {reason}")]
    EmptyFolder {
        /// The folder.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// Images and labels that do not pair up, or images of differing sizes.
    #[error("{what}: expected {expected}, got {got}")]
    Mismatch {
        /// What disagrees.
        what: &'static str,
        /// The count or size expected.
        expected: String,
        /// The count or size found.
        got: String,
    },
    /// An image that JPEG could not encode or decode in [`Dataset::jpeg_round_trip`](crate::Dataset::jpeg_round_trip).
    #[error("JPEG round trip of image {image}: {source}")]
    JpegRoundTrip {
        /// The image's index in the data set.
        image: usize,
        /// The codec's error.
        #[source]
        source: image::ImageError,
    },
    /// A split or filter that asks for more than the data set holds (`InvalidParameter`), a size over a
    /// [`Limits`](cadet_core::limits::Limits) bound, or another error of `cadet-core`.
    #[error(transparent)]
    Core(#[from] cadet_core::Error),
}

/// `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reads a regular file whole, within [`Limits::max_file_bytes`](cadet_core::limits::Limits).
pub(crate) fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    let max = cadet_core::limits::Limits::default().max_file_bytes;
    cadet_core::limits::read_capped(path, max).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
