//! Colour adjustments with the formulas of torchvision's tensor functional API (`adjust_*`), each clamped to
//! `[0, 1]` as torchvision's `_blend` does.

use crate::image::{luma, require_rgb};
use crate::{Image, ImageView, Result};

/// `clamp(f · x)`: blend with black.
pub fn adjust_brightness(image: ImageView<'_>, factor: f32) -> Image {
    image.mapv(|v| (v * factor).clamp(0.0, 1.0))
}

/// `clamp(f · x + (1 − f) · m)` with `m` the mean luma of the whole image.
pub fn adjust_contrast(image: ImageView<'_>, factor: f32) -> Result<Image> {
    require_rgb("contrast", image)?;
    let mut out = image.as_standard_layout().into_owned();
    contrast_in_place(&mut out, factor);
    Ok(out)
}

/// `clamp(f · x + (1 − f) · luma(x))` per pixel.
pub fn adjust_saturation(image: ImageView<'_>, factor: f32) -> Result<Image> {
    require_rgb("saturation", image)?;
    let mut out = image.as_standard_layout().into_owned();
    saturation_in_place(&mut out, factor);
    Ok(out)
}

/// The three planes of an owned RGB image in standard layout.
fn planes(image: &mut Image) -> (&mut [f32], &mut [f32], &mut [f32]) {
    let plane = image.dim().1 * image.dim().2;
    let data = image.as_slice_mut().expect("standard layout");
    let (r, gb) = data.split_at_mut(plane);
    let (g, b) = gb.split_at_mut(plane);
    (r, g, b)
}

/// [`adjust_contrast`] in place (RGB, standard layout).
pub(crate) fn contrast_in_place(image: &mut Image, factor: f32) {
    let (r, g, b) = planes(image);
    let total: f64 = r
        .iter()
        .zip(g.iter())
        .zip(b.iter())
        .map(|((r, g), b)| f64::from(0.2989 * r + 0.587 * g + 0.114 * b))
        .sum();
    let mean = (total / r.len() as f64) as f32;
    image.mapv_inplace(|v| (factor * v + (1.0 - factor) * mean).clamp(0.0, 1.0));
}

/// [`adjust_saturation`] in place (RGB, standard layout).
pub(crate) fn saturation_in_place(image: &mut Image, factor: f32) {
    let (r, g, b) = planes(image);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let gray = (1.0 - factor) * (0.2989 * *r + 0.587 * *g + 0.114 * *b);
        *r = (factor * *r + gray).clamp(0.0, 1.0);
        *g = (factor * *g + gray).clamp(0.0, 1.0);
        *b = (factor * *b + gray).clamp(0.0, 1.0);
    }
}

/// Luma replicated over the three channels (torchvision's `rgb_to_grayscale(num_output_channels=3)`).
pub fn to_grayscale(image: ImageView<'_>) -> Result<Image> {
    let gray = luma(image)?;
    let (_, h, w) = image.dim();
    Ok(Image::from_shape_fn((3, h, w), |(_, y, x)| gray[[y, x]]))
}

/// Rotates the hue by `factor` turns (`factor ∈ [−0.5, 0.5]`), through HSV as torchvision does.
pub fn adjust_hue(image: ImageView<'_>, factor: f32) -> Result<Image> {
    require_rgb("hue", image)?;
    let mut out = image.as_standard_layout().into_owned();
    hue_in_place(&mut out, factor);
    Ok(out)
}

/// [`adjust_hue`] on an owned RGB image in standard layout.
pub(crate) fn hue_in_place(image: &mut Image, factor: f32) {
    let (r, g, b) = planes(image);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let (hh, s, v) = rgb_to_hsv(*r, *g, *b);
        let (nr, ng, nb) = hsv_to_rgb(wrap_unit(hh + factor), s, v);
        (*r, *g, *b) = (nr.clamp(0.0, 1.0), ng.clamp(0.0, 1.0), nb.clamp(0.0, 1.0));
    }
}

/// torchvision's `_rgb2hsv`: hue in `[0, 1)`.
fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let cr = maxc - minc;
    let s = if maxc > 0.0 { cr / maxc } else { 0.0 };
    if cr == 0.0 {
        return (0.0, s, maxc);
    }
    let (rc, gc, bc) = ((maxc - r) / cr, (maxc - g) / cr, (maxc - b) / cr);
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    (wrap_unit(h / 6.0 + 1.0), s, maxc)
}

