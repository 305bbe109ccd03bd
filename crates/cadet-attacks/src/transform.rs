//! CADet's evaluation transforms (random resized crop at a fixed area scale, resized back, random horizontal
//! flip) drawn from a seeded RNG and applied *inside* the autodiff graph, so an attack can take the expectation of
//! its loss over them (EOT).
//!
//! The crop and the resize are one linear map per axis: output row `i` of a box resized to `out` pixels is a
//! weighted sum of the box's rows, with the weights of `cadet-augment`'s resampler (Pillow's bilinear triangle
//! filter, pixel centres at half-integers, taps kept inside the box and renormalised, widened by the downscale
//! factor when shrinking). A batch of images with different boxes and flips is then two batched matrix products,
//! `R_y · X · R_xᵀ` per channel, with the flip folded into `R_x` (its rows reversed). When upscaling, as CADet's
//! crops of area 0.75 always are, these weights are exactly bilinear interpolation with half-pixel centres and
//! edge clamping (PyTorch's and Burn's `interpolate` with `align_corners = false`; Burn's default is `true`,
//! which would not match).

use burn::prelude::*;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The distribution of one evaluation transform: torchvision's `RandomResizedCrop(scale = (s, s), ratio)` back
/// to the input size, then `RandomHorizontalFlip(p)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalTransform {
    /// Area fraction of the crop, in `(0, 1]` (CADet: 0.75).
    pub scale: f64,
    /// Range `(lo, hi)` of the crop's aspect ratio `w / h`, `0 < lo ≤ hi`, sampled log-uniformly.
    pub ratio: (f64, f64),
    /// Probability of a horizontal flip, in `[0, 1]`.
    pub flip_probability: f64,
}

impl Default for EvalTransform {
    fn default() -> Self {
        Self::cadet()
    }
}

impl EvalTransform {
    /// CADet's evaluation transform: crop area 0.75, aspect ratio in `[3/4, 4/3]`, flip with probability 0.5.
    pub fn cadet() -> Self {
        Self {
            scale: 0.75,
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip_probability: 0.5,
        }
    }

    /// The identity on square images: the whole image, aspect ratio 1, never flipped.
    pub fn identity() -> Self {
        Self {
            scale: 1.0,
            ratio: (1.0, 1.0),
            flip_probability: 0.0,
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, reason: String| {
            Err(Error::Core(cadet_core::Error::InvalidParameter {
                name,
                reason,
            }))
        };
        if !(self.scale > 0.0 && self.scale <= 1.0) {
            return bad("scale", format!("must be in (0, 1], got {}", self.scale));
        }
        let (lo, hi) = self.ratio;
        if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
            return bad(
                "ratio",
                format!("must be 0 < lo ≤ hi < ∞, got {:?}", self.ratio),
            );
        }
        if !(0.0..=1.0).contains(&self.flip_probability) {
            return bad(
                "flip_probability",
                format!("must be in [0, 1], got {}", self.flip_probability),
            );
        }
        Ok(())
    }

    /// One transform for a `height × width` image: torchvision's `get_params` (up to 10 draws of area and
    /// log-ratio until the box fits, placed uniformly; otherwise the largest centred box within the ratio range,
    /// as `cadet-augment` does), then the flip.
    pub fn sample(&self, height: usize, width: usize, rng: &mut ChaCha8Rng) -> TransformDraw {
        let area = (height * width) as f64;
        let (l0, l1) = (self.ratio.0.ln(), self.ratio.1.ln());
        let uniform = |rng: &mut ChaCha8Rng, lo: f64, hi: f64| lo + (hi - lo) * rng.random::<f64>();
        let mut found = None;
        for _ in 0..10 {
            let target = area * uniform(rng, self.scale, self.scale);
            let aspect = uniform(rng, l0, l1).exp();
            let w = (target * aspect).sqrt().round_ties_even() as usize;
            let h = (target / aspect).sqrt().round_ties_even() as usize;
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                found = Some((top, left, h, w));
                break;
            }
        }
        let (top, left, h, w) = found.unwrap_or_else(|| {
            let in_ratio = width as f64 / height as f64;
            let (w, h) = if in_ratio < self.ratio.0 {
                (
                    width,
                    (width as f64 / self.ratio.0).round_ties_even() as usize,
                )
            } else if in_ratio > self.ratio.1 {
                (
                    (height as f64 * self.ratio.1).round_ties_even() as usize,
                    height,
                )
            } else {
                (width, height)
            };
            ((height - h) / 2, (width - w) / 2, h, w)
        });
        let flip = rng.random::<f64>() < self.flip_probability;
        TransformDraw {
            top,
            left,
            height: h,
            width: w,
            flip,
        }
    }
}

