//! Deterministic image operations with torchvision's semantics; the random transforms draw parameters and call
//! these. Each takes and returns `(C, H, W)` images in `[0, 1]`.

mod blur;
mod color;
mod resample;

pub use blur::{gaussian_blur, gaussian_kernel};
pub use color::{adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, to_grayscale};
pub(crate) use color::{contrast_in_place, hue_in_place, saturation_in_place};
pub use resample::{CropBox, full_box, resize_box};

use ndarray::{Axis, s};

use crate::{Image, ImageView};

/// Mirror left–right.
pub fn hflip(image: ImageView<'_>) -> Image {
    image
        .slice(s![.., .., ..;-1])
        .as_standard_layout()
        .into_owned()
}

/// Python's `round` (half to even), which torchvision uses for crop offsets.
pub(crate) fn round_half_even(v: f64) -> f64 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 {
        2.0 * (v / 2.0).round()
    } else {
        r
    }
}

/// The centred box of `(h, w)` in an image of `(height, width)`, offsets rounded as torchvision's `CenterCrop`.
pub fn center_box(height: usize, width: usize, h: usize, w: usize) -> CropBox {
    let top = round_half_even((height as f64 - h as f64) / 2.0) as usize;
    let left = round_half_even((width as f64 - w as f64) / 2.0) as usize;
    CropBox {
        top,
        left,
        height: h,
        width: w,
    }
}

/// The pixels of a box (no resampling).
pub fn crop(image: ImageView<'_>, b: CropBox) -> Image {
    image
        .slice(s![.., b.top..b.top + b.height, b.left..b.left + b.width])
        .to_owned()
}

/// Per-channel `(x − mean) / std`.
pub fn normalize(image: ImageView<'_>, mean: &[f32], std: &[f32]) -> Image {
    let mut out = image.to_owned();
    for (c, mut plane) in out.axis_iter_mut(Axis(0)).enumerate() {
        plane.mapv_inplace(|v| (v - mean[c]) / std[c]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn round_half_even_like_python() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(2.6), 3.0);
        assert_eq!(round_half_even(3.0), 3.0);
    }

    #[test]
    fn flip_crop_center_by_hand() {
        let img = Array3::from_shape_fn((1, 2, 3), |(_, y, x)| (y * 3 + x) as f32);
        assert_eq!(
            hflip(img.view()).into_raw_vec_and_offset().0,
            vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0]
        );
        // (5 − 2) / 2 = 1.5 → 2 ; (4 − 3) / 2 = 0.5 → 0: torchvision's CenterCrop offsets.
        assert_eq!(
            center_box(5, 4, 2, 3),
            CropBox {
                top: 2,
                left: 0,
                height: 2,
                width: 3
            }
        );
        let c = crop(
            img.view(),
            CropBox {
                top: 1,
                left: 1,
                height: 1,
                width: 2,
            },
        );
        assert_eq!(c.into_raw_vec_and_offset().0, vec![4.0, 5.0]);
        let n = normalize(img.view(), &[1.0], &[2.0]);
        assert_eq!(n[[0, 1, 2]], 2.0);
    }
}
