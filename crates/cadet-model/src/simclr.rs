//! The SimCLR model: encoder and projection head.

use burn::prelude::*;

use crate::shard::{self, ShardNorm};
use crate::{
    Error, FeatureModel, ProjectionHead, ProjectionHeadConfig, ResNet, ResNetConfig, Result,
    nt_xent,
};

/// Configuration of a [`SimClr`] model.
#[derive(Config, Debug)]
pub struct SimClrConfig {
    /// The encoder.
    pub encoder: ResNetConfig,
    /// Hidden width of the head.
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
    pub encoder: ResNet,
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
        let encoders = shard::each(replicas, |m| &m.encoder);
        let heads = shard::each(replicas, |m| &m.head);
        let features = ResNet::forward_features_sharded(&encoders, xs, norm);
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
