//! One way in for every family of weight files: [`load_weights`] builds the network the [`WeightFamily`] names
//! on a device, loads the file into it through that family's checks (shapes, finite values, checksums and the
//! architecture named in the file's metadata) and says what it loaded and left aside ([`ImportReport`]). The
//! family-specific loaders ([`CifarResNet::load_safetensors`], [`ResNet::load_torchvision`],
//! [`SimClrV2Config::load_simclr`]) stay for callers that already hold a network.

use std::path::Path;

use burn::prelude::*;

use crate::{
    CifarResNet, CifarResNetConfig, ImportReport, ResNet, ResNetConfig, Result, SimClr,
    SimClrV2Config,
};

/// Which network a weight file is loaded into.
#[derive(Debug, Clone)]
pub enum WeightFamily {
    /// akamaster/pytorch_resnet_cifar10's CIFAR ResNets converted to safetensors (e.g.
    /// `../shared/data/resnet-cifar10/`): every tensor of the file must find its place.
    CifarResNet(CifarResNetConfig),
    /// A torchvision-layout ResNet (torchvision's own weights, or a SimCLR / supervised checkpoint of that
    /// layout); `prefix` is stripped from every key first (`""`, `"encoder."`, `"module.backbone."`).
    Torchvision {
        /// The network to build.
        config: ResNetConfig,
        /// The key prefix to strip.
        prefix: String,
    },
    /// A released SimCLRv2 checkpoint in the converter's layout: the encoder and its 128-wide contrastive head;
    /// the architecture is read from the file (its `arch` metadata or its name) unless `config` gives it.
    SimClrV2 {
        /// The architecture, or `None` to read it from the file.
        config: Option<SimClrV2Config>,
        /// The key prefix to strip.
        prefix: String,
    },
}

/// A network loaded by [`load_weights`], by family (boxed: the networks differ much in size).
#[derive(Debug, Clone)]
pub enum LoadedModel {
    /// From [`WeightFamily::CifarResNet`].
    CifarResNet(Box<CifarResNet>),
    /// From [`WeightFamily::Torchvision`].
    ResNet(Box<ResNet>),
    /// From [`WeightFamily::SimClrV2`]: encoder and contrastive head.
    SimClr(Box<SimClr>),
}

/// One way in for every family of weight files: builds the network `family` names on `device`, loads `path`
/// into it through that family's checks (shapes, finite values, checksums, the architecture named in the file's
/// metadata) and says what it loaded and left aside ([`ImportReport`]). The family loaders
/// ([`CifarResNet::load_safetensors`], [`ResNet::load_torchvision`], [`SimClrV2Config::load_simclr`]) stay for
/// callers that already hold a network. Errors name
/// the file and, where one is at fault, the tensor: a missing, misshapen, unexpected or non-finite tensor, a
/// file of another architecture, or an unreadable or damaged file.
///
/// ```no_run
/// use cadet_model::burn::prelude::Device;
/// use cadet_model::{CifarResNetConfig, LoadedModel, WeightFamily, load_weights};
///
/// let family = WeightFamily::CifarResNet(CifarResNetConfig::new(20));
/// let (model, report) = load_weights("resnet20.safetensors", &family, &Device::flex())?;
/// assert!(matches!(model, LoadedModel::CifarResNet(_)));
/// println!("{} tensors loaded, {} left aside", report.loaded, report.skipped.len());
/// # Ok::<(), cadet_model::Error>(())
/// ```
pub fn load_weights(
    path: impl AsRef<Path>,
    family: &WeightFamily,
    device: &Device,
) -> Result<(LoadedModel, ImportReport)> {
    let path = path.as_ref();
    match family {
        WeightFamily::CifarResNet(config) => {
            let (net, report) = config.init(device)?.load_safetensors_reported(path)?;
            Ok((LoadedModel::CifarResNet(Box::new(net)), report))
        }
        WeightFamily::Torchvision { config, prefix } => {
            let (net, report) = config.init(device)?.load_torchvision(path, prefix)?;
            Ok((LoadedModel::ResNet(Box::new(net)), report))
        }
        WeightFamily::SimClrV2 { config, prefix } => {
            let config = match config {
                Some(c) => c.clone(),
                None => SimClrV2Config::from_file(path)?,
            };
            let (model, report) = config
                .with_num_classes(None)
                .load_simclr(path, prefix, device)?;
            Ok((LoadedModel::SimClr(Box::new(model)), report))
        }
    }
}
