//! SimCLRv2's projection head: three fully connected layers, batch norm on each, ReLU on the hidden ones.

use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::shard::{self, ShardNorm};

/// Configuration of a [`ProjectionHead`] (the paper: 2048 → 2048 → 2048 → 128).
#[derive(Config, Debug)]
pub struct ProjectionHeadConfig {
    /// Input width (the encoder's feature dimension).
    pub input: usize,
    /// Hidden width.
    #[config(default = 2048)]
    pub hidden: usize,
    /// Output width.
    #[config(default = 128)]
    pub output: usize,
}

/// `Linear → BN → ReLU → Linear → BN → ReLU → Linear → BN` (biases off: batch norm follows every layer).
#[derive(Module, Debug)]
pub struct ProjectionHead {
    fc1: Linear,
    bn1: BatchNorm,
    fc2: Linear,
    bn2: BatchNorm,
    fc3: Linear,
    bn3: BatchNorm,
}

impl ProjectionHeadConfig {
    /// Builds the head on `device`.
    pub fn init(&self, device: &Device) -> ProjectionHead {
        let linear = |a, b| LinearConfig::new(a, b).with_bias(false).init(device);
        ProjectionHead {
            fc1: linear(self.input, self.hidden),
            bn1: BatchNormConfig::new(self.hidden).init(device),
            fc2: linear(self.hidden, self.hidden),
            bn2: BatchNormConfig::new(self.hidden).init(device),
            fc3: linear(self.hidden, self.output),
            bn3: BatchNormConfig::new(self.output).init(device),
        }
    }
}

impl ProjectionHead {
    /// Projections `(N, output)` of features `(N, input)`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        Self::forward_sharded(&[self], vec![x], ShardNorm::Synchronized)
            .pop()
            .expect("one shard in, one out")
    }

    /// Projections of a batch of features given as shards (`replicas[s]`: shard `s`'s copy of the head, on its
    /// device), batch norm per `norm`.
    pub(crate) fn forward_sharded(
        replicas: &[&ProjectionHead],
        xs: Vec<Tensor<2>>,
        norm: ShardNorm,
    ) -> Vec<Tensor<2>> {
        let layer = |x: Vec<Tensor<2>>,
                     fc: fn(&ProjectionHead) -> &Linear,
                     bn: fn(&ProjectionHead) -> &BatchNorm| {
            let x = shard::apply(&shard::each(replicas, fc), x, |l, x| l.forward(x));
            shard::batch_norm(&shard::each(replicas, bn), x, norm)
        };
        let x = shard::map(layer(xs, |h| &h.fc1, |h| &h.bn1), relu);
        let x = shard::map(layer(x, |h| &h.fc2, |h| &h.bn2), relu);
        layer(x, |h| &h.fc3, |h| &h.bn3)
    }
}
