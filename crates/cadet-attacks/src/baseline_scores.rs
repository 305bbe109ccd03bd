//! Per-image scores of the classifier-based adversarial-detection baselines of the paper's Table 4: ODIN (Liang
//! et al., 2018) and the two criteria of Hu et al. (2019, "A New Defense Against Adversarial Images: Turning a
//! Weakness into a Strength"). They need the classifier and input gradients, hence this crate; turning the scores
//! into p-values (self-calibration on held-out in-distribution images) is `cadet-detect`'s `HuCalibration` and
//! `Calibrator`, which do not depend on Burn.
//!
//! Every score is computed batch by batch and does not depend on the batch size; the random parts (noise, random
//! targets) are seeded per image (stream = the image's index), so results are reproducible.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use cadet_model::Classifier;
use ndarray::{ArrayView4, s};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::common::{check_images, labels_tensor, to_tensor};
use crate::{Error, Result};

fn bad<T>(name: &'static str, reason: String) -> Result<T> {
    Err(Error::Core(cadet_core::Error::InvalidParameter {
        name,
        reason,
    }))
}

fn check_batch(batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return bad("batch_size", "at least 1".into());
    }
    Ok(())
}

/// Logits of a batch on the host, `(n, classes)` as rows of `f64`.
fn logits_rows(logits: Tensor<2>) -> Result<Vec<Vec<f64>>> {
    let [n, c] = logits.dims();
    let v = logits.into_data().convert::<f32>().try_to_vec::<f32>()?;
    if let Some(x) = v.iter().find(|x| !x.is_finite()) {
        return Err(Error::Backend(format!("non-finite logit {x}")));
    }
    Ok((0..n)
        .map(|i| {
            v[i * c..(i + 1) * c]
                .iter()
                .map(|&x| f64::from(x))
                .collect()
        })
        .collect())
}