/// `x mod 1` for `x ∈ (−2, 2)`, without a call to `fmod` (`rem_euclid` is a library call on baseline x86-64).
#[inline(always)]
fn wrap_unit(x: f32) -> f32 {
    let y = x - (x as i32) as f32;
    if y < 0.0 { y + 1.0 } else { y }
}

/// torchvision's `_hsv2rgb`.
fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    // h ∈ [0, 1): truncation is the floor.
    let i = (h * 6.0) as i32;
    let f = h * 6.0 - i as f32;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i.rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::Array3;

    fn pixel(r: f32, g: f32, b: f32) -> Image {
        Array3::from_shape_vec((3, 1, 1), vec![r, g, b]).unwrap()
    }

    #[test]
    fn brightness_contrast_saturation_by_hand() {
        let img = Array3::from_shape_vec((3, 1, 2), vec![0.2, 0.8, 0.4, 0.6, 0.0, 1.0]).unwrap();
        assert_eq!(adjust_brightness(img.view(), 1.5)[[0, 0, 1]], 1.0);
        assert_relative_eq!(adjust_brightness(img.view(), 0.5)[[1, 0, 0]], 0.2);
        // Luma of the two pixels: .2989·.2 + .587·.4 + .114·0 = .29458 ; .2989·.8 + .587·.6 + .114 = .70532.
        let mean = (0.29458 + 0.70532) / 2.0;
        let c = adjust_contrast(img.view(), 0.5).unwrap();
        assert_relative_eq!(c[[0, 0, 0]], 0.5 * 0.2 + 0.5 * mean, epsilon = 1e-6);
        let s = adjust_saturation(img.view(), 0.0).unwrap();
        assert_relative_eq!(s[[2, 0, 1]], 0.70532, epsilon = 1e-6);
        let s2 = adjust_saturation(img.view(), 2.0).unwrap();
        assert_relative_eq!(
            s2[[1, 0, 0]],
            (2.0 * 0.4 - 0.29458f32).clamp(0.0, 1.0),
            epsilon = 1e-6
        );
    }

    #[test]
    fn hue_rotations_by_hand() {
        // Pure red rotated by a third of a turn is pure green, by two thirds pure blue.
        let red = pixel(1.0, 0.0, 0.0);
        let g = adjust_hue(red.view(), 1.0 / 3.0).unwrap();
        assert_relative_eq!(g[[1, 0, 0]], 1.0, epsilon = 1e-5);
        assert_relative_eq!(g[[0, 0, 0]], 0.0, epsilon = 1e-5);
        let b = adjust_hue(red.view(), -1.0 / 3.0).unwrap();
        assert_relative_eq!(b[[2, 0, 0]], 1.0, epsilon = 1e-5);
        // Grey has no hue; a full turn is the identity.
        let grey = pixel(0.3, 0.3, 0.3);
        assert_eq!(adjust_hue(grey.view(), 0.25).unwrap(), grey);
        let px = pixel(0.9, 0.35, 0.1);
        let back = adjust_hue(adjust_hue(px.view(), 0.2).unwrap().view(), -0.2).unwrap();
        for (a, b) in back.iter().zip(px.iter()) {
            assert_relative_eq!(*a, *b, epsilon = 1e-5);
        }
        // (0.9, 0.35, 0.1): h = (bc − gc)/6 with gc = .55/.8, bc = .8/.8 → h = .3125/6 = 0.0521.
        let (h, s, v) = rgb_to_hsv(0.9, 0.35, 0.1);
        assert_relative_eq!(h, (1.0 - 0.55 / 0.8) / 6.0, epsilon = 1e-6);
        assert_relative_eq!(s, 0.8 / 0.9, epsilon = 1e-6);
        assert_eq!(v, 0.9);
    }

    #[test]
    fn grayscale_needs_rgb() {
        let one = Array3::<f32>::zeros((1, 2, 2));
        assert!(to_grayscale(one.view()).is_err());
        let g = to_grayscale(pixel(1.0, 0.0, 0.0).view()).unwrap();
        assert!(g.iter().all(|&v| (v - 0.2989).abs() < 1e-6));
    }
}
