//! Bilinear resampling with antialiasing, exactly the algorithm of Pillow's `BILINEAR` filter and of
//! torchvision's `resize(..., antialias=True)`: a triangle filter whose support widens by the downscale factor,
//! weights normalised per output pixel, pixel centres at half-integers. Taps never leave the crop box
//! (torchvision crops first, then resizes the crop).

use ndarray::{Array3, ArrayView3};
use serde::{Deserialize, Serialize};

use crate::{Error, Image, ImageView, Result};
use cadet_core::simd::dispatch;

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

/// The taps of every output pixel of one axis, padded to a common width so inner loops have a fixed length:
/// output `i` reads inputs `first[i] .. first[i] + width` with `weights[i·width ..]` (zeros in the padding).
struct Taps {
    first: Vec<usize>,
    weights: Vec<f32>,
    width: usize,
}

/// Pillow's `precompute_coeffs` for the bilinear filter (support 1), from `in_size` to `out_size` pixels.
fn taps(in_size: usize, out_size: usize) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    let per_pixel: Vec<(usize, Vec<f64>)> = (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // Truncation toward zero, then clamping, as in Pillow's C code.
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut w: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 - center + 0.5) / filter_scale).abs()).max(0.0))
                .collect();
            let total: f64 = w.iter().sum();
            w.iter_mut().for_each(|v| *v /= total);
            (lo, w)
        })
        .collect();
    let width = per_pixel
        .iter()
        .map(|(_, w)| w.len())
        .max()
        .unwrap_or(1)
        .min(in_size);
    let mut first = Vec::with_capacity(out_size);
    let mut weights = vec![0.0f32; out_size * width];
    for (i, (lo, w)) in per_pixel.into_iter().enumerate() {
        // Shift the window left where it would run past the end; the weights move with it.
        let start = lo.min(in_size - width);
        for (k, v) in w.into_iter().enumerate() {
            weights[i * width + (lo - start) + k] = v as f32;
        }
        first.push(start);
    }
    Taps {
        first,
        weights,
        width,
    }
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
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "size",
            reason: format!("output {out_h}×{out_w}"),
        }));
    }
    let (tx, ty) = (taps(b.width, out_w), taps(b.height, out_h));
    let src = image.as_standard_layout();
    let src = src.as_slice().expect("standard layout");
    let mut out = Array3::<f32>::zeros((c, out_h, out_w));
    let dst = out.as_slice_mut().expect("fresh array");
    SCRATCH.with_borrow_mut(|horizontal| {
        // A per-thread buffer: views are made by the thousand, and fresh large allocations cost page faults.
        horizontal.resize(b.height * out_w, 0.0);
        for ch in 0..c {
            let plane = &src[ch * h * w..(ch + 1) * h * w];
            let out_plane = &mut dst[ch * out_h * out_w..(ch + 1) * out_h * out_w];
            dispatch(|| resample_plane(plane, w, b, &tx, &ty, horizontal, out_plane, out_w));
        }
    });
    Ok(out)
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One channel: horizontal taps into `horizontal` (`b.height × out_w`), then vertical taps into `out`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn resample_plane(
    plane: &[f32],
    w: usize,
    b: CropBox,
    tx: &Taps,
    ty: &Taps,
    horizontal: &mut [f32],
    out: &mut [f32],
    out_w: usize,
) {
    for y in 0..b.height {
        let row = &plane[(b.top + y) * w + b.left..(b.top + y) * w + b.left + b.width];
        let dst = &mut horizontal[y * out_w..(y + 1) * out_w];
        // Fixed tap counts unroll; upsampling and mild downsampling use 2 to 4 taps.
        match tx.width {
            1 => horizontal_row::<1>(row, tx, dst),
            2 => horizontal_row::<2>(row, tx, dst),
            3 => horizontal_row::<3>(row, tx, dst),
            4 => horizontal_row::<4>(row, tx, dst),
            5 => horizontal_row::<5>(row, tx, dst),
            _ => {
                for (x, d) in dst.iter_mut().enumerate() {
                    let taps = &row[tx.first[x]..tx.first[x] + tx.width];
                    let wts = &tx.weights[x * tx.width..(x + 1) * tx.width];
                    *d = taps.iter().zip(wts).map(|(s, wt)| s * wt).sum();
                }
            }
        }
    }
    for (oy, dst) in out.chunks_exact_mut(out_w).enumerate() {
        for k in 0..ty.width {
            let wt = ty.weights[oy * ty.width + k];
            if wt != 0.0 {
                let src = &horizontal[(ty.first[oy] + k) * out_w..(ty.first[oy] + k + 1) * out_w];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d += wt * s);
            }
        }
        dst.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    }
}

#[inline(always)]
fn horizontal_row<const K: usize>(row: &[f32], tx: &Taps, dst: &mut [f32]) {
    for ((d, &first), wts) in dst
        .iter_mut()
        .zip(&tx.first)
        .zip(tx.weights.chunks_exact(K))
    {
        let taps: &[f32; K] = row[first..first + K].try_into().expect("K taps");
        let wts: &[f32; K] = wts.try_into().expect("K weights");
        let mut acc = 0.0;
        for k in 0..K {
            acc += taps[k] * wts[k];
        }
        *d = acc;
    }
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

    #[test]
    fn padded_taps_keep_weights_and_bounds() {
        for (i, o) in [(7, 3), (3, 7), (222, 224), (256, 224), (1, 5), (5, 1)] {
            let t = taps(i, o);
            for x in 0..o {
                assert!(t.first[x] + t.width <= i);
                let s: f32 = t.weights[x * t.width..(x + 1) * t.width].iter().sum();
                assert!((s - 1.0).abs() < 1e-5, "{i}→{o} at {x}: {s}");
            }
        }
    }
}
