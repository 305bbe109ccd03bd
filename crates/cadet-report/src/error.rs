//! The error type of `cadet-report`.

use crate::plots::PlotError;

/// Why a report, table or picture could not be made: the failing crate's own error, kept as the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Calibrating, scoring, or a table's own checks (set sizes, shapes).
    #[error(transparent)]
    Detect(#[from] cadet_detect::Error),
    /// An attack or its surrogate refused its settings or failed.
    #[error(transparent)]
    Attack(#[from] cadet_attacks::Error),
    /// A two-sample experiment.
    #[error(transparent)]
    Mmd(#[from] cadet_mmd::Error),
    /// A metric, or a check shared with `cadet-core`.
    #[error(transparent)]
    Core(#[from] cadet_core::Error),
    /// Writing an image grid.
    #[error(transparent)]
    Data(#[from] cadet_data::Error),
    /// A chart.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// Writing the Markdown.
    #[error("writing the report: {0}")]
    Fmt(#[from] std::fmt::Error),
}

/// `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
