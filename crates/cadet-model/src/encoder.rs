//! Either encoder family behind one type, so that [`SimClr`](crate::SimClr), its trainer and
//! [`BurnEmbedder`](crate::BurnEmbedder) take both.

use burn::prelude::*;

use crate::{FeatureModel, ResNet, ResNetConfig, Result, SimClrV2Config, SimClrV2ResNet};

/// The configuration of an [`Encoder`].
///
/// Serialised as the family's own configuration, a SimCLRv2 one wrapped as `{"simclrv2": {…}}`, so that the
/// settings of checkpoints written before the SimCLRv2 family existed (a bare [`ResNetConfig`]) still read.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum EncoderConfig {
    /// SimCLRv2's own ResNets (selective kernels, its stem and shortcut).
    SimClrV2 {
        /// The architecture.
        simclrv2: SimClrV2Config,
    },
    /// torchvision's ResNets.
    Torchvision(ResNetConfig),
}

impl burn::config::Config for EncoderConfig {}

impl From<ResNetConfig> for EncoderConfig {
    fn from(config: ResNetConfig) -> Self {
        Self::Torchvision(config)
    }
}

impl From<SimClrV2Config> for EncoderConfig {
    fn from(simclrv2: SimClrV2Config) -> Self {
        Self::SimClrV2 { simclrv2 }
    }
}

impl EncoderConfig {
    /// Builds the encoder on `device`.
    pub fn init(&self, device: &Device) -> Result<Encoder> {
        Ok(match self {
            Self::Torchvision(c) => Encoder::Torchvision(c.init(device)?),
            Self::SimClrV2 { simclrv2 } => Encoder::SimClrV2(simclrv2.init(device)?),
        })
    }
}

/// An encoder of either family.
// One encoder per model: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Encoder {
    /// torchvision's layout.
    Torchvision(ResNet),
    /// SimCLRv2's own.
    SimClrV2(SimClrV2ResNet),
}

impl FeatureModel for Encoder {
    fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Self::Torchvision(net) => net.forward_features(x),
            Self::SimClrV2(net) => net.forward_features(x),
        }
    }
    fn feature_dim(&self) -> usize {
        match self {
            Self::Torchvision(net) => net.feature_dim(),
            Self::SimClrV2(net) => net.feature_dim(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_of_either_family_read_back_and_older_ones_still_read() {
        let old = serde_json::to_string(&ResNetConfig::new(18).with_cifar_stem(true)).unwrap();
        let read: EncoderConfig = serde_json::from_str(&old).unwrap();
        assert!(matches!(read, EncoderConfig::Torchvision(c) if c.depth == 18 && c.cifar_stem));
        let v2: EncoderConfig = SimClrV2Config::new(101)
            .with_width_multiplier(2)
            .with_sk_ratio(crate::SK_RATIO)
            .into();
        let text = serde_json::to_string(&v2).unwrap();
        let read: EncoderConfig = serde_json::from_str(&text).unwrap();
        assert!(matches!(
            read,
            EncoderConfig::SimClrV2 { simclrv2 } if simclrv2 == SimClrV2Config::new(101)
                .with_width_multiplier(2)
                .with_sk_ratio(crate::SK_RATIO)
        ));
    }
}
