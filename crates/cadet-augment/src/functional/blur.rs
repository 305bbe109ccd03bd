//! Separable Gaussian blur with torchvision's kernel and reflect padding.

use ndarray::Array3;

use cadet_core::simd::dispatch;

use crate::{Error, Image, ImageView, Result};

/// torchvision's 1-D kernel: `exp(−x² / (2σ²))` at `x = −(k−1)/2 … (k−1)/2`, normalised.
pub fn gaussian_kernel(size: usize, sigma: f32) -> Vec<f32> {
    let half = (size as f32 - 1.0) / 2.0;
    let pdf: Vec<f32> = (0..size)
        .map(|i| (-0.5 * ((i as f32 - half) / sigma).powi(2)).exp())
        .collect();
    let total: f32 = pdf.iter().sum();
    pdf.into_iter().map(|v| v / total).collect()
}

/// PyTorch's `reflect` padding index (the edge pixel is not repeated).
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let mut i = i;
    if i < 0 {
        i = -i;
    }
    if i >= n {
        i = 2 * (n - 1) - i;
    }
    i as usize
}

/// Blurs with an odd `size × size` Gaussian kernel of standard deviation `sigma`, rows then columns.
pub fn gaussian_blur(image: ImageView<'_>, size: usize, sigma: f32) -> Result<Image> {
    if size.is_multiple_of(2) || sigma.is_nan() || sigma <= 0.0 {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "gaussian_blur",
            reason: format!("kernel size must be odd and σ > 0, got {size} and {sigma}"),
        }));
    }
    let (c, h, w) = image.dim();
    let half = size / 2;
    if half >= h || half >= w {
        return Err(Error::TooSmall {
            what: "gaussian blur",
            height: h,
            width: w,
            needed: format!("more than {half} pixels per side"),
        });
    }
    let k = gaussian_kernel(size, sigma);
    let src = image.as_standard_layout();
    let src = src.as_slice().expect("standard layout");
    let mut out = Array3::<f32>::zeros((c, h, w));
    let dst = out.as_slice_mut().expect("fresh array");
    let mut padded = vec![0.0f32; w + 2 * half];
    let mut tmp = vec![0.0f32; h * w];
    for ch in 0..c {
        let (plane, out_plane) = (
            &src[ch * h * w..(ch + 1) * h * w],
            &mut dst[ch * h * w..(ch + 1) * h * w],
        );
        dispatch(|| blur_plane(plane, out_plane, &mut tmp, &mut padded, &k, h, w));
    }
    Ok(out)
}

/// One channel: each row padded by reflection and convolved (taps outer, pixels inner, so the inner loop is a
/// vectorisable multiply-add over the row), then each output row as a weighted sum of reflected rows.
#[inline(always)]
fn blur_plane(
    plane: &[f32],
    out: &mut [f32],
    tmp: &mut [f32],
    padded: &mut [f32],
    k: &[f32],
    h: usize,
    w: usize,
) {
    let half = k.len() / 2;
    tmp.fill(0.0);
    for y in 0..h {
        let row = &plane[y * w..(y + 1) * w];
        for (i, p) in padded.iter_mut().enumerate() {
            *p = row[reflect(i as isize - half as isize, w)];
        }
        let dst = &mut tmp[y * w..(y + 1) * w];
        for (t, &kv) in k.iter().enumerate() {
            dst.iter_mut()
                .zip(&padded[t..t + w])
                .for_each(|(d, &s)| *d += kv * s);
        }
    }
    for (y, dst) in out.chunks_exact_mut(w).enumerate() {
        for (t, &kv) in k.iter().enumerate() {
            let sy = reflect(y as isize + t as isize - half as isize, h);
            dst.iter_mut()
                .zip(&tmp[sy * w..(sy + 1) * w])
                .for_each(|(d, &s)| *d += kv * s);
        }
        dst.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn kernel_and_reflect_by_hand() {
        // σ = 1, size 3: weights ∝ (e^−½, 1, e^−½).
        let k = gaussian_kernel(3, 1.0);
        let e = (-0.5f32).exp();
        assert_relative_eq!(k[0], e / (1.0 + 2.0 * e), epsilon = 1e-6);
        assert_relative_eq!(k[1], 1.0 / (1.0 + 2.0 * e), epsilon = 1e-6);
        assert_eq!(
            (reflect(-1, 4), reflect(-2, 4), reflect(4, 4), reflect(5, 4)),
            (1, 2, 2, 1)
        );
    }

    #[test]
    fn blur_of_an_impulse_is_the_kernel_outer_product() {
        let mut img = Array3::<f32>::zeros((1, 5, 5));
        img[[0, 2, 2]] = 1.0;
        let out = gaussian_blur(img.view(), 3, 0.8).unwrap();
        let k = gaussian_kernel(3, 0.8);
        for dy in 0..3 {
            for dx in 0..3 {
                assert_relative_eq!(out[[0, 1 + dy, 1 + dx]], k[dy] * k[dx], epsilon = 1e-6);
            }
        }
        // Reflect padding at the border: a one-hot at the edge column gets its mirror weight back.
        let mut edge = Array3::<f32>::zeros((1, 3, 3));
        edge[[0, 1, 0]] = 1.0;
        let out = gaussian_blur(edge.view(), 3, 0.8).unwrap();
        assert_relative_eq!(out[[0, 1, 0]], k[1] * k[1], epsilon = 1e-6);
        assert_relative_eq!(out[[0, 1, 1]], k[0] * k[1], epsilon = 1e-6);
        assert!(gaussian_blur(img.view(), 4, 1.0).is_err());
        assert!(gaussian_blur(img.view(), 13, 1.0).is_err());
    }
}
