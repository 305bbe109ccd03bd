//! Random transforms with torchvision's semantics and defaults, and their composition.
//!
//! Each random transform first draws its parameters (a public `sample` method, so tests and users can see
//! them), then applies the deterministic operation of [`functional`](crate::functional).

mod color;
mod geometry;

pub use color::{ColorJitter, GaussianBlur, JitterParams, RandomGrayscale};
pub use geometry::{CenterCrop, HorizontalFlip, MAX_SIDE, Normalize, RandomResizedCrop, Resize};

use std::fmt::Debug;
use std::sync::Arc;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::{Image, ImageView, Result};

/// The random number generator every transform draws from: ChaCha8, seeded per image (see [`crate::views`]).
pub type AugmentRng = ChaCha8Rng;

/// An image transform: `(C, H, W)` in `[0, 1]` in, image out, randomness from the given RNG only.
pub trait Transform: Send + Sync + Debug {
    /// Applies the transform.
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image>;

    /// Applies the transform to an image the caller gives up, with exactly the same result and the same draws
    /// as [`apply`](Self::apply). Transforms that can work in place (flips, skipped random steps, point-wise
    /// colour changes) override it to save a copy; pipelines chain their steps through it.
    fn apply_owned(&self, image: Image, rng: &mut AugmentRng) -> Result<Image> {
        self.apply(image.view(), rng)
    }
}

impl<T: Transform + ?Sized> Transform for Arc<T> {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        (**self).apply(image, rng)
    }
    fn apply_owned(&self, image: Image, rng: &mut AugmentRng) -> Result<Image> {
        (**self).apply_owned(image, rng)
    }
}

impl<T: Transform + ?Sized> Transform for Box<T> {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        (**self).apply(image, rng)
    }
    fn apply_owned(&self, image: Image, rng: &mut AugmentRng) -> Result<Image> {
        (**self).apply_owned(image, rng)
    }
}

/// Applies `transform` with probability `p` (torchvision's `RandomApply`): one uniform draw decides.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RandomApply<T> {
    /// The transform.
    pub transform: T,
    /// Probability of applying it.
    pub p: f64,
}

impl<T> RandomApply<T> {
    /// `transform` with probability `p`.
    pub fn new(transform: T, p: f64) -> Self {
        Self { transform, p }
    }
}

impl<T: Transform> Transform for RandomApply<T> {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        check_probability("RandomApply.p", self.p)?;
        // torchvision: `if self.p < torch.rand(1): return img`.
        if rng.random::<f64>() < self.p {
            self.transform.apply(image, rng)
        } else {
            Ok(image.to_owned())
        }
    }
}

/// Transforms applied in order (torchvision's `Compose`).
#[derive(Debug, Clone, Default)]
pub struct Compose {
    /// The steps, first applied first.
    pub steps: Vec<Arc<dyn Transform>>,
}

impl Compose {
    /// An empty composition (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a step.
    pub fn then(mut self, step: impl Transform + 'static) -> Self {
        self.steps.push(Arc::new(step));
        self
    }
}

impl Transform for Compose {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        match self.steps.split_first() {
            None => Ok(image.to_owned()),
            Some((first, rest)) => rest
                .iter()
                .try_fold(first.apply(image, rng)?, |x, step| step.apply_owned(x, rng)),
        }
    }
    fn apply_owned(&self, image: Image, rng: &mut AugmentRng) -> Result<Image> {
        self.steps
            .iter()
            .try_fold(image, |x, step| step.apply_owned(x, rng))
    }
}

pub(crate) fn check_probability(name: &'static str, p: f64) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(crate::Error::Core(cadet_core::Error::InvalidParameter {
            name,
            reason: format!("a probability must lie in [0, 1], got {p}"),
        }))
    }
}