/// `softmax(l / t)` in `f64`, stably.
fn softmax(l: &[f64], t: f64) -> Vec<f64> {
    let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = l.iter().map(|v| ((v - max) / t).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// The first index of the largest value (Burn's `argmax` convention on ties).
fn argmax(l: &[f64]) -> usize {
    l.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

/// ODIN (Liang et al., 2018): temperature scaling and a small input perturbation that raises the predicted
/// class's softmax, which it raises more for in-distribution images.
///
/// `S(x) = max_c softmax(f(x̃) / T)_c` with `x̃ = clip₀₁(x − ε · sign(−∇ₓ log softmax(f(x) / T)_ŷ))`, `ŷ` the
/// predicted class and the gradient taken with respect to the image in `[0, 1]` (the classifier normalises
/// inside). **Low `S` = anomalous**: the anomaly score to calibrate is `−S`. The score is computed on the host in
/// `f64` from the perturbed image's logits, since at `T = 1000` all softmax values are close to `1 / classes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Odin {
    /// Temperature `T > 0`, finite.
    pub temperature: f64,
    /// Perturbation size `ε ≥ 0` (in `[0, 1]` pixel units).
    pub epsilon: f32,
    /// Images per batch (≥ 1).
    pub batch_size: usize,
}

impl Default for Odin {
    /// [`Odin::paper`].
    fn default() -> Self {
        Self::paper()
    }
}

impl Odin {
    /// ODIN's CIFAR-10 setting: `T = 1000`, `ε = 0.0014`.
    pub fn paper() -> Self {
        Self {
            temperature: 1000.0,
            epsilon: 0.0014,
            batch_size: 128,
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        let t = self.temperature;
        if !(t > 0.0 && t.is_finite()) {
            return bad("temperature", format!("must be > 0 and finite, got {t}"));
        }
        let e = self.epsilon;
        if !(e >= 0.0 && e.is_finite()) {
            return bad("epsilon", format!("must be ≥ 0 and finite, got {e}"));
        }
        check_batch(self.batch_size)
    }

    /// A row name, e.g. `"ODIN (T = 1000, ε = 0.0014)"`.
    pub fn name(&self) -> String {
        format!("ODIN (T = {}, ε = {})", self.temperature, self.epsilon)
    }

    /// `S(x)` of each image `(N, C, H, W)` in `[0, 1]` (high = in-distribution). The classifier must live on an
    /// autodiff device when `ε > 0`.
    pub fn scores(&self, clf: &dyn Classifier, images: ArrayView4<'_, f32>) -> Result<Vec<f64>> {
        self.validate()?;
        check_images(images)?;
        let device = clf.device();
        let n = images.dim().0;
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(n);
            let x = to_tensor(images.slice(s![start..end, .., .., ..]), &device);
            let perturbed = if self.epsilon > 0.0 {
                let x = x.detach().require_grad();
                let logits = clf.logits(x.clone());
                let predicted: Vec<u32> = logits_rows(logits.clone().detach())?
                    .iter()
                    .map(|r| argmax(r) as u32)
                    .collect();
                let y = labels_tensor(&predicted, &device);
                // Σ over the batch of log softmax(f(x)/T)_ŷ: rows do not interact.
                let objective = log_softmax(logits / self.temperature as f32, 1)
                    .gather(1, y)
                    .sum();
                let grads = objective.backward();
                let g = x.grad(&grads).ok_or_else(|| {
                    Error::Backend(
                        "no gradient for the input: is the classifier on an autodiff device?"
                            .into(),
                    )
                })?;
                // x − ε·sign(−∇) = x + ε·sign(∇).
                (x.detach() + Tensor::<4>::from_inner(g).sign() * self.epsilon).clamp(0.0, 1.0)
            } else {
                x
            };
            for row in logits_rows(clf.logits(perturbed).detach())? {
                let p = softmax(&row, self.temperature);
                out.push(p.iter().copied().fold(0.0, f64::max));
            }
        }
        Ok(out)
    }
}

/// Hu et al.'s first criterion: how much the classifier's output moves under small Gaussian noise. Adversarial
/// images sit close to a decision boundary, so noise moves their softmax (and their prediction) more than it
/// moves natural images'.
///
/// For each image, `n_noise` copies `x + σ·z` (`z` standard normal, seeded per image; **not** clipped to
/// `[0, 1]`, as Hu et al.'s code) give
/// - [`NoiseScores::l1_change`]: the mean over the copies of `‖softmax(f(x)) − softmax(f(x + σz))‖₁`, Hu et al.'s
///   criterion 1 (their code draws one copy; more copies reduce the variance). **High = anomalous.**
/// - [`NoiseScores::kept`]: the share of the copies whose prediction is the clean prediction. Low = anomalous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseRobustness {
    /// Standard deviation `σ ≥ 0` of the noise, in `[0, 1]` pixel units.
    pub sigma: f32,
    /// Noisy copies per image (≥ 1).
    pub n_noise: usize,
    /// Seed of the noise.
    pub seed: u64,
    /// Images per batch (≥ 1); a batch runs `n_noise` forward passes of this size.
    pub batch_size: usize,
}

impl Default for NoiseRobustness {
    /// [`NoiseRobustness::hu`].
    fn default() -> Self {
        Self::hu()
    }
}

impl NoiseRobustness {
    /// Hu et al.'s CIFAR-10 noise level `σ = 0.01` (their `evaluate.py`; 0.1 on ImageNet), 20 copies, seed 0.
    pub fn hu() -> Self {
        Self {
            sigma: 0.01,
            n_noise: 20,
            seed: 0,
            batch_size: 128,
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if !(self.sigma >= 0.0 && self.sigma.is_finite()) {
            return bad(
                "sigma",
                format!("must be ≥ 0 and finite, got {}", self.sigma),
            );
        }
        if self.n_noise == 0 {
            return bad("n_noise", "at least 1".into());
        }
        check_batch(self.batch_size)
    }

    /// Both scores of each image `(N, C, H, W)` in `[0, 1]`. Forward passes only: any device.
    pub fn scores(&self, clf: &dyn Classifier, images: ArrayView4<'_, f32>) -> Result<NoiseScores> {
        self.validate()?;
        check_images(images)?;
        let device = clf.device();
        let (n, c, h, w) = images.dim();
        let per = c * h * w;
        let mut out = NoiseScores {
            l1_change: Vec::with_capacity(n),
            kept: Vec::with_capacity(n),
        };
        for start in (0..n).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(n);
            let clean = images.slice(s![start..end, .., .., ..]);
            let b = end - start;
            let x = to_tensor(clean, &device).detach();
            let clean_p: Vec<Vec<f64>> = logits_rows(clf.logits(x.clone()).detach())?
                .iter()
                .map(|r| softmax(r, 1.0))
                .collect();
            let clean_pred: Vec<usize> = clean_p.iter().map(|p| argmax(p)).collect();
            // Each image's noise from its own stream, all copies in a row: independent of the batch size.
            let mut rngs: Vec<ChaCha8Rng> = (start..end)
                .map(|i| {
                    let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                    rng.set_stream(i as u64);
                    rng
                })
                .collect();
            let mut l1 = vec![0.0f64; b];
            let mut kept = vec![0usize; b];
            for _ in 0..self.n_noise {
                let mut z = Vec::with_capacity(b * per);
                for rng in &mut rngs {
                    z.extend((0..per).map(|_| {
                        let v: f32 = StandardNormal.sample(rng);
                        v * self.sigma
                    }));
                }
                let noise = Tensor::<4>::from_data(TensorData::new(z, [b, c, h, w]), &device);
                let rows = logits_rows(clf.logits(x.clone() + noise).detach())?;
                for (i, row) in rows.iter().enumerate() {
                    let p = softmax(row, 1.0);
                    l1[i] += p
                        .iter()
                        .zip(&clean_p[i])
                        .map(|(a, b)| (a - b).abs())
                        .sum::<f64>();
                    kept[i] += usize::from(argmax(&p) == clean_pred[i]);
                }
            }
            let m = self.n_noise as f64;
            out.l1_change.extend(l1.iter().map(|v| v / m));
            out.kept.extend(kept.iter().map(|&k| k as f64 / m));
        }
        Ok(out)
    }
}

/// [`NoiseRobustness`]'s two scores per image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseScores {
    /// Mean L1 distance between the clean and the noisy softmax (Hu et al.'s criterion 1): high = anomalous.
    pub l1_change: Vec<f64>,
    /// Share of noisy copies that keep the clean prediction: low = anomalous.
    pub kept: Vec<f64>,
}

