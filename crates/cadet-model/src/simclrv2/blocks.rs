//! The SimCLRv2 network as Burn modules. Field names are this crate's (`stem.conv1`, `layer2.0.sk.bn`, …);
//! `import` maps the converter's keys onto them.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::ops::PadMode;

use super::SimClrV2Config;
use super::layout::{self, BlockPlan};
use crate::layers::{bn, bn_forward, conv, conv_forward};
use crate::{FeatureModel, Result};

/// The stem: a 7 × 7 stride-2 convolution, or with selective kernels three 3 × 3 convolutions (the first of
/// stride 2, the first two half as wide); then a 3 × 3 stride-2 max-pool.
#[derive(Module, Debug)]
pub struct Stem {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Option<Conv2d>,
    bn2: Option<BatchNorm>,
    conv3: Option<Conv2d>,
    bn3: Option<BatchNorm>,
    pool: MaxPool2d,
}

impl Stem {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = relu(bn_forward(&self.bn1, conv_forward(&self.conv1, x)));
        for (conv, bn) in [(&self.conv2, &self.bn2), (&self.conv3, &self.bn3)] {
            if let (Some(conv), Some(bn)) = (conv, bn) {
                x = relu(bn_forward(bn, conv_forward(conv, x)));
            }
        }
        self.pool.forward(x)
    }
}

/// The projection shortcut: a strided 1 × 1 convolution, or with selective kernels a zero pad of one row and
/// column (bottom, right), a 2 × 2 average pool with the block's stride and a 1 × 1 convolution; batch norm.
#[derive(Module, Debug)]
pub struct Projection {
    pool: Option<AvgPool2d>,
    conv: Conv2d,
    bn: BatchNorm,
}

impl Projection {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.pool {
            // The reference pads explicitly, so the zeros count in the border averages.
            Some(pool) => pool.forward(x.pad([(0, 1), (0, 1)], PadMode::Constant(0.0))),
            None => x,
        };
        bn_forward(&self.bn, conv_forward(&self.conv, x))
    }
}

/// The squeeze of a selective kernel: `1 × 1 → BN → ReLU → 1 × 1`, without biases.
#[derive(Module, Debug)]
pub struct Mixing {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
}

/// A selective kernel: one 3 × 3 convolution gives two branches `a`, `b` of `C` channels each; a squeezed
/// descriptor of `a + b` (spatial mean) gives per-channel logits for each, and the output is their
/// softmax-weighted sum.
#[derive(Module, Debug)]
pub struct SelectiveKernel {
    conv: Conv2d,
    bn: BatchNorm,
    mixing: Mixing,
}

impl SelectiveKernel {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(bn_forward(&self.bn, conv_forward(&self.conv, x)));
        let c = x.dims()[1] / 2;
        let (a, b) = (x.clone().narrow(1, 0, c), x.narrow(1, c, c));
        let g = (a.clone() + b.clone()).mean_dim(2).mean_dim(3);
        let m = &self.mixing;
        let logits = conv_forward(
            &m.conv2,
            relu(bn_forward(&m.bn1, conv_forward(&m.conv1, g))),
        );
        // A softmax over two logits is the sigmoid of their difference.
        let weight_a = sigmoid(logits.clone().narrow(1, 0, c) - logits.narrow(1, c, c));
        b.clone() + (a - b) * weight_a
    }
}

/// A bottleneck: `1 × 1 → 3 × 3 (strided; a selective kernel when on) → 1 × 1 (×4)`, batch norm after each.
#[derive(Module, Debug)]
pub struct Bottleneck {
    projection: Option<Projection>,
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Option<Conv2d>,
    bn2: Option<BatchNorm>,
    sk: Option<SelectiveKernel>,
    conv3: Conv2d,
    bn3: BatchNorm,
}

/// The 18-layer variant's block: two 3 × 3 convolutions (the first strided).
#[derive(Module, Debug)]
pub struct Basic {
    projection: Option<Projection>,
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
}

/// A residual block of a [`SimClrV2ResNet`].
// A stage holds blocks of one kind only, so the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum SimClrV2Block {
    /// The 18-layer variant's.
    Basic(Basic),
    /// Depths 50 and up.
    Bottleneck(Bottleneck),
}

