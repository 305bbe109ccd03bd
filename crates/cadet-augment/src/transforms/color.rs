//! Colour distortion and blur: SimCLR's appearance transforms.

use rand::RngExt;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::{AugmentRng, Transform, check_probability};
use crate::functional::{
    contrast_in_place, gaussian_blur, hue_in_place, saturation_in_place, to_grayscale,
};
use crate::image::require_rgb;
use crate::{Error, Image, ImageView, Result};

/// torchvision's `ColorJitter`: brightness, contrast and saturation factors drawn from `[max(0, 1 − v), 1 + v]`,
/// a hue shift from `[−h, h]`, applied in a random order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColorJitter {
    /// Brightness strength `v ≥ 0`.
    pub brightness: f32,
    /// Contrast strength `v ≥ 0`.
    pub contrast: f32,
    /// Saturation strength `v ≥ 0`.
    pub saturation: f32,
    /// Hue strength `h ∈ [0, 0.5]`.
    pub hue: f32,
}

/// One draw of [`ColorJitter`]'s parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JitterParams {
    /// Order of the four adjustments: 0 brightness, 1 contrast, 2 saturation, 3 hue.
    pub order: [usize; 4],
    /// Brightness factor.
    pub brightness: f32,
    /// Contrast factor.
    pub contrast: f32,
    /// Saturation factor.
    pub saturation: f32,
    /// Hue shift in turns.
    pub hue: f32,
}

impl ColorJitter {
    /// SimCLR's colour distortion of strength `s`: `(0.8 s, 0.8 s, 0.8 s, 0.2 s)`.
    pub fn simclr(strength: f32) -> Self {
        Self {
            brightness: 0.8 * strength,
            contrast: 0.8 * strength,
            saturation: 0.8 * strength,
            hue: 0.2 * strength,
        }
    }

    fn check(&self) -> Result<()> {
        let ok = [self.brightness, self.contrast, self.saturation]
            .iter()
            .all(|&v| v >= 0.0 && v.is_finite())
            && (0.0..=0.5).contains(&self.hue);
        if ok {
            Ok(())
        } else {
            Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "ColorJitter",
                reason: format!(
                    "brightness, contrast and saturation must be finite and ≥ 0, hue in [0, 0.5]; got {}, {}, {} \
                     and {} (ColorJitter::simclr(s) is 0.8 s, 0.8 s, 0.8 s, 0.2 s: s in [0, 2.5])",
                    self.brightness, self.contrast, self.saturation, self.hue
                ),
            }))
        }
    }

    /// Draws the order and the factors (torchvision's `get_params`: the order first, then each factor).
    pub fn sample(&self, rng: &mut AugmentRng) -> JitterParams {
        let mut order = [0, 1, 2, 3];
        order.shuffle(rng);
        let mut factor =
            |v: f32| (1.0 - v).max(0.0) + ((1.0 + v) - (1.0 - v).max(0.0)) * rng.random::<f32>();
        let (brightness, contrast, saturation) = (
            factor(self.brightness),
            factor(self.contrast),
            factor(self.saturation),
        );
        let hue = -self.hue + 2.0 * self.hue * rng.random::<f32>();
        JitterParams {
            order,
            brightness,
            contrast,
            saturation,
            hue,
        }
    }

    /// Applies drawn parameters.
    pub fn apply_params(image: ImageView<'_>, p: &JitterParams) -> Result<Image> {
        Self::apply_params_owned(image.as_standard_layout().into_owned(), p)
    }

    /// Applies drawn parameters to an owned image, in place where the adjustment allows.
    pub fn apply_params_owned(image: Image, p: &JitterParams) -> Result<Image> {
        require_rgb("ColorJitter", image.view())?;
        let mut current = image.as_standard_layout().into_owned();
        for step in p.order {
            match step {
                0 => current.mapv_inplace(|v| (v * p.brightness).clamp(0.0, 1.0)),
                1 => contrast_in_place(&mut current, p.contrast),
                2 => saturation_in_place(&mut current, p.saturation),
                _ => hue_in_place(&mut current, p.hue),
            }
        }
        Ok(current)
    }
}

impl Transform for ColorJitter {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        self.check()?;
        let params = self.sample(rng);
        Self::apply_params(image, &params)
    }
    fn apply_owned(&self, image: Image, rng: &mut AugmentRng) -> Result<Image> {
        self.check()?;
        let params = self.sample(rng);
        Self::apply_params_owned(image, &params)
    }
}

/// torchvision's `RandomGrayscale(p)`: luma replicated over three channels with probability `p`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomGrayscale {
    /// Probability (SimCLR: 0.2).
    pub p: f64,
}

impl Transform for RandomGrayscale {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        check_probability("RandomGrayscale.p", self.p)?;
        if rng.random::<f64>() < self.p {
            to_grayscale(image)
        } else {
            Ok(image.to_owned())
        }
    }
    fn apply_owned(&self, image: Image, rng: &mut AugmentRng) -> Result<Image> {
        check_probability("RandomGrayscale.p", self.p)?;
        if rng.random::<f64>() < self.p {
            to_grayscale(image.view())
        } else {
            Ok(image)
        }
    }
}

/// torchvision's `GaussianBlur(kernel_size, sigma=(lo, hi))`: σ drawn uniformly, reflect padding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaussianBlur {
    /// Odd kernel side.
    pub kernel_size: usize,
    /// Range of σ (SimCLR: 0.1..2.0).
    pub sigma: (f32, f32),
}

impl GaussianBlur {
    /// SimCLR's blur for images of side `size`: kernel ≈ 10% of the side, made odd (`2·⌊size/20⌋ + 1`, i.e.
    /// 23 at 224 px and 3 at 32 px, as SimCLR's reference code), σ in 0.1..2.0.
    pub fn simclr(size: usize) -> Self {
        Self {
            kernel_size: 2 * (size / 10 / 2) + 1,
            sigma: (0.1, 2.0),
        }
    }
}

impl Transform for GaussianBlur {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        let (lo, hi) = self.sigma;
        if !(0.0 < lo && lo <= hi && hi.is_finite()) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "GaussianBlur.sigma",
                reason: format!("need 0 < lo ≤ hi, got {lo}..{hi}"),
            }));
        }
        let sigma = lo + (hi - lo) * rng.random::<f32>();
        gaussian_blur(image, self.kernel_size, sigma)
    }
}