/// Which attack [`BoundarySteps`] counts the steps of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoundaryGoal {
    /// Ascend the cross-entropy of the clean prediction `ŷ` (Hu et al.'s criterion 2u).
    Untargeted,
    /// Descend the cross-entropy of a class drawn uniformly among the others (seeded per image; Hu et al.'s
    /// criterion 2t). The count still stops at the first change of prediction, as in their code.
    RandomTarget {
        /// Seed of the targets.
        seed: u64,
    },
}

/// Hu et al.'s second criterion: how many gradient steps it takes to change the prediction. Natural images are
/// surrounded by easily found adversarial directions; an adversarial image that also resists noise (criterion 1)
/// sits deep inside its adversarial class, so attacking it again takes more steps. **Many steps = anomalous.**
///
/// From the image `x⁰ = x`, `xᵏ⁺¹ = clip₀₁(xᵏ + step · sign(∇ₓ L(xᵏ)))` (L∞ steps, no projection ball) until the
/// prediction differs from the clean `ŷ`; the score is the number `k ≥ 1` of the first step that changes it, or
/// `max_steps + 1` when `max_steps` steps do not. Hu et al.'s code takes SGD steps on the raw gradient with a
/// per-model learning rate (CIFAR-10: 5·10⁻⁴ targeted, 1 untargeted, ball of radius 0.5, caps 200 / 1000, with
/// the untargeted threshold at its cap); signed steps make the step size one number in pixel units for any model.
/// On a linear two-class model `f(x) = (0, d·x + c)` with `ŷ = 0` (`d·x + c < 0`) and no clipping, the count is
/// `⌊−(d·x + c) / (step · ‖d‖₁)⌋ + 1`.
///
/// Cost: up to `max_steps` forward and backward passes per image; images leave the batch as soon as their
/// prediction changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundarySteps {
    /// Step size `> 0`, in `[0, 1]` pixel units.
    pub step: f32,
    /// Most steps (≥ 1).
    pub max_steps: usize,
    /// The attack.
    pub goal: BoundaryGoal,
    /// Images per batch (≥ 1).
    pub batch_size: usize,
}

