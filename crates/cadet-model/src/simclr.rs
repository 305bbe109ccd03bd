//! The SimCLR model: encoder and projection head.

use burn::prelude::*;

use crate::layers::{MAX_HEAD_WIDTH, check_model_size};
use crate::shard::{self, ShardNorm};
use crate::{
    Encoder, EncoderConfig, Error, FeatureModel, ProjectionHead, ProjectionHeadConfig, ResNet,
    Result, nt_xent,
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
    /// Builds the model on `device`, after checking the encoder's settings and the head's widths (at least 1,
    /// bounded, and its parameters within [`Limits::max_alloc_bytes`](cadet_core::limits::Limits)).
    pub fn init(&self, device: &Device) -> Result<SimClr> {
        // The encoder first: its settings are checked before it allocates, and flags often derive the head's
        // widths from its own.
        let encoder = self.encoder.init(device)?;
        for (name, width) in [("hidden", self.hidden), ("output", self.output)] {
            if width == 0 || width > MAX_HEAD_WIDTH {
                return Err(Error::InvalidConfig {
                    name,
                    reason: format!("a head width of 1 to {MAX_HEAD_WIDTH}, got {width}"),
                });
            }
        }
        let (d, h, o) = (
            encoder.feature_dim() as u128,
            self.hidden as u128,
            self.output as u128,
        );
        let what = format!("a projection head {d} → {h} → {h} → {o}");
        check_model_size("hidden", &what, d * h + h * h + h * o + 6 * h + 3 * o)?;
        let head = ProjectionHeadConfig::new(encoder.feature_dim())
            .with_hidden(self.hidden)
            .with_output(self.output)
            .init(device);
        Ok(SimClr { encoder, head })
    }

    /// Builds the model on `device` with weights drawn from `seed`: the same seed gives the same weights, even
    /// while other threads build models (the device's generator is shared by every thread: it is seeded and
    /// every weight drawn under one lock).
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Result<SimClr> {
        static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        device.seed(seed);
        let net = self.init(device)?;
        // Burn draws initial weights lazily, on first use: draw them all now, under the lock.
        net.visit(&mut Materialize);
        Ok(net)
    }
}

/// Touches every float parameter, which makes Burn draw lazily initialised weights.
struct Materialize;

impl burn::module::ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let _ = param.val();
    }
}

impl SimClr {
    /// NT-Xent of two batches of views (already normalised), image `i` in row `i` of both.
    pub fn loss(&self, views1: Tensor<4>, views2: Tensor<4>, temperature: f64) -> Tensor<1> {
        Self::sharded_loss_unchecked(
            &[self],
            vec![(views1, views2)],
            temperature,
            ShardNorm::Synchronized,
        )
    }

    /// NT-Xent of a batch cut into shards, as data-parallel training computes it: `views[s]` holds the two views
    /// of shard `s`'s images (on its device), `replicas[s]` that shard's copy of the model (on the same device).
    /// Each shard embeds its own images; the loss sees the embeddings of every shard, gathered on shard 0's
    /// device in shard order (so the batch is the shards' images in order), with gradients flowing back to
    /// each embedding's shard. Batch norm per `norm`: with [`ShardNorm::Synchronized`] the loss, its gradients
    /// and the running statistics are those of one device on the whole batch (to f32 rounding).
    ///
    /// Errors: no shard, a replica count that is not the shard count, or two views of different shapes.
    pub fn sharded_loss(
        replicas: &[&SimClr],
        views: Vec<(Tensor<4>, Tensor<4>)>,
        temperature: f64,
        norm: ShardNorm,
    ) -> Result<Tensor<1>> {
        if views.is_empty() || replicas.len() != views.len() {
            return Err(Error::InvalidConfig {
                name: "shards",
                reason: format!(
                    "{} replicas for {} shards of views",
                    replicas.len(),
                    views.len()
                ),
            });
        }
        if let Some((a, b)) = views
            .iter()
            .find(|(a, b)| a.dims() != b.dims() || a.dims()[0] == 0)
        {
            return Err(Error::ImageShape {
                channels: a.dims()[1],
                got: b.dims().to_vec(),
            });
        }
        // Replicas of one model: the sharded forward walks their layers in step.
        let size = replicas[0].num_params();
        if let Some(other) = replicas.iter().find(|r| r.num_params() != size) {
            return Err(Error::InvalidConfig {
                name: "shards",
                reason: format!(
                    "replicas of different models: {size} and {} parameters",
                    other.num_params()
                ),
            });
        }
        for (s, ((v1, _), replica)) in views.iter().zip(replicas).enumerate() {
            if !replica.devices().contains(&v1.device()) {
                return Err(Error::InvalidConfig {
                    name: "shards",
                    reason: format!("the views of shard {s} are not on its replica's device"),
                });
            }
        }
        if replicas.len() > 1 && torchvision_encoders(replicas).is_none() {
            return Err(Error::InvalidConfig {
                name: "shards",
                reason: "data-parallel training (more than one shard) supports torchvision-layout encoders only, \
                         not SimCLRv2's"
                    .into(),
            });
        }
        Ok(Self::sharded_loss_unchecked(
            replicas,
            views,
            temperature,
            norm,
        ))
    }

    fn sharded_loss_unchecked(
        replicas: &[&SimClr],
        views: Vec<(Tensor<4>, Tensor<4>)>,
        temperature: f64,
        norm: ShardNorm,
    ) -> Tensor<1> {
        let sizes: Vec<usize> = views.iter().map(|(v, _)| v.dims()[0]).collect();
        // Both views of a shard's images go through its network together, as on one device.
        let xs = views
            .into_iter()
            .map(|(v1, v2)| Tensor::cat(vec![v1, v2], 0))
            .collect();
        let heads = shard::each(replicas, |m| &m.head);
        let features = match torchvision_encoders(replicas) {
            Some(encoders) => ResNet::forward_features_sharded(&encoders, xs, norm),
            // SimCLRv2 encoders have no sharded forward: one shard (checked by `sharded_loss`), for which
            // per-shard and synchronised batch norm are the same.
            None => xs
                .into_iter()
                .zip(replicas)
                .map(|(x, m)| m.encoder.forward_features(x))
                .collect(),
        };
        let z = ProjectionHead::forward_sharded(&heads, features, norm);
        let home = z[0].device();
        // The gather: every shard's embeddings on shard 0's device, view 1 of all images, then view 2.
        let (z1, z2): (Vec<_>, Vec<_>) = z
            .into_iter()
            .zip(&sizes)
            .map(|(z, &n)| {
                let z = z.to_device(&home);
                (z.clone().narrow(0, 0, n), z.narrow(0, n, n))
            })
            .unzip();
        nt_xent(Tensor::cat(z1, 0), Tensor::cat(z2, 0), temperature)
    }
}

/// The replicas' encoders when all are torchvision ResNets (the family with a sharded forward).
fn torchvision_encoders<'a>(replicas: &[&'a SimClr]) -> Option<Vec<&'a ResNet>> {
    replicas
        .iter()
        .map(|m| match &m.encoder {
            Encoder::Torchvision(net) => Some(net),
            Encoder::SimClrV2(_) => None,
        })
        .collect()
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