impl SimClrV2Block {
    fn new(config: &SimClrV2Config, b: &BlockPlan, device: &Device) -> Self {
        let projection = b.projection.then(|| {
            let selective = config.selective();
            Projection {
                pool: selective.then(|| {
                    AvgPool2dConfig::new([2, 2])
                        .with_strides([b.stride, b.stride])
                        .with_padding(PaddingConfig2d::Valid)
                        .init()
                }),
                conv: conv(
                    b.cin,
                    b.cout,
                    1,
                    if selective { 1 } else { b.stride },
                    device,
                ),
                bn: bn(b.cout, device),
            }
        });
        let w = b.width;
        if !b.bottleneck {
            return Self::Basic(Basic {
                projection,
                conv1: conv(b.cin, w, 3, b.stride, device),
                bn1: bn(w, device),
                conv2: conv(w, w, 3, 1, device),
                bn2: bn(w, device),
            });
        }
        let sk = config.selective().then(|| {
            let mid = config.sk_width(w);
            SelectiveKernel {
                conv: conv(w, 2 * w, 3, b.stride, device),
                bn: bn(2 * w, device),
                mixing: Mixing {
                    conv1: conv(w, mid, 1, 1, device),
                    bn1: bn(mid, device),
                    conv2: conv(mid, 2 * w, 1, 1, device),
                },
            }
        });
        let plain = sk.is_none();
        Self::Bottleneck(Bottleneck {
            projection,
            conv1: conv(b.cin, w, 1, 1, device),
            bn1: bn(w, device),
            conv2: plain.then(|| conv(w, w, 3, b.stride, device)),
            bn2: plain.then(|| bn(w, device)),
            sk,
            conv3: conv(w, b.cout, 1, 1, device),
            bn3: bn(b.cout, device),
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (projection, out) = match self {
            Self::Basic(b) => {
                let out = relu(bn_forward(&b.bn1, conv_forward(&b.conv1, x.clone())));
                (
                    &b.projection,
                    bn_forward(&b.bn2, conv_forward(&b.conv2, out)),
                )
            }
            Self::Bottleneck(b) => {
                let mut out = relu(bn_forward(&b.bn1, conv_forward(&b.conv1, x.clone())));
                if let (Some(conv), Some(bn)) = (&b.conv2, &b.bn2) {
                    out = relu(bn_forward(bn, conv_forward(conv, out)));
                }
                if let Some(sk) = &b.sk {
                    out = sk.forward(out);
                }
                (
                    &b.projection,
                    bn_forward(&b.bn3, conv_forward(&b.conv3, out)),
                )
            }
        };
        let shortcut = projection.as_ref().map_or(x.clone(), |p| p.forward(x));
        relu(shortcut + out)
    }
}

/// A SimCLRv2 ResNet ([`SimClrV2Config`]): [`FeatureModel::forward_features`] gives the pooled features,
/// [`SimClrV2ResNet::forward`] the supervised head's logits when it has classes.
#[derive(Module, Debug)]
pub struct SimClrV2ResNet {
    stem: Stem,
    layer1: Vec<SimClrV2Block>,
    layer2: Vec<SimClrV2Block>,
    layer3: Vec<SimClrV2Block>,
    layer4: Vec<SimClrV2Block>,
    fc: Option<Linear>,
    feature_dim: usize,
}

pub(super) fn build(config: &SimClrV2Config, device: &Device) -> Result<SimClrV2ResNet> {
    let plan = layout::blocks(config)?;
    let half = config.base_width * config.width_multiplier / 2;
    let stem = if config.selective() {
        Stem {
            conv1: conv(3, half, 3, 2, device),
            bn1: bn(half, device),
            conv2: Some(conv(half, half, 3, 1, device)),
            bn2: Some(bn(half, device)),
            conv3: Some(conv(half, 2 * half, 3, 1, device)),
            bn3: Some(bn(2 * half, device)),
            pool: max_pool(),
        }
    } else {
        Stem {
            conv1: conv(3, 2 * half, 7, 2, device),
            bn1: bn(2 * half, device),
            conv2: None,
            bn2: None,
            conv3: None,
            bn3: None,
            pool: max_pool(),
        }
    };
    let mut stages: [Vec<SimClrV2Block>; 4] = Default::default();
    for b in &plan {
        stages[b.stage - 1].push(SimClrV2Block::new(config, b, device));
    }
    let feature_dim = config.feature_dim();
    let [layer1, layer2, layer3, layer4] = stages;
    Ok(SimClrV2ResNet {
        stem,
        layer1,
        layer2,
        layer3,
        layer4,
        fc: config
            .num_classes
            .map(|c| LinearConfig::new(feature_dim, c).init(device)),
        feature_dim,
    })
}

fn max_pool() -> MaxPool2d {
    MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init()
}

impl SimClrV2ResNet {
    /// Logits `(N, classes)` of the supervised head; `None` for an encoder without one.
    pub fn forward(&self, x: Tensor<4>) -> Option<Tensor<2>> {
        let features = self.forward_features(x);
        self.fc.as_ref().map(|fc| fc.forward(features))
    }

    /// Whether the network has the supervised head `fc`.
    pub fn has_classifier(&self) -> bool {
        self.fc.is_some()
    }
}

impl FeatureModel for SimClrV2ResNet {
    fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(x);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        x.mean_dim(2).mean_dim(3).flatten(1, 3)
    }
    fn feature_dim(&self) -> usize {
        self.feature_dim
    }
}
