//! The image convention of cadet-rs, documented once.
//!
//! An image is an `ndarray` array of shape `(C, H, W)` (channels first, like the batches `(N, C, H, W)` that an
//! [`Embedder`](cadet_core::Embedder) takes), `f32` values in `[0, 1]`, RGB order for colour images. Every
//! transform returns values in `[0, 1]` (except [`Normalize`](crate::Normalize), whose purpose is to leave it).
//! `u8` images, as decoders give them, are `(H, W, C)` interleaved bytes; [`from_u8_hwc`] and [`to_u8_hwc`]
//! convert (`v / 255` and `round(255 v)`, clamped).

use ndarray::{Array3, ArrayView3};

use crate::{Error, Result};

/// An image: `(C, H, W)`, `f32` in `[0, 1]`.
pub type Image = Array3<f32>;

/// A borrowed image: `(C, H, W)`, `f32` in `[0, 1]`.
pub type ImageView<'a> = ArrayView3<'a, f32>;

/// An image from interleaved `u8` bytes (`H × W × C`, row-major, as image decoders produce).
pub fn from_u8_hwc(bytes: &[u8], height: usize, width: usize, channels: usize) -> Result<Image> {
    if bytes.len() != height * width * channels {
        return Err(cadet_core::Error::ShapeMismatch {
            what: "u8 image buffer",
            expected: vec![height, width, channels],
            got: vec![bytes.len()],
        }
        .into());
    }
    if height == 0 || width == 0 || channels == 0 {
        return Err(cadet_core::Error::EmptyInput {
            what: "u8 image buffer",
        }
        .into());
    }
    Ok(Array3::from_shape_fn(
        (channels, height, width),
        |(c, y, x)| f32::from(bytes[(y * width + x) * channels + c]) / 255.0,
    ))
}

/// Interleaved `u8` bytes (`H × W × C`) of an image: `round(255 v)`, values clamped to `[0, 1]` first.
pub fn to_u8_hwc(image: ImageView<'_>) -> Vec<u8> {
    let (c, h, w) = image.dim();
    let mut out = vec![0u8; c * h * w];
    for ((ch, y, x), &v) in image.indexed_iter() {
        out[(y * w + x) * c + ch] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    out
}

/// Luma of an RGB image as torchvision computes it: `0.2989 R + 0.587 G + 0.114 B`, shape `(H, W)`.
pub fn luma(image: ImageView<'_>) -> Result<ndarray::Array2<f32>> {
    require_rgb("grayscale", image)?;
    let (r, g, b) = (
        image.index_axis(ndarray::Axis(0), 0),
        image.index_axis(ndarray::Axis(0), 1),
        image.index_axis(ndarray::Axis(0), 2),
    );
    Ok(ndarray::Zip::from(&r)
        .and(&g)
        .and(&b)
        .map_collect(|&r, &g, &b| 0.2989 * r + 0.587 * g + 0.114 * b))
}

pub(crate) fn require_rgb(what: &'static str, image: ImageView<'_>) -> Result<()> {
    match image.dim().0 {
        3 => Ok(()),
        got => Err(Error::Channels {
            what,
            expected: 3,
            got,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_round_trip_and_layout() {
        // 1 × 2 image, RGB: pixel (0,0) = (0, 128, 255), pixel (0,1) = (10, 20, 30).
        let bytes = [0u8, 128, 255, 10, 20, 30];
        let img = from_u8_hwc(&bytes, 1, 2, 3).unwrap();
        assert_eq!(img.dim(), (3, 1, 2));
        assert_eq!(img[[1, 0, 0]], 128.0 / 255.0);
        assert_eq!(img[[2, 0, 1]], 30.0 / 255.0);
        assert_eq!(to_u8_hwc(img.view()), bytes.to_vec());
        assert!(from_u8_hwc(&bytes, 2, 2, 3).is_err());
    }

    #[test]
    fn luma_weights() {
        let img = Array3::from_shape_vec((3, 1, 1), vec![1.0, 0.5, 0.0]).unwrap();
        assert!((luma(img.view()).unwrap()[[0, 0]] - (0.2989 + 0.2935)).abs() < 1e-6);
    }
}
