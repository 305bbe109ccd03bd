//! Separable Gaussian blur with torchvision's kernel and reflect padding.

use ndarray::{Array3, Axis};

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
    if size % 2 == 0 || sigma.is_nan() || sigma <= 0.0 {
        return Err(Error::InvalidParameter {
            name: "gaussian_blur",
            reason: format!("kernel size must be odd and σ > 0, got {size} and {sigma}"),
        });
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
    let mut tmp = Array3::<f32>::zeros((c, h, w));
    for ch in 0..c {
        let plane = image.index_axis(Axis(0), ch);
        for y in 0..h {
            for x in 0..w {
                tmp[[ch, y, x]] = k
                    .iter()
                    .enumerate()
                    .map(|(t, kv)| {
                        kv * plane[[y, reflect(x as isize + t as isize - half as isize, w)]]
                    })
                    .sum();
            }
        }
    }
    let mut out = Array3::<f32>::zeros((c, h, w));
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                out[[ch, y, x]] = k
                    .iter()
                    .enumerate()
                    .map(|(t, kv)| {
                        kv * tmp[[ch, reflect(y as isize + t as isize - half as isize, h), x]]
                    })
                    .sum::<f32>()
                    .clamp(0.0, 1.0);
            }
        }
    }
    Ok(out)
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
