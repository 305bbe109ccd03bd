//! The two pipelines of the paper, as plain values whose steps can be inspected and changed.

use serde::{Deserialize, Serialize};

use crate::transforms::{
    AugmentRng, CenterCrop, ColorJitter, GaussianBlur, HorizontalFlip, RandomApply,
    RandomGrayscale, RandomResizedCrop, Resize, Transform,
};
use crate::{Image, ImageView, Result};

/// SimCLR's training views (the SimCLR and CADet papers): random resized crop (area 0.08..1, aspect 3/4..4/3) → horizontal
/// flip (p 0.5) → colour jitter of strength `s` (p 0.8) → grayscale (p 0.2) → Gaussian blur (p 0.5, σ 0.1..2,
/// kernel ≈ 10% of the side). Fields are public: `train.blur.p = 0.0` drops the blur, as SimCLR does on CIFAR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimclrTrain {
    /// Crop and resize to the output size.
    pub crop: RandomResizedCrop,
    /// Flip.
    pub flip: HorizontalFlip,
    /// Colour distortion.
    pub color: RandomApply<ColorJitter>,
    /// Grayscale.
    pub grayscale: RandomGrayscale,
    /// Blur.
    pub blur: RandomApply<GaussianBlur>,
}

/// SimCLR's training pipeline for `size × size` views and colour strength `strength` (the paper: 1.0).
pub fn simclr_train(size: usize, strength: f32) -> SimclrTrain {
    SimclrTrain {
        crop: RandomResizedCrop::new(size),
        flip: HorizontalFlip::default(),
        color: RandomApply::new(ColorJitter::simclr(strength), 0.8),
        grayscale: RandomGrayscale { p: 0.2 },
        blur: RandomApply::new(GaussianBlur::simclr(size), 0.5),
    }
}

impl Transform for SimclrTrain {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        let x = self.crop.apply(image, rng)?;
        let x = self.flip.apply_owned(x, rng)?;
        let x = self.color.apply_owned(x, rng)?;
        let x = self.grayscale.apply_owned(x, rng)?;
        self.blur.apply_owned(x, rng)
    }
}

/// CADet's evaluation views (the CADet paper's code): optional resize of the shorter side → random resized crop
/// with the area fixed at 0.75 (aspect 3/4..4/3) → horizontal flip (p 0.5). No colour, no blur.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CadetEval {
    /// Resize applied first (ImageNet: 256 for 224 crops; CIFAR: none).
    pub resize: Option<Resize>,
    /// Crop of area 0.75, resized to the output size.
    pub crop: RandomResizedCrop,
    /// Flip.
    pub flip: HorizontalFlip,
}

/// CADet's evaluation pipeline for `size × size` views, without a resize (CIFAR scale).
pub fn cadet_eval(size: usize) -> CadetEval {
    CadetEval {
        resize: None,
        crop: RandomResizedCrop::new(size).with_scale(0.75, 0.75),
        flip: HorizontalFlip::default(),
    }
}

impl CadetEval {
    /// Checks every setting (sizes 1 to [`MAX_SIDE`](crate::transforms::MAX_SIDE), the crop's area and ratio
    /// ranges, the flip's probability) without transforming anything: a pipeline read from a file is refused
    /// when loaded, not at its first use.
    ///
    /// ```
    /// let mut eval = cadet_augment::cadet_eval(32);
    /// assert!(eval.validate().is_ok());
    /// eval.flip.p = -0.5;
    /// assert!(eval.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        if let Some(resize) = &self.resize {
            resize.check()?;
        }
        self.crop.check()?;
        crate::transforms::check_probability("HorizontalFlip.p", self.flip.p)
    }

    /// Resizes the shorter side to `size` first (the ImageNet setting: `cadet_eval(224).with_resize(256)`).
    pub fn with_resize(mut self, size: usize) -> Self {
        self.resize = Some(Resize { size });
        self
    }

    /// The un-augmented view of `image`, the evaluation input a classifier or the k-NN detector sees, at the
    /// pipeline's output size: with a resize, the resize then the central `size × size` crop (torchvision's
    /// `Resize(256)` + `CenterCrop(224)`); without, the whole image resized to `size × size` (itself, copied,
    /// when it already is that size, as CIFAR images are). No randomness.
    pub fn identity_view(&self, image: ImageView<'_>) -> Result<Image> {
        let size = self.crop.size;
        let mut unused = crate::image_rng(0, 0);
        match &self.resize {
            Some(r) => {
                let resized = r.apply(image, &mut unused)?;
                CenterCrop { size }.apply(resized.view(), &mut unused)
            }
            None if image.dim().1 == size && image.dim().2 == size => Ok(image.to_owned()),
            None => {
                crate::functional::resize_box(image, crate::functional::full_box(image), size, size)
            }
        }
    }
}

impl Transform for CadetEval {
    fn apply(&self, image: ImageView<'_>, rng: &mut AugmentRng) -> Result<Image> {
        let resized;
        let input = match &self.resize {
            Some(r) => {
                resized = r.apply(image, rng)?;
                resized.view()
            }
            None => image,
        };
        let x = self.crop.apply(input, rng)?;
        self.flip.apply_owned(x, rng)
    }
}
