//! JPEG re-encoding of a data set in memory: an unseen set compared with JPEG-compressed in-distribution images
//! should pass through the same compression, or a detector may flag the compression rather than the content.

use image::ImageFormat;
use image::codecs::jpeg::JpegEncoder;
use ndarray::Array4;

use crate::{Dataset, Error, Result};

impl Dataset {
    /// The images through a JPEG encoder at `quality` (1 to 100) and back, as RGB (4:2:0 chroma subsampling,
    /// as the `image` crate writes it); single-channel images are replicated to three channels first. Labels
    /// and classes are kept.
    ///
    /// ```
    /// use cadet_data::Synthetic;
    ///
    /// let data = Synthetic { classes: 2, per_class: 2, size: 16, seed: 0, plain: true }.generate()?;
    /// let compressed = data.jpeg_round_trip(75)?;
    /// assert_eq!(compressed.images().dim(), (4, 3, 16, 16));
    /// assert_eq!(compressed.labels(), data.labels());
    /// # Ok::<(), cadet_data::Error>(())
    /// ```
    pub fn jpeg_round_trip(&self, quality: u8) -> Result<Dataset> {
        if !(1..=100).contains(&quality) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "quality",
                reason: format!("a JPEG quality is 1 to 100, got {quality}"),
            }));
        }
        let rgb = self.to_rgb();
        let images = rgb.images();
        let (n, _, h, w) = images.dim();
        let (width, height) = match (u32::try_from(w), u32::try_from(h)) {
            (Ok(width), Ok(height)) if width <= 65_535 && height <= 65_535 => (width, height),
            _ => {
                return Err(Error::Mismatch {
                    what: "JPEG image size",
                    expected: "at most 65535 × 65535 pixels".into(),
                    got: format!("{w} × {h}"),
                });
            }
        };
        let mut out = Array4::<u8>::zeros((n, 3, h, w));
        for i in 0..n {
            let error = |source| Error::JpegRoundTrip { image: i, source };
            let mut pixels = Vec::with_capacity(h * w * 3);
            for y in 0..h {
                for x in 0..w {
                    pixels.extend((0..3).map(|c| images[[i, c, y, x]]));
                }
            }
            let mut bytes = Vec::new();
            JpegEncoder::new_with_quality(&mut bytes, quality)
                .encode(&pixels, width, height, image::ExtendedColorType::Rgb8)
                .map_err(error)?;
            let decoded = image::load_from_memory_with_format(&bytes, ImageFormat::Jpeg)
                .map_err(error)?
                .to_rgb8();
            for (x, y, p) in decoded.enumerate_pixels() {
                for c in 0..3 {
                    out[[i, c, y as usize, x as usize]] = p[c];
                }
            }
        }
        Dataset::new(out, rgb.labels().to_vec(), rgb.classes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use crate::Synthetic;

    #[test]
    fn round_trip_is_close_deterministic_and_checked() {
        let data = Synthetic {
            classes: 3,
            per_class: 2,
            size: 24,
            seed: 4,
            plain: false,
        }
        .generate()
        .unwrap();
        let a = data.jpeg_round_trip(90).unwrap();
        assert_eq!(a, data.jpeg_round_trip(90).unwrap());
        assert_eq!(a.classes(), data.classes());
        // Quality 90 stays close to the original; quality 5 moves further.
        let mean_abs = |d: &crate::Dataset| {
            let orig = data.to_rgb();
            d.images()
                .iter()
                .zip(orig.images())
                .map(|(&x, &y)| f64::from(x.abs_diff(y)))
                .sum::<f64>()
                / d.images().len() as f64
        };
        let (fine, coarse) = (mean_abs(&a), mean_abs(&data.jpeg_round_trip(5).unwrap()));
        assert!(fine < 6.0 && fine < coarse, "{fine} vs {coarse}");
        assert!(data.jpeg_round_trip(0).is_err());
        assert!(data.jpeg_round_trip(101).is_err());
    }
}
