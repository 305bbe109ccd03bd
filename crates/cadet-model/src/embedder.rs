//! Any Burn feature model as a cadet [`Embedder`]: images `(N, C, H, W)` in `[0, 1]` in, features out, the
//! normalisation inside.

use burn::prelude::*;
use burn::tensor::FloatDType;
use cadet_core::Embedder;
use ndarray::{Array2, ArrayView4};

use crate::{Error, FeatureModel, Precision};

/// Per-channel normalisation applied before the model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Channel means.
    #[serde(deserialize_with = "three_channels")]
    pub mean: [f32; 3],
    /// Channel standard deviations.
    #[serde(deserialize_with = "three_channels")]
    pub std: [f32; 3],
}

/// Three values, one per channel: another count is named as such (serde's fixed-size array said "trailing
/// characters" for a fourth value, which reads like broken JSON).
fn three_channels<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<[f32; 3], D::Error> {
    let values = <Vec<f32> as serde::Deserialize>::deserialize(deserializer)?;
    <[f32; 3]>::try_from(values.as_slice()).map_err(|_| {
        serde::de::Error::custom(format!(
            "{} values where the three channels need 3",
            values.len()
        ))
    })
}

impl Normalization {
    /// ImageNet statistics (torchvision's pretrained models, and the CIFAR ResNets of `../shared/data`).
    pub fn imagenet() -> Self {
        Self {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }
    /// No normalisation.
    pub fn identity() -> Self {
        Self {
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }
    /// What the released SimCLRv2 checkpoints expect ([`SimClrV2Config`](crate::SimClrV2Config)): images in
    /// `[0, 1]` as they are, no mean/std normalisation (the [`identity`](Self::identity)).
    pub fn simclrv2() -> Self {
        Self::identity()
    }
    /// Checks that every mean is finite (within ±1000) and every standard deviation in [0.001, 1000] (settings
    /// read from a checkpoint may say anything; a zero or negative deviation would divide by zero or flip the
    /// images, a tiny one blow them up to ~1e29).
    pub fn validate(&self) -> crate::Result<()> {
        // Inputs lie in [0, 1]: a mean far outside it, or a deviation so small that the normalised images are
        // ~1e29 (the network then learns nothing, and embeds to huge features), is no normalisation of them.
        let bad = self
            .mean
            .iter()
            .any(|m| !(m.is_finite() && m.abs() <= 1e3))
            .then(|| format!("means {:?} must be finite, within ±1000", self.mean))
            .or_else(|| {
                self.std
                    .iter()
                    .any(|s| !(s.is_finite() && (1e-3..=1e3).contains(s)))
                    .then(|| {
                        format!(
                            "standard deviations {:?} must lie in [0.001, 1000]",
                            self.std
                        )
                    })
            });
        match bad {
            Some(reason) => Err(Error::InvalidConfig {
                name: "normalization",
                reason,
            }),
            None => Ok(()),
        }
    }

    /// `(x − mean) / std` on a batch `(N, 3, H, W)`.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let mean =
            Tensor::<4>::from_data(TensorData::new(self.mean.to_vec(), [1, 3, 1, 1]), &device);
        let std = Tensor::<4>::from_data(TensorData::new(self.std.to_vec(), [1, 3, 1, 1]), &device);
        (x - mean) / std
    }
}

/// A [`FeatureModel`] on a device, embedding images in batches.
#[derive(Debug)]
pub struct BurnEmbedder<M> {
    model: M,
    device: Device,
    normalization: Normalization,
    batch_size: usize,
    /// The forward pass's arithmetic.
    precision: Precision,
    name: String,
}

impl<M: FeatureModel> BurnEmbedder<M> {
    /// `model` (already on `device`), `name` identifying the weights. The model is frozen, so it embeds in
    /// inference mode (batch norm on running statistics) even on an autodiff device.
    pub fn new(
        model: M,
        device: Device,
        normalization: Normalization,
        name: impl Into<String>,
    ) -> Self {
        Self {
            model: model.freeze(),
            device,
            normalization,
            batch_size: 256,
            precision: Precision::F32,
            name: name.into(),
        }
    }

    /// Images per forward pass (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Embeds with the forward pass in `precision` (the model's weights cast once, batch norm kept in `f32`;
    /// features come back as `f32`); an error if the device has no arithmetic in it. The name gets `@bf16`
    /// (features differ from `f32`'s by about 1%: a calibration made in one precision is not the other's), and
    /// [`model`](Self::model) and [`to_tensor`](Self::to_tensor) give the cast model and cast inputs.
    pub fn with_precision(mut self, precision: Precision) -> Result<Self, Error> {
        precision.check(&self.device)?;
        // The cast is one way: bf16 weights do not give back the f32 ones.
        if self.precision != Precision::F32 && precision != self.precision {
            return Err(Error::InvalidConfig {
                name: "precision",
                reason: format!(
                    "{precision} asked of an embedder in {} already: make a new one from the f32 model",
                    self.precision
                ),
            });
        }
        if precision != self.precision {
            self.model = precision.cast_model(self.model);
            if precision != Precision::F32 {
                self.name = format!("{}@{precision}", self.name);
            }
        }
        self.precision = precision;
        Ok(self)
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Images `(N, 3, H, W)` in `[0, 1]` to a normalised tensor on the device.
    pub fn to_tensor(&self, images: ArrayView4<'_, f32>) -> Result<Tensor<4>, Error> {
        if images.dim().1 != 3 {
            return Err(Error::ImageShape {
                channels: 3,
                got: images.shape().to_vec(),
            });
        }
        let x = self
            .normalization
            .apply(crate::view_to_tensor(&images, &self.device));
        Ok(self.precision.cast_input(x))
    }
}

impl<M: FeatureModel> Embedder for BurnEmbedder<M> {
    fn dim(&self) -> usize {
        self.model.feature_dim()
    }
    fn embed(&self, images: ArrayView4<'_, f32>) -> cadet_core::Result<Array2<f32>> {
        let n = images.dim().0;
        let mut out = Array2::<f32>::zeros((n, self.dim()));
        for start in (0..n).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(n);
            let x = self.to_tensor(images.slice(ndarray::s![start..end, .., .., ..]))?;
            let features = self.model.forward_features(x).cast(FloatDType::F32);
            let block = crate::tensor_to_array(features)?;
            out.slice_mut(ndarray::s![start..end, ..]).assign(&block);
        }
        // Finite weights can still overflow (weights near f32::MAX): NaN features are an error, never an output.
        cadet_core::validate::finite_array(
            "embedder features (the model overflowed)",
            out.view().into_dyn(),
        )?;
        Ok(out)
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}
