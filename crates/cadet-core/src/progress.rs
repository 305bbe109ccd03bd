//! Progress reporting for long work (experiments, calibration, training), independent of any terminal library:
//! examples plug in a progress bar, tests and libraries pass [`NoProgress`].

/// Receives progress of a long computation. Implementations must be cheap and thread-safe: work running in
/// parallel calls [`advance`](Self::advance) from several threads.
pub trait Progress: Sync {
    /// A new phase of `total` steps starts.
    fn start(&self, what: &str, total: u64);
    /// `steps` more steps are done.
    fn advance(&self, steps: u64);
    /// The phase is over.
    fn finish(&self) {}
    /// A short status line (a loss, a learning rate, a throughput) for the current phase.
    fn note(&self, message: &str) {
        let _ = message;
    }
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: u64) {}
    fn advance(&self, _steps: u64) {}
}
