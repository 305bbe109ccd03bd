//! Supervised training with cross-entropy: the classifier behind the label-based baselines and the target of
//! the attacks. SGD with momentum and weight decay, linear warm-up then cosine decay, seeded batches.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig, momentum::MomentumConfig};
use burn::prelude::*;
use cadet_core::Progress;
use ndarray::{Array4, Axis};
use std::time::Instant;

use crate::{CifarResNet, Error, Normalization, ResNet, Result, WarmupCosine};

/// A network with a classification layer: logits of normalised images.
pub trait LogitsModel: Module + Send + Sync {
    /// Logits `(N, classes)` of normalised images `(N, C, H, W)`.
    fn forward_logits(&self, x: Tensor<4>) -> Tensor<2>;
}

impl LogitsModel for CifarResNet {
    fn forward_logits(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward(x)
    }
}

/// A [`ResNet`] built with `num_classes`; one built without gives its pooled features (train with a
/// classifier).
impl LogitsModel for ResNet {
    fn forward_logits(&self, x: Tensor<4>) -> Tensor<2> {
        match self.forward(x.clone()) {
            Some(logits) => logits,
            None => crate::FeatureModel::forward_features(self, x),
        }
    }
}

/// A source of labelled batches, e.g. a data set through random crops and flips.
pub trait LabelledBatches: Sync {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there is no image.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The images `(n, C, H, W)` in `[0, 1]` of `indices` (augmented with `seed`) and their labels.
    fn batch(&self, indices: &[usize], seed: u64) -> Result<(Array4<f32>, Vec<u32>)>;
}

/// Images and labels in memory, no augmentation.
#[derive(Debug, Clone)]
pub struct InMemory {
    /// `(N, C, H, W)` in `[0, 1]`.
    pub images: Array4<f32>,
    /// One label per image.
    pub labels: Vec<u32>,
}

impl LabelledBatches for InMemory {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn batch(&self, indices: &[usize], _seed: u64) -> Result<(Array4<f32>, Vec<u32>)> {
        Ok((
            self.images.select(Axis(0), indices),
            indices.iter().map(|&i| self.labels[i]).collect(),
        ))
    }
}

/// Settings of supervised training (defaults: the usual CIFAR ResNet recipe).
#[derive(Config, Debug)]
pub struct SupervisedConfig {
    /// Images per step.
    pub batch_size: usize,
    /// Epochs (incomplete last batches are dropped).
    pub epochs: usize,
    /// Peak learning rate.
    #[config(default = 0.1)]
    pub lr: f64,
    /// SGD momentum.
    #[config(default = 0.9)]
    pub momentum: f64,
    /// Weight decay.
    #[config(default = 5e-4)]
    pub weight_decay: f64,
    /// Epochs of linear warm-up.
    #[config(default = 1.0)]
    pub warmup_epochs: f64,
    /// Seed of the sample order and of the augmentation.
    #[config(default = 0)]
    pub seed: u64,
}

