//! The classifier contract that attacks and label-based baselines use: logits of images in `[0, 1]`, the
//! normalisation inside, on any device (an autodiff device when gradients with respect to the input are needed).

use burn::prelude::*;

use crate::{CifarResNet, Normalization, ResNet};

/// A classifier of images `(N, C, H, W)` in `[0, 1]`.
pub trait Classifier: Send + Sync {
    /// Logits `(N, classes)`.
    fn logits(&self, images: Tensor<4>) -> Tensor<2>;
    /// The device its parameters live on (inputs must be created there).
    fn device(&self) -> Device;
}

/// A network trained on normalised inputs, wrapped so it takes images in `[0, 1]`. The network is frozen: on an
/// autodiff device (where attacks need it, for gradients with respect to the input) its batch norms still use
/// their running statistics and its parameters take no gradient, exactly as at inference.
#[derive(Debug, Clone)]
pub struct Normalized<M> {
    /// The network.
    pub model: M,
    /// Its input normalisation.
    pub normalization: Normalization,
    device: Device,
}

impl<M: Module> Normalized<M> {
    /// `model` living on `device`, trained on inputs normalised by `normalization`.
    pub fn new(model: M, normalization: Normalization, device: Device) -> Self {
        Self {
            model: model.freeze(),
            normalization,
            device,
        }
    }
}

impl Classifier for Normalized<CifarResNet> {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.model.forward(self.normalization.apply(images))
    }
    fn device(&self) -> Device {
        self.device.clone()
    }
}

/// A [`ResNet`] built with classes; without a classifier its logits are its features.
impl Classifier for Normalized<ResNet> {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.normalization.apply(images);
        match self.model.forward(x.clone()) {
            Some(logits) => logits,
            None => crate::FeatureModel::forward_features(&self.model, x),
        }
    }
    fn device(&self) -> Device {
        self.device.clone()
    }
}
