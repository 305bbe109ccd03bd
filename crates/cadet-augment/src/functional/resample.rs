//! Bilinear resampling with antialiasing, exactly the algorithm of Pillow's `BILINEAR` filter and of
//! torchvision's `resize(..., antialias=True)`: a triangle filter whose support widens by the downscale factor,
//! weights normalised per output pixel, pixel centres at half-integers.

use ndarray::{Array3, ArrayView3, Axis};
use serde::{Deserialize, Serialize};

use crate::{Error, Image, ImageView, Result};

/// A box of pixels: rows `top..top + height`, columns `left..left + width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropBox {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// Taps of one output pixel: first input index and normalised weights.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// Pillow's `precompute_coeffs` for the bilinear filter (support 1), from `in_size` to `out_size` pixels.
fn taps(in_size: usize, out_size: usize) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // Truncation toward zero, then clamping, as in Pillow's C code.
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut weights: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 - center + 0.5) / filter_scale).abs()).max(0.0))
                .collect();
            let total: f64 = weights.iter().sum();
            weights.iter_mut().for_each(|w| *w /= total);
            Taps {
                first: lo,
                weights: weights.into_iter().map(|w| w as f32).collect(),
            }
        })
        .collect()
}

/// Resamples the box `b` of `image` to `(out_h, out_w)`: torchvision's `resized_crop` (and `resize` when the box
/// is the whole image). Rows first, then columns, each a 1-D filter.
pub fn resize_box(image: ImageView<'_>, b: CropBox, out_h: usize, out_w: usize) -> Result<Image> {
    let (c, h, w) = image.dim();
    if b.height == 0 || b.width == 0 || b.top + b.height > h || b.left + b.width > w {
        return Err(Error::TooSmall {
            what: "crop",
            height: h,
            width: w,
            needed: format!("{b:?}"),
        });
    }
    if out_h == 0 || out_w == 0 {
        return Err(Error::InvalidParameter {
            name: "size",
            reason: format!("output {out_h}×{out_w}"),
        });
    }
    // Taps stay inside the box: torchvision crops first, then resizes the crop.
    let (tx, ty) = (taps(b.width, out_w), taps(b.height, out_h));
    let mut horizontal = Array3::<f32>::zeros((c, b.height, out_w));
    for ch in 0..c {
        let plane = image.index_axis(Axis(0), ch);
        for y in 0..b.height {
            let src = plane.row(b.top + y);
            let mut dst = horizontal.slice_mut(ndarray::s![ch, y, ..]);
            for (o, t) in dst.iter_mut().zip(&tx) {
                *o = t
                    .weights
                    .iter()
                    .enumerate()
                    .map(|(k, wt)| wt * src[b.left + t.first + k])
                    .sum();
            }
        }
    }
    let mut out = Array3::<f32>::zeros((c, out_h, out_w));
    for ch in 0..c {
        for (oy, t) in ty.iter().enumerate() {
            let mut dst = out.slice_mut(ndarray::s![ch, oy, ..]);
            for (k, &wt) in t.weights.iter().enumerate() {
                let src = horizontal.slice(ndarray::s![ch, t.first + k, ..]);
                dst.zip_mut_with(&src, |d, &s| *d += wt * s);
            }
        }
    }
    out.mapv_inplace(|v| v.clamp(0.0, 1.0));
    Ok(out)
}

/// The box covering the whole image.
pub fn full_box(image: ArrayView3<'_, f32>) -> CropBox {
    let (_, h, w) = image.dim();
    CropBox {
        top: 0,
        left: 0,
        height: h,
        width: w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::Array3;

    fn row(v: &[f32]) -> Image {
        Array3::from_shape_vec((1, 1, v.len()), v.to_vec()).unwrap()
    }

    #[test]
    fn downscale_by_two_antialiased_by_hand() {
        // [0, .1, .2, .3] → 2 px. Output 0: centre 1, support 2, inputs 0..3 with weights .75 .75 .25.
        let img = row(&[0.0, 0.1, 0.2, 0.3]);
        let out = resize_box(img.view(), full_box(img.view()), 1, 2).unwrap();
        assert_relative_eq!(out[[0, 0, 0]], (0.075 + 0.05) / 1.75, epsilon = 1e-6);
        // Output 1: centre 3, inputs 1..4 with weights .25 .75 .75.
        assert_relative_eq!(
            out[[0, 0, 1]],
            (0.025 + 0.15 + 0.225) / 1.75,
            epsilon = 1e-6
        );
    }

    #[test]
    fn upscale_is_bilinear_with_half_pixel_centres() {
        // [0, 1] → 4 px: sources at −0.25 (clamped → 0), 0.25, 0.75, 1.25 (clamped → 1).
        let img = row(&[0.0, 1.0]);
        let out = resize_box(img.view(), full_box(img.view()), 1, 4).unwrap();
        let got: Vec<f32> = out.iter().copied().collect();
        for (g, e) in got.iter().zip([0.0, 0.25, 0.75, 1.0]) {
            assert_relative_eq!(*g, e, epsilon = 1e-6);
        }
    }

    #[test]
    fn identity_and_crop_box() {
        let img = Array3::from_shape_fn((2, 5, 6), |(c, y, x)| {
            ((c * 30 + y * 6 + x) % 17) as f32 / 17.0
        });
        let same = resize_box(img.view(), full_box(img.view()), 5, 6).unwrap();
        assert!(
            same.iter()
                .zip(img.iter())
                .all(|(a, b)| (a - b).abs() < 1e-6)
        );
        let b = CropBox {
            top: 1,
            left: 2,
            height: 3,
            width: 3,
        };
        let cropped = resize_box(img.view(), b, 3, 3).unwrap();
        assert_relative_eq!(cropped[[1, 2, 0]], img[[1, 3, 2]], epsilon = 1e-6);
        assert!(
            resize_box(
                img.view(),
                CropBox {
                    top: 3,
                    left: 0,
                    height: 3,
                    width: 2
                },
                2,
                2
            )
            .is_err()
        );
    }
}