/// Trains `model` (on an autodiff device) with cross-entropy on `data`, inputs normalised by `normalization`;
/// returns the trained model and the loss of every step. Progress: one `advance` per step and a note every
/// 10 steps.
pub fn train_supervised<M: LogitsModel>(
    mut model: M,
    data: &dyn LabelledBatches,
    config: &SupervisedConfig,
    normalization: &Normalization,
    progress: &dyn Progress,
) -> Result<(M, Vec<f32>)> {
    if config.batch_size < 1 || config.epochs == 0 || data.len() < config.batch_size {
        return Err(Error::InvalidConfig {
            name: "SupervisedConfig",
            reason: format!(
                "{} images for batches of {} over {} epochs",
                data.len(),
                config.batch_size,
                config.epochs
            ),
        });
    }
    let lr_ok = config.lr > 0.0 && config.lr.is_finite();
    if !(lr_ok && (0.0..1.0).contains(&config.momentum)) {
        return Err(Error::InvalidConfig {
            name: "SupervisedConfig",
            reason: format!(
                "need lr > 0 and 0 ≤ momentum < 1: {} / {}",
                config.lr, config.momentum
            ),
        });
    }
    let device = model
        .devices()
        .into_iter()
        .next()
        .ok_or_else(|| Error::InvalidConfig {
            name: "model",
            reason: "has no parameters".into(),
        })?;
    let per_epoch = data.len() / config.batch_size;
    let total = (per_epoch * config.epochs) as u64;
    let schedule = WarmupCosine {
        base_lr: config.lr,
        warmup_steps: (config.warmup_epochs * per_epoch as f64).round() as u64,
        total_steps: total,
    };
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(config.momentum)))
        .with_weight_decay(Some(burn::optim::decay::WeightDecayConfig::new(
            config.weight_decay as f32,
        )))
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut losses = Vec::with_capacity(total as usize);
    progress.start("supervised training", total);
    let start = Instant::now();
    let mut order = Vec::new();
    for step in 0..total {
        let (epoch, k) = (step as usize / per_epoch, step as usize % per_epoch);
        if k == 0 {
            order = epoch_order(data.len(), config.seed, epoch as u64);
        }
        let indices = &order[k * config.batch_size..(k + 1) * config.batch_size];
        let (images, labels) = data.batch(indices, config.seed ^ (step << 20))?;
        let n = images.dim().0;
        if labels.len() != n {
            return Err(Error::InvalidConfig {
                name: "data",
                reason: format!("a batch of {n} images came with {} labels", labels.len()),
            });
        }
        let x = crate::array_to_tensor(images, &device);
        let targets = Tensor::<1, Int>::from_data(
            TensorData::new(labels.iter().map(|&l| l as i64).collect(), [n]),
            &device,
        );
        let loss = loss_fn.forward(model.forward_logits(normalization.apply(x)), targets);
        let value = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            return Err(Error::NonFiniteLoss {
                step: step + 1,
                value,
            });
        }
        losses.push(value);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(schedule.lr(step), model, grads);
        progress.advance(1);
        if (step + 1) % 10 == 0 || step + 1 == total {
            progress.note(&format!(
                "step {} of {total} loss {value:.4} lr {:.4} {:.0} img/s",
                step + 1,
                schedule.lr(step),
                (step + 1) as f64 * config.batch_size as f64 / start.elapsed().as_secs_f64()
            ));
        }
    }
    progress.finish();
    Ok((model, losses))
}

