//! PGD with expectation over transformation (Athalye et al., 2018) against CADet: each step's gradient is the
//! mean over `samples` random CADet evaluation transforms ([`EvalTransform`]) applied to the current adversarial
//! image inside the autodiff graph, so the perturbation survives the crops and flips the detector looks through.
//!
//! Two objectives:
//! - (a) [`EotPgd`] alone: the classifier's cross-entropy averaged over the transforms (ascended when
//!   untargeted, descended on the targets when targeted);
//! - (b) [`EotPgd::with_detector`] → [`AdaptiveEotPgd`]: the same, plus a [`CadetSurrogate`]'s reward, so that
//!   the attacker minimises `classifier loss − λ · (local cos + identity cos + view agreement) + λ · local m_in²`
//!   with the statistics computed on the same transforms and the image itself as the un-augmented view.
//!
//! Steps, projection and random start are [`Pgd`]'s (L∞): the transforms only change the gradient.

use burn::prelude::*;
use cadet_core::Progress;
use cadet_model::Classifier;
use ndarray::ArrayView4;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::common::{cross_entropy_sum, run_batches};
use crate::surrogate::CadetSurrogate;
use crate::transform::{EvalTransform, TransformDraw, apply_transforms};
use crate::{Attack, AttackOutput, Error, Goal, Norm, Pgd, Result};

/// Mixed into the seed of the transforms' RNG, so that they are not drawn from the random start's stream.
const TRANSFORM_SEED: u64 = 0x7E07_5EED_C0FF_EE11;

/// L∞ PGD whose gradient is the mean over `samples` random evaluation transforms per step (objective (a); add a
/// detector surrogate with [`with_detector`](Self::with_detector) for objective (b)).
///
/// The transforms of image `i` (counted from the first image of the call) come from a ChaCha8 generator seeded
/// by `seed` on stream `i`, drawn `samples` per step: the same seed gives the same images whatever the batch
/// size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EotPgd {
    /// Radius `ε > 0` of the L∞ ball.
    pub epsilon: f32,
    /// Step size `> 0`.
    pub step: f32,
    /// Number of steps (≥ 1).
    pub iterations: usize,
    /// Start from a uniformly random point of the ball (seeded per image, as [`Pgd`]).
    pub random_start: bool,
    /// Seed of the random start and of the transforms.
    pub seed: u64,
    /// Transforms per image and step (≥ 1).
    pub samples: usize,
    /// The transforms' distribution (CADet's by default; [`EvalTransform::identity`] makes this plain PGD).
    pub transform: EvalTransform,
    /// Images per batch (each step evaluates `batch_size · samples` transformed images).
    pub batch_size: usize,
}

impl Default for EotPgd {
    fn default() -> Self {
        Self::paper()
    }
}

impl EotPgd {
    /// The paper's PGD budget (ε = 0.02, step 0.002, 50 iterations, random start) with 8 CADet transforms per
    /// step, 16 images per batch.
    pub fn paper() -> Self {
        Self {
            epsilon: 0.02,
            step: 0.002,
            iterations: 50,
            random_start: true,
            seed: 0,
            samples: 8,
            transform: EvalTransform::cadet(),
            batch_size: 16,
        }
    }

