//! FGSM and PGD (L∞ and L2).

use burn::prelude::*;
use cadet_core::Progress;
use cadet_model::Classifier;
use ndarray::ArrayView4;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};
use serde::{Deserialize, Serialize};

use crate::common::{ascent_gradient, l2_norms, run_batches};
use crate::{Attack, AttackOutput, Error, Goal, Result};

/// The norm of a PGD attack's ball.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Norm {
    /// `max |δ| ≤ ε`, signed-gradient steps.
    Linf,
    /// `‖δ‖₂ ≤ ε`, normalised-gradient steps.
    L2,
}

/// Fast gradient sign method (Goodfellow et al., 2015): `x + ε · sign(∇ₓ L)`, clipped to `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fgsm {
    /// `ε ≥ 0`.
    pub epsilon: f32,
    /// Images per batch.
    pub batch_size: usize,
}

impl Fgsm {
    /// The paper's setting: ε = 0.05.
    pub fn paper() -> Self {
        Self {
            epsilon: 0.05,
            batch_size: 128,
        }
    }
}

/// Projected gradient descent (Madry et al., 2018): `iterations` steps of size `step` in the norm's steepest
/// direction, each followed by projection onto the `ε`-ball around the image and clipping to `[0, 1]`;
/// optionally from a random point of the ball (`random_start`, seeded per image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pgd {
    /// Ball.
    pub norm: Norm,
    /// Radius `ε ≥ 0`.
    pub epsilon: f32,
    /// Step size `> 0`.
    pub step: f32,
    /// Number of steps (≥ 1).
    pub iterations: usize,
    /// Start from a uniformly random point of the ball (L∞) or a random point inside it (L2).
    pub random_start: bool,
    /// Seed of the random start.
    pub seed: u64,
    /// Images per batch.
    pub batch_size: usize,
}

impl Pgd {
    /// The paper's setting: L∞, ε = 0.02, step 0.002, 50 iterations, random start.
    pub fn paper() -> Self {
        Self {
            norm: Norm::Linf,
            epsilon: 0.02,
            step: 0.002,
            iterations: 50,
            random_start: true,
            seed: 0,
            batch_size: 128,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        let bad = |name, reason: String| {
            Err(Error::Core(cadet_core::Error::InvalidParameter {
                name,
                reason,
            }))
        };
        if self.epsilon.is_nan() || self.epsilon < 0.0 || self.epsilon.is_infinite() {
            return bad("epsilon", format!("must be ≥ 0, got {}", self.epsilon));
        }
        if self.step.is_nan() || self.step <= 0.0 || self.step.is_infinite() {
            return bad("step", format!("must be > 0, got {}", self.step));
        }
        if self.iterations == 0 {
            return bad("iterations", "at least 1".into());
        }
        Ok(())
    }

    /// A random starting perturbation for the images of a batch, seeded by each image's index.
    pub(crate) fn start(&self, shape: [usize; 4], first: usize, device: &Device) -> Tensor<4> {
        let per = shape[1] * shape[2] * shape[3];
        let mut v = Vec::with_capacity(shape[0] * per);
        for i in 0..shape[0] {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream((first + i) as u64);
            match self.norm {
                Norm::Linf => {
                    let u = Uniform::new_inclusive(-self.epsilon, self.epsilon).expect("ε ≥ 0");
                    v.extend((0..per).map(|_| u.sample(&mut rng)));
                }
                Norm::L2 => {
                    // torchattacks' PGDL2: a Gaussian direction scaled to radius ε · U(0, 1).
                    let d: Vec<f32> = (0..per).map(|_| StandardNormal.sample(&mut rng)).collect();
                    let norm = d.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    let r: f32 = Uniform::new(0.0f32, 1.0).expect("range").sample(&mut rng);
                    v.extend(d.iter().map(|x| x / norm * r * self.epsilon));
                }
            }
        }
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    /// Projects `adv` onto the ball around `x` and into `[0, 1]`.
    pub(crate) fn project(&self, adv: Tensor<4>, x: &Tensor<4>) -> Tensor<4> {
        let delta = adv - x.clone();
        let delta = match self.norm {
            Norm::Linf => delta.clamp(-self.epsilon, self.epsilon),
            Norm::L2 => {
                let norms = l2_norms(delta.clone()).clamp_min(1e-12);
                let factor = (norms.clone().recip() * self.epsilon).clamp_max(1.0);
                delta * factor
            }
        };
        (x.clone() + delta).clamp(0.0, 1.0)
    }
}

impl Attack for Fgsm {
    fn name(&self) -> String {
        format!("FGSM (L∞, ε = {})", self.epsilon)
    }
    fn attack(
        &self,
        clf: &dyn Classifier,
        images: ArrayView4<'_, f32>,
        labels: &[u32],
        goal: &Goal,
        progress: &dyn Progress,
    ) -> Result<AttackOutput> {
        if self.epsilon.is_nan() || self.epsilon < 0.0 || self.epsilon.is_infinite() {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "epsilon",
                reason: format!("must be ≥ 0, got {}", self.epsilon),
            }));
        }
        run_batches(
            clf,
            images,
            labels,
            goal,
            self.batch_size,
            progress,
            &self.name(),
            |x, y, targeted, _| {
                let g = ascent_gradient(clf, x.clone(), y, targeted)?;
                Ok((x + g.sign() * self.epsilon).clamp(0.0, 1.0))
            },
        )
    }
}

impl Attack for Pgd {
    fn name(&self) -> String {
        format!(
            "PGD ({:?}, ε = {}, step {}, {} iterations)",
            self.norm, self.epsilon, self.step, self.iterations
        )
    }
    fn attack(
        &self,
        clf: &dyn Classifier,
        images: ArrayView4<'_, f32>,
        labels: &[u32],
        goal: &Goal,
        progress: &dyn Progress,
    ) -> Result<AttackOutput> {
        self.check()?;
        run_batches(
            clf,
            images,
            labels,
            goal,
            self.batch_size,
            progress,
            &self.name(),
            |x, y, targeted, first| {
                let mut adv = if self.random_start {
                    self.project(x.clone() + self.start(x.dims(), first, &x.device()), &x)
                } else {
                    x.clone()
                };
                for _ in 0..self.iterations {
                    let g = ascent_gradient(clf, adv.clone(), y, targeted)?;
                    let direction = match self.norm {
                        Norm::Linf => g.sign(),
                        Norm::L2 => g.clone() / (l2_norms(g) + 1e-10),
                    };
                    adv = self.project(adv.detach() + direction * self.step, &x);
                }
                Ok(adv)
            },
        )
    }
}