/// The seeded sample order of one epoch (shared with the SimCLR trainer).
pub(crate) fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch);
    order.shuffle(&mut rng);
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CifarResNetConfig, Classifier, Normalized};
    use cadet_core::NoProgress;

    /// The device's generator is shared by every thread: tests that draw weights hold this lock, so that the
    /// reproducibility test's seeded draws are its own.
    static RANDOM: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn random_lock() -> std::sync::MutexGuard<'static, ()> {
        RANDOM
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Two classes told apart by brightness: a CIFAR ResNet-20 must learn them in a few steps.
    fn two_classes(n: usize) -> InMemory {
        let images = Array4::from_shape_fn((n, 3, 8, 8), |(i, c, y, x)| {
            let base = if i % 2 == 0 { 0.25 } else { 0.75 };
            base + 0.1 * (((i * 31 + c * 7 + y * 3 + x) % 11) as f32 / 11.0 - 0.5)
        });
        InMemory {
            images,
            labels: (0..n).map(|i| (i % 2) as u32).collect(),
        }
    }

    #[test]
    fn learns_a_separable_problem_and_is_reproducible() {
        let _random = random_lock();
        let device = Device::flex().autodiff();
        let data = two_classes(64);
        let config = SupervisedConfig::new(16, 4).with_lr(0.05).with_seed(3);
        let run = || {
            device.seed(7);
            let model = CifarResNetConfig::new(20)
                .with_num_classes(2)
                .init(&device)
                .unwrap();
            train_supervised(
                model,
                &data,
                &config,
                &Normalization::identity(),
                &NoProgress,
            )
            .unwrap()
        };
        let (model, losses) = run();
        assert_eq!(losses.len(), 16);
        let head: f32 = losses[..4].iter().sum();
        let tail: f32 = losses[12..].iter().sum();
        assert!(tail < 0.5 * head, "loss {losses:?}");
        let clf = Normalized::new(model, Normalization::identity(), device.clone());
        let x = Tensor::<4>::from_data(
            TensorData::new(data.images.iter().copied().collect(), [64, 3, 8, 8]),
            &device,
        );
        let predicted = clf.logits(x).argmax(1).into_data();
        let predicted: Vec<i64> = predicted.convert::<i64>().try_to_vec::<i64>().unwrap();
        let correct = predicted
            .iter()
            .zip(&data.labels)
            .filter(|(p, l)| **p == **l as i64)
            .count();
        assert!(correct >= 60, "{correct} of 64 correct");
        let (_, again) = run();
        assert_eq!(losses, again, "same seed, same losses");
    }

    #[test]
    fn rejects_bad_settings() {
        let device = Device::flex().autodiff();
        let model = CifarResNetConfig::new(20).init(&device).unwrap();
        let data = two_classes(8);
        let bad = [
            SupervisedConfig::new(16, 1),
            SupervisedConfig::new(4, 0),
            SupervisedConfig::new(4, 1).with_lr(-1.0),
            SupervisedConfig::new(4, 1).with_momentum(1.0),
        ];
        for config in bad {
            let out = train_supervised(
                model.clone(),
                &data,
                &config,
                &Normalization::identity(),
                &NoProgress,
            );
            assert!(
                matches!(out, Err(Error::InvalidConfig { .. })),
                "{config:?}"
            );
        }
    }

    /// A user's batches in any memory layout (column-major, permuted axes, sliced with an offset) train
    /// exactly as the standard-layout ones: the conversion reads the logical order, not the raw buffer.
    #[test]
    fn batches_in_any_layout_train_the_same() {
        let _random = random_lock();
        use ndarray::{ShapeBuilder, s};
        struct Relaid(InMemory, usize);
        impl LabelledBatches for Relaid {
            fn len(&self) -> usize {
                self.0.len()
            }
            fn batch(&self, indices: &[usize], seed: u64) -> Result<(Array4<f32>, Vec<u32>)> {
                let (x, labels) = self.0.batch(indices, seed)?;
                let (n, c, h, w) = x.dim();
                let x = match self.1 {
                    0 => x,
                    1 => {
                        let mut f = Array4::zeros((n, c, h, w).f());
                        f.assign(&x);
                        f
                    }
                    2 => x
                        .permuted_axes([0, 2, 3, 1])
                        .as_standard_layout()
                        .into_owned()
                        .permuted_axes([0, 3, 1, 2]),
                    _ => {
                        let mut big = Array4::from_elem((n + 3, c, h, w), 5.0f32);
                        big.slice_mut(s![2..n + 2, .., .., ..]).assign(&x);
                        big.slice_move(s![2..n + 2, .., .., ..])
                    }
                };
                Ok((x, labels))
            }
        }
        let device = Device::flex().autodiff();
        let config = SupervisedConfig::new(8, 1).with_lr(0.05).with_seed(1);
        // One initial model for every run (a clone per run), so that only the layout differs.
        let model = CifarResNetConfig::new(20)
            .with_num_classes(2)
            .init(&device)
            .unwrap();
        // Burn draws weights lazily: draw them now (one forward pass touches them all).
        let _ = model.forward(Tensor::zeros([1, 3, 8, 8], &device));
        let losses = |layout: usize| {
            let data = Relaid(two_classes(16), layout);
            let (_, losses) = train_supervised(
                model.clone(),
                &data,
                &config,
                &Normalization::identity(),
                &NoProgress,
            )
            .unwrap();
            losses
        };
        let expected = losses(0);
        for layout in 1..4 {
            assert_eq!(losses(layout), expected, "layout {layout}");
        }
    }

    /// A NaN in the inputs makes the loss NaN: a typed error naming the step.
    #[test]
    fn a_non_finite_loss_is_an_error_naming_the_step() {
        let _random = random_lock();
        let device = Device::flex().autodiff();
        let model = CifarResNetConfig::new(20)
            .with_num_classes(2)
            .init(&device)
            .unwrap();
        let mut data = two_classes(8);
        data.images.fill(f32::NAN);
        let out = train_supervised(
            model,
            &data,
            &SupervisedConfig::new(4, 1),
            &Normalization::identity(),
            &NoProgress,
        );
        assert!(
            matches!(out, Err(Error::NonFiniteLoss { step: 1, .. })),
            "{:?}",
            out.map(|(_, l)| l)
        );
    }
}