    /// Objective (b): the same attack, also rewarded by `surrogate`'s statistics.
    pub fn with_detector(self, surrogate: CadetSurrogate<'_>) -> AdaptiveEotPgd<'_> {
        AdaptiveEotPgd {
            eot: self,
            surrogate,
        }
    }

    /// The equivalent plain PGD (steps, projection, random start).
    fn pgd(&self) -> Pgd {
        Pgd {
            norm: Norm::Linf,
            epsilon: self.epsilon,
            step: self.step,
            iterations: self.iterations,
            random_start: self.random_start,
            seed: self.seed,
            batch_size: self.batch_size,
        }
    }

    fn check(&self) -> Result<()> {
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "epsilon",
                reason: format!("must be > 0, got {}", self.epsilon),
            }));
        }
        self.pgd().check()?;
        if self.samples == 0 {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "samples",
                reason: "at least 1".into(),
            }));
        }
        if self.batch_size == 0 {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "batch_size",
                reason: "at least 1".into(),
            }));
        }
        self.transform.validate()
    }

    /// The attack, with the detector's reward when `surrogate` is given.
    fn run(
        &self,
        clf: &dyn Classifier,
        images: ArrayView4<'_, f32>,
        labels: &[u32],
        goal: &Goal,
        progress: &dyn Progress,
        surrogate: Option<&CadetSurrogate<'_>>,
    ) -> Result<AttackOutput> {
        self.check()?;
        let name = self.name_with(surrogate);
        if let Some(s) = surrogate
            && self.samples < s.min_transforms()
        {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "samples",
                reason: format!(
                    "the surrogate's local m_in needs at least {} transforms per step, got {}",
                    s.min_transforms(),
                    self.samples
                ),
            }));
        }
        let pgd = self.pgd();
        run_batches(
            clf,
            images,
            labels,
            goal,
            self.batch_size,
            progress,
            &name,
            |x, y, targeted, first| {
                let [b, _, h, w] = x.dims();
                let mut rngs: Vec<ChaCha8Rng> = (0..b)
                    .map(|i| {
                        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ TRANSFORM_SEED);
                        rng.set_stream((first + i) as u64);
                        rng
                    })
                    .collect();
                let mut adv = if self.random_start {
                    pgd.project(x.clone() + pgd.start(x.dims(), first, &x.device()), &x)
                } else {
                    x.clone()
                };
                for _ in 0..self.iterations {
                    // Image-major: image i's transforms are rows i·samples .. (i + 1)·samples.
                    let draws: Vec<TransformDraw> = rngs
                        .iter_mut()
                        .flat_map(|rng| {
                            (0..self.samples)
                                .map(|_| self.transform.sample(h, w, rng))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    let g = self.gradient(clf, surrogate, adv.clone(), y, targeted, &draws)?;
                    adv = pgd.project(adv.detach() + g.sign() * self.step, &x);
                }
                Ok(adv)
            },
        )
    }

    /// The attack's name, with the surrogate's `λ` when there is one.
    fn name_with(&self, surrogate: Option<&CadetSurrogate<'_>>) -> String {
        let plain = format!(
            "EOT-PGD (L∞, ε = {}, step {}, {} iterations, {} transforms/step)",
            self.epsilon, self.step, self.iterations, self.samples
        );
        match surrogate {
            None => plain,
            Some(s) => format!("{plain} + CADet surrogate (λ = {})", s.terms().lambda),
        }
    }

    /// The ascent direction's gradient at `adv`: of the mean cross-entropy over the transforms `draws` (negated
    /// when targeted) plus the surrogate's reward.
    fn gradient(
        &self,
        clf: &dyn Classifier,
        surrogate: Option<&CadetSurrogate<'_>>,
        adv: Tensor<4>,
        y: &Tensor<2, Int>,
        targeted: bool,
        draws: &[TransformDraw],
    ) -> Result<Tensor<4>> {
        let [b, c, h, w] = adv.dims();
        let n = self.samples;
        let x = adv.detach().require_grad();
        let (repeated, labels) = if n == 1 {
            (x.clone(), y.clone())
        } else {
            (
                x.clone()
                    .unsqueeze_dim::<5>(1)
                    .repeat_dim(1, n)
                    .reshape([b * n, c, h, w]),
                y.clone()
                    .unsqueeze_dim::<3>(1)
                    .repeat_dim(1, n)
                    .reshape([b * n, 1]),
            )
        };
        let t = apply_transforms(repeated, draws, [h, w])?;
        let ce = cross_entropy_sum(clf.logits(t.clone()), labels);
        let ce = if n == 1 { ce } else { ce / n as f32 };
        let mut objective = if targeted { ce.neg() } else { ce };
        if let Some(s) = surrogate {
            // One encoder pass over the un-augmented views and the transforms.
            let f = s.features(Tensor::cat(vec![x.clone(), t], 0));
            let d = f.dims()[1];
            let identity = f.clone().slice([0..b, 0..d]);
            let transforms = f.slice([b..b + b * n, 0..d]).reshape([b, n, d]);
            objective = objective + s.reward(identity, transforms)?;
        }
        let grads = objective.backward();
        let g = x.grad(&grads).ok_or_else(|| {
            Error::Backend(
                "no gradient for the input: is the classifier on an autodiff device?".into(),
            )
        })?;
        Ok(Tensor::from_inner(g))
    }
}

impl Attack for EotPgd {
    fn name(&self) -> String {
        self.name_with(None)
    }
    fn attack(
        &self,
        clf: &dyn Classifier,
        images: ArrayView4<'_, f32>,
        labels: &[u32],
        goal: &Goal,
        progress: &dyn Progress,
    ) -> Result<AttackOutput> {
        self.run(clf, images, labels, goal, progress, None)
    }
}

/// Objective (b): [`EotPgd`] whose gradient also ascends a [`CadetSurrogate`]'s reward (built with
/// [`EotPgd::with_detector`]).
#[derive(Debug)]
pub struct AdaptiveEotPgd<'a> {
    /// The attack's settings.
    pub eot: EotPgd,
    /// The detector's surrogate.
    pub surrogate: CadetSurrogate<'a>,
}

impl Attack for AdaptiveEotPgd<'_> {
    fn name(&self) -> String {
        self.eot.name_with(Some(&self.surrogate))
    }
    fn attack(
        &self,
        clf: &dyn Classifier,
        images: ArrayView4<'_, f32>,
        labels: &[u32],
        goal: &Goal,
        progress: &dyn Progress,
    ) -> Result<AttackOutput> {
        self.eot
            .run(clf, images, labels, goal, progress, Some(&self.surrogate))
    }
}