/// One drawn transform: the crop box (rows `top..top + height`, columns `left..left + width`) and whether the
/// resized crop is mirrored left–right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformDraw {
    /// First row of the box.
    pub top: usize,
    /// First column of the box.
    pub left: usize,
    /// Rows of the box.
    pub height: usize,
    /// Columns of the box.
    pub width: usize,
    /// Mirror the resized crop.
    pub flip: bool,
}

impl TransformDraw {
    /// The whole `height × width` image, not flipped.
    pub fn full(height: usize, width: usize) -> Self {
        Self {
            top: 0,
            left: 0,
            height,
            width,
            flip: false,
        }
    }

    /// Whether it maps a `height × width` image to itself at that size.
    pub fn is_identity(&self, height: usize, width: usize) -> bool {
        *self == Self::full(height, width)
    }
}

/// The weights of `cadet-augment`'s resampler (Pillow's `precompute_coeffs` for the bilinear filter) from a box of
/// `in_size` pixels to `out_size`: per output pixel, the first input pixel and its weights.
fn taps(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut w: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 - center + 0.5) / filter_scale).abs()).max(0.0))
                .collect();
            let total: f64 = w.iter().sum();
            w.iter_mut().for_each(|v| *v /= total);
            (lo, w)
        })
        .collect()
}

/// Appends the `out × full` matrix mapping a whole axis of `full` pixels to the box `offset..offset + len`
/// resized to `out` pixels (rows reversed when `flip`).
fn axis_matrix(full: usize, offset: usize, len: usize, out: usize, flip: bool, dst: &mut Vec<f32>) {
    let t = taps(len, out);
    let start = dst.len();
    dst.resize(start + out * full, 0.0);
    for (i, (lo, w)) in t.into_iter().enumerate() {
        let row = if flip { out - 1 - i } else { i };
        for (k, v) in w.into_iter().enumerate() {
            dst[start + row * full + offset + lo + k] = v as f32;
        }
    }
}

/// Applies `draws[i]` to image `i` of `images` `(N, C, H, W)`, each crop resized to `out = [out_h, out_w]`:
/// differentiable (two batched matrix products), on the images' device.
pub fn apply_transforms(
    images: Tensor<4>,
    draws: &[TransformDraw],
    out: [usize; 2],
) -> Result<Tensor<4>> {
    let [n, c, h, w] = images.dims();
    let [out_h, out_w] = out;
    if draws.len() != n {
        return Err(Error::Input {
            what: "transforms",
            reason: format!("{} transforms for {n} images", draws.len()),
        });
    }
    if out_h == 0 || out_w == 0 {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "out",
            reason: format!("output size {out_h}×{out_w}"),
        }));
    }
    if let Some(d) = draws
        .iter()
        .find(|d| d.height == 0 || d.width == 0 || d.top + d.height > h || d.left + d.width > w)
    {
        return Err(Error::Input {
            what: "transforms",
            reason: format!("crop {d:?} outside a {h}×{w} image"),
        });
    }
    if out == [h, w] && draws.iter().all(|d| d.is_identity(h, w)) {
        return Ok(images);
    }
    let (mut ry, mut rx) = (
        Vec::with_capacity(n * out_h * h),
        Vec::with_capacity(n * out_w * w),
    );
    for d in draws {
        axis_matrix(h, d.top, d.height, out_h, false, &mut ry);
        axis_matrix(w, d.left, d.width, out_w, d.flip, &mut rx);
    }
    let device = images.device();
    let ry = Tensor::<3>::from_data(TensorData::new(ry, [n, out_h, h]), &device);
    let rx = Tensor::<3>::from_data(TensorData::new(rx, [n, out_w, w]), &device);
    // Columns: (n, C·H, W) · R_xᵀ → (n, C·H, out_w).
    let x = images.reshape([n, c * h, w]).matmul(rx.swap_dims(1, 2));
    // Rows: R_y · (n, H, C·out_w) → (n, out_h, C·out_w).
    let x = x
        .reshape([n, c, h, out_w])
        .swap_dims(1, 2)
        .reshape([n, h, c * out_w]);
    let x = ry.matmul(x);
    Ok(x.reshape([n, out_h, c, out_w]).swap_dims(1, 2))
}
