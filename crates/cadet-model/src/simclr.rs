//! The SimCLR model: encoder and projection head.

use burn::prelude::*;

use crate::{
    Encoder, EncoderConfig, FeatureModel, ProjectionHead, ProjectionHeadConfig, Result, nt_xent,
};

/// Configuration of a [`SimClr`] model.
#[derive(Config, Debug)]
pub struct SimClrConfig {
    /// The encoder, of either family (`ResNetConfig::new(18).into()`, `SimClrV2Config::new(50).into()`).
    pub encoder: EncoderConfig,
    /// Hidden width of the head (SimCLRv2's released heads: the encoder's feature width).
    #[config(default = 2048)]
    pub hidden: usize,
    /// Output width of the head.
    #[config(default = 128)]
    pub output: usize,
}

/// Encoder `f` and head `h`; the loss is NT-Xent on `z = h(f(t(x)))`, detection uses `f` alone.
#[derive(Module, Debug)]
pub struct SimClr {
    /// `f`.
    pub encoder: Encoder,
    /// `h`.
    pub head: ProjectionHead,
}

impl SimClrConfig {
    /// Builds the model on `device`.
    pub fn init(&self, device: &Device) -> Result<SimClr> {
        let encoder = self.encoder.init(device)?;
        let head = ProjectionHeadConfig::new(encoder.feature_dim())
            .with_hidden(self.hidden)
            .with_output(self.output)
            .init(device);
        Ok(SimClr { encoder, head })
    }
}

impl SimClr {
    /// NT-Xent of two batches of views (already normalised), image `i` in row `i` of both.
    pub fn loss(&self, views1: Tensor<4>, views2: Tensor<4>, temperature: f64) -> Tensor<1> {
        let n = views1.dims()[0];
        let z = self.head.forward(
            self.encoder
                .forward_features(Tensor::cat(vec![views1, views2], 0)),
        );
        let z1 = z.clone().narrow(0, 0, n);
        let z2 = z.narrow(0, n, n);
        nt_xent(z1, z2, temperature)
    }
}
