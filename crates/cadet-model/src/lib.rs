//! # cadet-model
//!
//! The neural side of cadet-rs, on Burn 0.22 (CPU `flex` backend by default, CUDA with the `cuda` feature):
//!
//! - [`ResNetConfig`]: ResNet-18/34/50 in torchvision's layout, CIFAR or ImageNet stem, width multiplier,
//!   optional classifier; [`FeatureModel::forward_features`] gives pooled features.
//! - [`CifarResNetConfig`]: He et al.'s CIFAR ResNet-20/32/44/56 with "option A" shortcuts, loading the
//!   pretrained weights of `../shared/data/resnet-cifar10/` ([`CifarResNet::load_safetensors`]).
//! - [`SimClrV2Config`]: SimCLRv2's own ResNets (selective kernels, width multipliers, depths 50 to 200 and
//!   an 18-layer variant), and [`load_simclrv2`] for the released checkpoints in the converter's layout.
//! - [`EncoderConfig`] / [`Encoder`]: either family, for [`SimClr`] and its trainer.
//! - [`ProjectionHeadConfig`] and [`nt_xent`]: SimCLRv2's head and loss.
//! - [`LarsConfig`] (LARS with batch-norm and bias parameters excluded) and [`WarmupCosine`].
//! - [`Classifier`] and [`Normalized`]: the contract attacks work against (images in `[0, 1]` → logits).
//! - [`convert`]: the one ndarray ↔ Burn conversion pair (any array layout in, standard layout out).
//! - [`BurnEmbedder`]: any [`FeatureModel`] as a cadet `Embedder` (normalisation inside, batched).
//!
//! - [`train_supervised`]: cross-entropy training of any [`LogitsModel`] (the supervised baseline and the
//!   attacks' target).
//! - [`SimClrTrainer`]: seeded batches of two views ([`ViewPairs`]), gradient accumulation, progress, and
//!   checkpoints a later run resumes from.
//! - Data parallelism ([`TrainConfig::shards`], [`SimClrTrainer::with_shard_devices`], [`SimClr::sharded_loss`]):
//!   a batch cut into shards on several devices, with synchronised batch norm ([`ShardNorm`]) and NT-Xent over
//!   the embeddings of every shard; with SyncBN the run is the one-device run on the whole batch.
//!
//!
//! ```
//! use burn::prelude::*;
//! use cadet_core::Embedder;
//! use cadet_model::{BurnEmbedder, FeatureModel, Normalization, ResNetConfig};
//!
//! let device = Device::flex();
//! let encoder = ResNetConfig::new(18).with_cifar_stem(true).init(&device)?;
//! let embedder = BurnEmbedder::new(encoder, device, Normalization::imagenet(), "resnet18-random");
//! let images = ndarray::Array4::<f32>::from_elem((2, 3, 16, 16), 0.5);
//! assert_eq!(embedder.embed(images.view())?.dim(), (2, 512));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
mod cifar_resnet;
mod classifier;
pub mod convert;
mod embedder;
mod encoder;
mod error;
mod head;
mod import;
mod import_report;
mod integrity;
pub mod kernels;
mod layers;
mod loss;
mod monitor;
mod optim;
mod precision;
mod resnet;
mod safetensors_header;
mod shard;
mod simclr;
mod simclrv2;
mod supervised;
mod trainer;

pub use backend::{check_device, device, tuning_cache};
/// The `burn` this crate is built with (`Device`, `Tensor`, `Module`, `Config`): use it rather than a separate
/// `burn` dependency, whose version could differ from this crate's pinned one.
pub use burn;
/// The cadet-core traits this crate's signatures use, so that depending on it alone is enough.
pub use cadet_core::{Embedder, NoProgress, Progress};
pub use cifar_resnet::{CifarResNet, CifarResNetConfig, pretrained_weights};
pub use classifier::{Classifier, Normalized, accuracy, predict, predictions};
pub use convert::{array_to_tensor, tensor_to_array, view_to_tensor};
pub use embedder::{BurnEmbedder, Normalization};
pub use encoder::{Encoder, EncoderConfig};
pub use error::{Error, Result};
pub use head::{ProjectionHead, ProjectionHeadConfig};
pub use import::{LoadedModel, WeightFamily, load_weights};
pub use import_report::ImportReport;
pub use loss::nt_xent;
pub use monitor::{KnnMonitor, knn_accuracy};
pub use optim::{Lars, LarsConfig, LarsState, WarmupCosine};
pub use precision::Precision;
pub use resnet::{ResNet, ResNetConfig};
pub use shard::ShardNorm;
pub use simclr::{SimClr, SimClrConfig};
pub use simclrv2::{RELEASED_SIMCLRV2, SK_RATIO, SimClrV2Config, SimClrV2ResNet, load_simclrv2};
pub use supervised::{InMemory, LabelledBatches, LogitsModel, SupervisedConfig, train_supervised};
pub use trainer::{
    DEFAULT_PREFETCH, MAX_PREFETCH, SimClrTrainer, StopAfter, TrainConfig, TrainState, ViewPairs,
    Waits,
};

use burn::prelude::*;

/// A network that maps images `(N, C, H, W)` (normalised) to pooled features `(N, D)`.
pub trait FeatureModel: Module + Send + Sync {
    /// Pooled features.
    fn forward_features(&self, x: Tensor<4>) -> Tensor<2>;
    /// `D`.
    fn feature_dim(&self) -> usize;
}