impl Default for BoundarySteps {
    /// [`BoundarySteps::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl BoundarySteps {
    /// Untargeted, steps of `1/255`, at most 50.
    pub fn new() -> Self {
        Self {
            step: 1.0 / 255.0,
            max_steps: 50,
            goal: BoundaryGoal::Untargeted,
            batch_size: 128,
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if !(self.step > 0.0 && self.step.is_finite()) {
            return bad("step", format!("must be > 0 and finite, got {}", self.step));
        }
        if self.max_steps == 0 {
            return bad("max_steps", "at least 1".into());
        }
        check_batch(self.batch_size)
    }

    /// The number of steps of each image `(N, C, H, W)` in `[0, 1]`, in `1..=max_steps + 1`, as `f64`. The
    /// classifier must live on an autodiff device.
    pub fn scores(&self, clf: &dyn Classifier, images: ArrayView4<'_, f32>) -> Result<Vec<f64>> {
        self.validate()?;
        check_images(images)?;
        let device = clf.device();
        let n = images.dim().0;
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(n);
            let x = to_tensor(images.slice(s![start..end, .., .., ..]), &device).detach();
            out.extend(self.batch(clf, x, start)?);
        }
        Ok(out)
    }

    fn batch(&self, clf: &dyn Classifier, x: Tensor<4>, first: usize) -> Result<Vec<f64>> {
        let device = x.device();
        let b = x.dims()[0];
        let mut steps = vec![(self.max_steps + 1) as f64; b];
        // Indices (within the batch) of the images still being attacked, their clean predictions and loss labels.
        let mut active: Vec<usize> = (0..b).collect();
        let mut clean: Vec<usize> = Vec::new();
        let mut loss_labels: Vec<u32> = Vec::new();
        let mut adv = x;
        for k in 0..=self.max_steps {
            let input = adv.clone().detach().require_grad();
            let logits = clf.logits(input.clone());
            let predicted: Vec<usize> = logits_rows(logits.clone().detach())?
                .iter()
                .map(|r| argmax(r))
                .collect();
            if k == 0 {
                clean = predicted.clone();
                let classes = logits.dims()[1];
                loss_labels = match self.goal {
                    BoundaryGoal::Untargeted => clean.iter().map(|&c| c as u32).collect(),
                    BoundaryGoal::RandomTarget { seed } => {
                        if classes < 2 {
                            return bad(
                                "goal",
                                "a random target needs at least two classes".into(),
                            );
                        }
                        clean
                            .iter()
                            .enumerate()
                            .map(|(i, &c)| {
                                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                                rng.set_stream((first + i) as u64);
                                // Uniform over the classes other than c.
                                let t = rng.random_range(0..classes - 1);
                                (if t >= c { t + 1 } else { t }) as u32
                            })
                            .collect()
                    }
                };
            }
            // Images whose prediction changed after k steps are done.
            let keep: Vec<usize> = (0..active.len())
                .filter(|&j| {
                    let i = active[j];
                    if predicted[j] != clean[i] {
                        steps[i] = k as f64;
                        false
                    } else {
                        true
                    }
                })
                .collect();
            if keep.is_empty() || k == self.max_steps {
                break;
            }
            // One backward pass over the images still active at step k (those that just finished included:
            // cheaper than a second forward pass of the others), then the finished ones leave the batch.
            let y = labels_tensor(
                &active.iter().map(|&i| loss_labels[i]).collect::<Vec<_>>(),
                &device,
            );
            let log_p = log_softmax(logits, 1).gather(1, y).sum();
            // Untargeted: ascend −log p_ŷ; targeted: ascend log p_t.
            let objective = match self.goal {
                BoundaryGoal::Untargeted => log_p.neg(),
                BoundaryGoal::RandomTarget { .. } => log_p,
            };
            let grads = objective.backward();
            let g = input.grad(&grads).ok_or_else(|| {
                Error::Backend(
                    "no gradient for the input: is the classifier on an autodiff device?".into(),
                )
            })?;
            adv = (input.detach() + Tensor::<4>::from_inner(g).sign() * self.step).clamp(0.0, 1.0);
            if keep.len() < active.len() {
                let idx = Tensor::<1, Int>::from_data(
                    TensorData::new(
                        keep.iter().map(|&j| j as i64).collect::<Vec<i64>>(),
                        [keep.len()],
                    ),
                    &device,
                );
                adv = adv.select(0, idx);
            }
            active = keep.iter().map(|&j| active[j]).collect();
        }
        Ok(steps)
    }
}
