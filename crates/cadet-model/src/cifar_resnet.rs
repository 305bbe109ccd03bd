//! He et al.'s CIFAR ResNets (ResNet-20/32/44/56, "option A" shortcuts), the supervised classifiers whose
//! pretrained weights live in `../shared/data/resnet-cifar10/` (akamaster/pytorch_resnet_cifar10).

use std::path::Path;

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::activation::relu;

use crate::layers::{bn, bn_forward, conv, conv_forward};
use crate::{Error, FeatureModel, Result};

/// Configuration of a [`CifarResNet`].
#[derive(Config, Debug)]
pub struct CifarResNetConfig {
    /// 20, 32, 44 or 56 (`6n + 2`).
    pub depth: usize,
    /// Classes (CIFAR-10: 10).
    #[config(default = 10)]
    pub num_classes: usize,
}

/// Two 3 × 3 convolutions; the shortcut of a strided block subsamples by 2 and zero-pads `planes/4` channels
/// on each side ("option A"), so it has no parameters.
#[derive(Module, Debug)]
pub struct CifarBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    pad_channels: usize,
}

impl CifarBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = if self.pad_channels > 0 {
            x.clone().slice(s![.., .., ..;2, ..;2]).pad(
                [
                    (0, 0),
                    (self.pad_channels, self.pad_channels),
                    (0, 0),
                    (0, 0),
                ],
                burn::tensor::ops::PadMode::Constant(0.0),
            )
        } else {
            x.clone()
        };
        let out = relu(bn_forward(&self.bn1, conv_forward(&self.conv1, x)));
        relu(bn_forward(&self.bn2, conv_forward(&self.conv2, out)) + shortcut)
    }
}

/// The CIFAR ResNet: 3 × 3 stem with 16 channels, stages of 16, 32, 64 channels, global pooling, linear.
#[derive(Module, Debug)]
pub struct CifarResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    layer1: Vec<CifarBlock>,
    layer2: Vec<CifarBlock>,
    layer3: Vec<CifarBlock>,
    linear: Linear,
}

impl CifarResNetConfig {
    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Result<CifarResNet> {
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return Err(Error::InvalidConfig {
                name: "depth",
                reason: format!("6n + 2 (20, 32, 44, 56), got {}", self.depth),
            });
        }
        let n = (self.depth - 2) / 6;
        let mut cin = 16;
        let mut stage = |planes: usize, first_stride: usize| {
            (0..n)
                .map(|i| {
                    let stride = if i == 0 { first_stride } else { 1 };
                    let pad_channels = if stride != 1 || cin != planes {
                        planes / 4
                    } else {
                        0
                    };
                    let block = CifarBlock {
                        conv1: conv(cin, planes, 3, stride, device),
                        bn1: bn(planes, device),
                        conv2: conv(planes, planes, 3, 1, device),
                        bn2: bn(planes, device),
                        pad_channels,
                    };
                    cin = planes;
                    block
                })
                .collect::<Vec<_>>()
        };
        let (layer1, layer2, layer3) = (stage(16, 1), stage(32, 2), stage(64, 2));
        Ok(CifarResNet {
            conv1: conv(3, 16, 3, 1, device),
            bn1: bn(16, device),
            layer1,
            layer2,
            layer3,
            linear: LinearConfig::new(64, self.num_classes).init(device),
        })
    }
}

impl CifarResNet {
    /// Logits `(N, classes)` of images already normalised (see [`crate::Normalization::imagenet`]).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.linear.forward(self.forward_features(x))
    }

    /// The architecture's name in the weights' metadata: `resnet<depth>`.
    pub fn arch(&self) -> String {
        format!("resnet{}", 6 * self.layer1.len() + 2)
    }

    /// Loads the PyTorch weights of akamaster/pytorch_resnet_cifar10 converted to safetensors (the files in
    /// `../shared/data/resnet-cifar10/`). The file must be made for this network: an `arch` in its metadata
    /// other than [`Self::arch`] is an [`Error::WrongArchitecture`]; every tensor must be found with its shape,
    /// and a tensor the network has no place for (e.g. the extra blocks of a deeper ResNet) is an
    /// [`Error::Weights`] naming it (PyTorch's `num_batches_tracked` counters excepted: they carry no weight).
    /// A NaN or infinite weight is an [`Error::NonFiniteWeight`] naming the tensor.
    pub fn load_safetensors(self, path: impl AsRef<Path>) -> Result<Self> {
        self.load_safetensors_reported(path.as_ref())
            .map(|(net, _)| net)
    }

    /// [`Self::load_safetensors`], with what it loaded and the counters it left aside.
    pub(crate) fn load_safetensors_reported(
        mut self,
        path: &Path,
    ) -> Result<(Self, crate::ImportReport)> {
        let header = crate::safetensors_header::read(path)?;
        if let Some(found) = header.metadata.get("arch")
            && *found != self.arch()
        {
            return Err(Error::WrongArchitecture {
                path: path.to_path_buf(),
                expected: self.arch(),
                found: found.clone(),
            });
        }
        // Every tensor of the file is applied (or refused below): none may be NaN or infinite.
        crate::safetensors_header::check_finite(path, &header, |_| true)?;
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .allow_partial(true)
            .validate(false);
        let applied = self.load_from(&mut store).map_err(|e| Error::Weights {
            path: path.to_path_buf(),
            reason: crate::resnet::shorten(e.to_string()),
        })?;
        if let Some(e) = crate::resnet::apply_error(path, &applied) {
            return Err(e);
        }
        let unexpected: Vec<&String> = applied
            .unused
            .iter()
            .filter(|k| !k.ends_with("num_batches_tracked"))
            .collect();
        if let Some(first) = unexpected.first() {
            return Err(Error::Weights {
                path: path.to_path_buf(),
                reason: format!(
                    "{} tensor(s) that {} has no place for (first: `{first}`): weights of another \
                     architecture?",
                    unexpected.len(),
                    self.arch()
                ),
            });
        }
        let report = crate::ImportReport {
            loaded: applied.applied.len(),
            skipped: applied.unused,
        };
        Ok((self, report))
    }
}

/// The pretrained weights of depth `depth` in `dir` (`resnet<depth>-<hash>.safetensors`, the naming of
/// `../shared/data/resnet-cifar10/`).
pub fn pretrained_weights(dir: impl AsRef<Path>, depth: usize) -> Result<std::path::PathBuf> {
    let dir = dir.as_ref();
    let err = |reason: String| Error::Weights {
        path: dir.to_path_buf(),
        reason,
    };
    let prefix = format!("resnet{depth}-");
    std::fs::read_dir(dir)
        .map_err(|e| err(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with(&prefix)
                    && n.to_string_lossy().ends_with(".safetensors")
            })
        })
        .ok_or_else(|| err(format!("no {prefix}*.safetensors")))
}

impl FeatureModel for CifarResNet {
    fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu(bn_forward(&self.bn1, conv_forward(&self.conv1, x)));
        for block in self.layer1.iter().chain(&self.layer2).chain(&self.layer3) {
            x = block.forward(x);
        }
        let [n, c, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([n, c])
    }
    fn feature_dim(&self) -> usize {
        64
    }
}
