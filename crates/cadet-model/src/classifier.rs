//! The classifier contract that attacks and label-based baselines use: logits of images in `[0, 1]`, the
//! normalisation inside, on any device (an autodiff device when gradients with respect to the input are needed).

use burn::prelude::*;
use burn::tensor::FloatDType;
use ndarray::ArrayView4;

use crate::{CifarResNet, Error, Normalization, ResNet, Result};

/// A classifier of images `(N, C, H, W)` in `[0, 1]`.
pub trait Classifier: Send + Sync {
    /// Logits `(N, classes)`.
    fn logits(&self, images: Tensor<4>) -> Tensor<2>;
    /// The device its parameters live on (inputs must be created there).
    fn device(&self) -> Device;
}

/// The predicted class of each image `(N, C, H, W)` in `[0, 1]`, `batch` images per forward pass.
pub fn predict(
    classifier: &dyn Classifier,
    images: ArrayView4<'_, f32>,
    batch: usize,
) -> Result<Vec<u32>> {
    let n = images.dim().0;
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(batch.max(1)) {
        let end = (start + batch.max(1)).min(n);
        let x = crate::view_to_tensor(
            &images.slice(ndarray::s![start..end, .., .., ..]),
            &classifier.device(),
        );
        out.extend(predictions(classifier.logits(x))?);
    }
    Ok(out)
}

/// The predicted class of each row of `logits` `(N, classes)` (the first of equal maxima), or
/// [`Error::NonFiniteOutput`] when a logit is NaN or infinite: finite weights near `f32::MAX` overflow, and the
/// argmax of NaN logits is a class no network chose.
///
/// ```
/// use burn::prelude::*;
/// let device = Device::flex();
/// let logits = Tensor::<2>::from_floats([[0.1, 2.0, 0.3], [5.0, 1.0, 5.0]], &device);
/// assert_eq!(cadet_model::predictions(logits)?, vec![1, 0]);
/// let broken = Tensor::<2>::from_floats([[0.1, f32::NAN, 0.3]], &device);
/// assert!(cadet_model::predictions(broken).is_err());
/// # Ok::<(), cadet_model::Error>(())
/// ```
pub fn predictions(logits: Tensor<2>) -> Result<Vec<u32>> {
    let [_, classes] = logits.dims();
    let values = logits
        .cast(FloatDType::F32)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()?;
    if let Some(&value) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::NonFiniteOutput {
            what: "classifier logits",
            value,
        });
    }
    Ok(values
        .chunks(classes.max(1))
        .map(|row| {
            let mut best = 0;
            for (i, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = i;
                }
            }
            best as u32
        })
        .collect())
}

/// Top-1 accuracy of `classifier` on `images` with `labels` (one per image).
pub fn accuracy(
    classifier: &dyn Classifier,
    images: ArrayView4<'_, f32>,
    labels: &[u32],
    batch: usize,
) -> Result<f64> {
    if labels.len() != images.dim().0 || labels.is_empty() {
        return Err(Error::InvalidConfig {
            name: "labels",
            reason: format!("{} labels for {} images", labels.len(), images.dim().0),
        });
    }
    let predicted = predict(classifier, images, batch)?;
    let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    Ok(correct as f64 / labels.len() as f64)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits = mean of each channel: the brightest channel is the class.
    struct BrightestChannel(Device);
    impl Classifier for BrightestChannel {
        fn logits(&self, images: Tensor<4>) -> Tensor<2> {
            let [n, c, _, _] = images.dims();
            images.mean_dim(3).mean_dim(2).reshape([n, c])
        }
        fn device(&self) -> Device {
            self.0.clone()
        }
    }

    #[test]
    fn predictions_and_accuracy_by_hand() {
        let clf = BrightestChannel(Device::flex());
        // Image i is brightest in channel i % 3.
        let images =
            ndarray::Array4::from_shape_fn(
                (7, 3, 2, 2),
                |(i, c, _, _)| {
                    if c == i % 3 { 0.9 } else { 0.1 }
                },
            );
        let predicted = predict(&clf, images.view(), 3).unwrap();
        assert_eq!(predicted, vec![0, 1, 2, 0, 1, 2, 0]);
        let labels = [0, 1, 2, 0, 1, 2, 2];
        let acc = accuracy(&clf, images.view(), &labels, 2).unwrap();
        assert!((acc - 6.0 / 7.0).abs() < 1e-12);
        assert!(accuracy(&clf, images.view(), &labels[..3], 2).is_err());
    }
}
