//! What a weight import did, the same for every family of loaders.

/// What an import loaded and what it left aside ([`load_weights`](crate::load_weights), [`ResNet::load_torchvision`](crate::ResNet::load_torchvision),
/// [`SimClrV2Config::load`](crate::SimClrV2Config::load), [`load_simclrv2`](crate::load_simclrv2)). Tensors
/// the architecture needs are never skipped: a missing or misshapen one is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Tensors loaded.
    pub loaded: usize,
    /// Keys of the file the model has no place for and that were left aside (a classifier or a projection
    /// head the model being loaded does not have, batch-norm counters), for the caller to report.
    pub skipped: Vec<String>,
}
