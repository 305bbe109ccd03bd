//! Crops, resizes, flips and normalisation.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{AugmentRng, Transform, check_probability};
use crate::functional::{self, CropBox, center_box, full_box, resize_box};
use crate::{Error, Image, ImageView, Result};

/// The largest output side of a crop or resize (a view of 16384² pixels is already 3 GiB in `f32`): a size
/// read from a file is bounded before any allocation.
pub const MAX_SIDE: usize = 16_384;

/// torchvision's `RandomResizedCrop`: a box of random area fraction and aspect ratio, resized (bilinear,
/// antialiased) to `size × size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomResizedCrop {
    /// Output side.
    pub size: usize,
    /// Range of the box's area as a fraction of the image's (torchvision: 0.08..1; CADet's evaluation: 0.75..0.75).
    pub scale: (f64, f64),
    /// Range of the box's aspect ratio `w / h`, sampled log-uniformly (torchvision: 3/4..4/3).
    pub ratio: (f64, f64),
}

impl RandomResizedCrop {
    /// torchvision's defaults: scale 0.08..1, ratio 3/4..4/3.
    pub fn new(size: usize) -> Self {
        Self {
            size,
            scale: (0.08, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
        }
    }

    /// With an area range.
    pub fn with_scale(mut self, lo: f64, hi: f64) -> Self {
        self.scale = (lo, hi);
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        let bad = |name, reason: String| {
            Err(Error::Core(cadet_core::Error::InvalidParameter {
                name,
                reason,
            }))
        };
        if !(1..=MAX_SIDE).contains(&self.size) {
            return bad(
                "RandomResizedCrop.size",
                format!("1 to {MAX_SIDE} pixels, got {}", self.size),
            );
        }
        let (s0, s1) = self.scale;
        if !(0.0 < s0 && s0 <= s1 && s1 <= 1.0) {
            return bad(
                "RandomResizedCrop.scale",
                format!("need 0 < lo ≤ hi ≤ 1, got {s0}..{s1}"),
            );
        }
        let (r0, r1) = self.ratio;
        if !(0.0 < r0 && r0 <= r1 && r1.is_finite()) {
            return bad(
                "RandomResizedCrop.ratio",
                format!("need 0 < lo ≤ hi, got {r0}..{r1}"),
            );
        }
        Ok(())
    }

    /// torchvision's `get_params`: up to 10 draws of (area, log-ratio) until the box fits, then a uniformly
    /// placed box; otherwise the largest centred box within the ratio range.
    pub fn sample(&self, height: usize, width: usize, rng: &mut AugmentRng) -> CropBox {
        let area = (height * width) as f64;
        let (l0, l1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target = area * uniform(rng, self.scale.0, self.scale.1);
            let aspect = uniform(rng, l0, l1).exp();
            let w = functional::round_half_even((target * aspect).sqrt()) as usize;
            let h = functional::round_half_even((target / aspect).sqrt()) as usize;
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return CropBox {
                    top,
                    left,
                    height: h,
                    width: w,
                };
            }
        }
        let in_ratio = width as f64 / height as f64;
        let (w, h) = if in_ratio < self.ratio.0 {
            (
                width,
                functional::round_half_even(width as f64 / self.ratio.0) as usize,
            )
        } else if in_ratio > self.ratio.1 {
            (
                functional::round_half_even(height as f64 * self.ratio.1) as usize,
                height,
            )
        } else {
            (width, height)
        };
        CropBox {
            top: (height - h) / 2,
            left: (width - w) / 2,
            height: h,
            width: w,
        }
    }
}

/// `U[lo, hi)`; a degenerate range gives `lo` (CADet's fixed scale 0.75).
fn uniform(rng: &mut AugmentRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

impl Transform for RandomResizedCrop {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        self.check()?;
        let (_, h, w) = image.dim();
        let b = self.sample(h, w, rng);
        resize_box(image, b, self.size, self.size)
    }
}

/// torchvision's `RandomHorizontalFlip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizontalFlip {
    /// Probability of flipping (0.5 by default).
    pub p: f64,
}

impl Default for HorizontalFlip {
    fn default() -> Self {
        Self { p: 0.5 }
    }
}

impl Transform for HorizontalFlip {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        check_probability("HorizontalFlip.p", self.p)?;
        Ok(if rng.random::<f64>() < self.p {
            functional::hflip(image)
        } else {
            image.to_owned()
        })
    }
    fn apply_owned(&self, mut image: Image, rng: &mut AugmentRng) -> Result<Image> {
        check_probability("HorizontalFlip.p", self.p)?;
        if rng.random::<f64>() < self.p {
            // In place: reverse every row.
            for mut row in image.rows_mut() {
                let len = row.len();
                for x in 0..len / 2 {
                    row.swap(x, len - 1 - x);
                }
            }
        }
        Ok(image)
    }
}

/// torchvision's `Resize(size)` with an integer size: the shorter side becomes `size`, the other keeps the
/// aspect ratio (truncated, as torchvision does); bilinear with antialiasing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    /// Target shorter side.
    pub size: usize,
}

impl Resize {
    /// Output `(height, width)` for an input of `(h, w)`.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        if h <= w {
            (self.size, self.size * w / h)
        } else {
            (self.size * h / w, self.size)
        }
    }
}

impl Resize {
    pub(crate) fn check(&self) -> Result<()> {
        if !(1..=MAX_SIDE).contains(&self.size) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "Resize.size",
                reason: format!("1 to {MAX_SIDE} pixels, got {}", self.size),
            }));
        }
        Ok(())
    }
}

impl Transform for Resize {
    fn apply(&self, image: ImageView<'_>, _rng: &mut AugmentRng) -> Result<Image> {
        self.check()?;
        let (_, h, w) = image.dim();
        let (oh, ow) = self.output_size(h, w);
        resize_box(image, full_box(image), oh, ow)
    }
}

/// torchvision's `CenterCrop(size)` (no padding: the image must be at least `size` on each side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CenterCrop {
    /// Output side.
    pub size: usize,
}

impl Transform for CenterCrop {
    fn apply(&self, image: ImageView<'_>, _rng: &mut AugmentRng) -> Result<Image> {
        let (_, h, w) = image.dim();
        if self.size == 0 || self.size > h || self.size > w {
            return Err(Error::TooSmall {
                what: "CenterCrop",
                height: h,
                width: w,
                needed: format!("{} per side", self.size),
            });
        }
        Ok(functional::crop(
            image,
            center_box(h, w, self.size, self.size),
        ))
    }
}

/// torchvision's `Normalize(mean, std)`. Its output leaves `[0, 1]`: use it only in front of a model that does
/// not normalise inside (cadet-rs embedders take `[0, 1]` images and normalise themselves).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    pub std: Vec<f32>,
}

impl Normalize {
    /// ImageNet statistics.
    pub fn imagenet() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }
}

impl Transform for Normalize {
    fn apply(&self, image: ImageView<'_>, _rng: &mut AugmentRng) -> Result<Image> {
        let c = image.dim().0;
        if self.mean.len() != c || self.std.len() != c {
            return Err(Error::Channels {
                what: "Normalize",
                expected: self.mean.len(),
                got: c,
            });
        }
        if self.std.iter().any(|&s| s.is_nan() || s <= 0.0) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "Normalize.std",
                reason: "must be > 0".into(),
            }));
        }
        Ok(functional::normalize(image, &self.mean, &self.std))
    }
}
