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

/// The model as checkpoints stored it before the encoder could be of either family (a bare `ResNet`), kept so
/// that [`SimClrTrainer::resume`](crate::SimClrTrainer::resume) still reads them. Same type name and fields as
/// then, so the record's paths match.
mod legacy {
    use burn::prelude::*;

    use crate::{ProjectionHead, ResNet};

    #[derive(Module, Debug)]
    pub(super) struct SimClr {
        pub(super) encoder: ResNet,
        pub(super) head: ProjectionHead,
    }
}

impl SimClr {
    /// Loads a burnpack file written before [`Encoder`] existed into this model (a torchvision encoder);
    /// `None` for a SimCLRv2 encoder, which such files never held.
    pub(crate) fn try_load_legacy_file(
        self,
        path: &std::path::Path,
    ) -> Option<Result<Self, burn::store::RecordError>> {
        let Encoder::Torchvision(encoder) = self.encoder else {
            return None;
        };
        let old = legacy::SimClr {
            encoder,
            head: self.head,
        };
        Some(old.try_load_file(path).map(|old| Self {
            encoder: Encoder::Torchvision(old.encoder),
            head: old.head,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FeatureModel, ResNetConfig};

    #[test]
    fn checkpoints_of_the_bare_resnet_layout_still_load() {
        let device = Device::flex();
        let config = SimClrConfig::new(ResNetConfig::new(18).with_base_width(4).into())
            .with_hidden(8)
            .with_output(4);
        let Encoder::Torchvision(encoder) = config.init(&device).unwrap().encoder else {
            unreachable!()
        };
        let head = ProjectionHeadConfig::new(32)
            .with_hidden(8)
            .with_output(4)
            .init(&device);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bpk");
        let old = legacy::SimClr {
            encoder: encoder.clone(),
            head,
        };
        old.save_file(&path).unwrap();
        let fresh = config.init(&device).unwrap();
        assert!(fresh.clone().try_load_file(&path).is_err());
        let loaded = fresh.try_load_legacy_file(&path).unwrap().unwrap();
        let x = Tensor::<4>::ones([1, 3, 16, 16], &device);
        let want: Vec<f32> = encoder
            .forward_features(x.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let got: Vec<f32> = loaded
            .encoder
            .forward_features(x)
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_eq!(got, want);
    }
}
