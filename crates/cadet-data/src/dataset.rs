//! A labelled image data set held as bytes, converted to the `f32` convention on demand.

use ndarray::{Array4, ArrayView4, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// Labelled images: `(N, C, H, W)` bytes (a quarter of the memory of `f32`), a label per image, class names.
/// [`images_f32`](Self::images_f32) and [`batch_f32`](Self::batch_f32) give the `f32` in `[0, 1]` convention of
/// `cadet-augment` and of `Embedder`s.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    images: Array4<u8>,
    labels: Vec<u32>,
    classes: Vec<String>,
}

impl Dataset {
    /// A data set; every label must index `classes`.
    pub fn new(images: Array4<u8>, labels: Vec<u32>, classes: Vec<String>) -> Result<Self> {
        if labels.len() != images.dim().0 {
            return Err(Error::Mismatch {
                what: "labels per image",
                expected: images.dim().0.to_string(),
                got: labels.len().to_string(),
            });
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= classes.len()) {
            return Err(Error::Mismatch {
                what: "label within the class list",
                expected: format!("< {}", classes.len()),
                got: bad.to_string(),
            });
        }
        Ok(Self {
            images,
            labels,
            classes,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `(C, H, W)` of every image.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        let (_, c, h, w) = self.images.dim();
        (c, h, w)
    }

    /// The images as bytes, `(N, C, H, W)`.
    pub fn images(&self) -> ArrayView4<'_, u8> {
        self.images.view()
    }

    /// Labels, one per image.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Class names; label `l` is `classes()[l]`.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        self.labels.iter().for_each(|&l| counts[l as usize] += 1);
        counts
    }

    /// All images as `f32` in `[0, 1]`.
    pub fn images_f32(&self) -> Array4<f32> {
        self.images.mapv(|v| f32::from(v) / 255.0)
    }

    /// The images at `indices` as `f32` in `[0, 1]`.
    pub fn batch_f32(&self, indices: &[usize]) -> Result<Array4<f32>> {
        self.check_indices(indices)?;
        Ok(self
            .images
            .select(Axis(0), indices)
            .mapv(|v| f32::from(v) / 255.0))
    }

    /// The images at `indices`, with their labels.
    pub fn select(&self, indices: &[usize]) -> Result<Dataset> {
        self.check_indices(indices)?;
        Ok(Dataset {
            images: self.images.select(Axis(0), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
        })
    }

    /// How many images of `other` are, pixel for pixel, images of this data set (whatever their order, labels
    /// or file names): a probe or test set that holds training images measures nothing about generalisation.
    ///
    /// ```
    /// use cadet_data::Synthetic;
    /// let train = Synthetic { classes: 2, per_class: 5, size: 8, seed: 1, plain: false }.generate()?;
    /// let other = Synthetic { classes: 2, per_class: 5, size: 8, seed: 2, plain: false }.generate()?;
    /// assert_eq!(train.images_in(&train.select(&[3, 0, 7])?), 3);
    /// assert_eq!(train.images_in(&other), 0);
    /// # Ok::<(), cadet_data::Error>(())
    /// ```
    pub fn images_in(&self, other: &Dataset) -> usize {
        use std::hash::{Hash, Hasher};
        // 64-bit hashes of the pixels (DefaultHasher::new() has fixed keys), not copies of the images.
        let hashes = |d: &Dataset| -> Vec<u64> {
            d.images
                .outer_iter()
                .map(|image| {
                    let mut h = std::hash::DefaultHasher::new();
                    image.shape().hash(&mut h);
                    image.iter().for_each(|v| v.hash(&mut h));
                    h.finish()
                })
                .collect()
        };
        let known: std::collections::HashSet<u64> = hashes(self).into_iter().collect();
        hashes(other)
            .into_iter()
            .filter(|h| known.contains(h))
            .count()
    }

    /// Only the images whose class is in `classes` (labels and class names unchanged).
    pub fn with_classes(&self, classes: &[u32]) -> Dataset {
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| classes.contains(&self.labels[i]))
            .collect();
        self.select(&keep).expect("indices in range")
    }

    /// Only the images whose class is not in `classes`: the held-out classes of an unseen-class test.
    pub fn without_classes(&self, classes: &[u32]) -> Dataset {
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| !classes.contains(&self.labels[i]))
            .collect();
        self.select(&keep).expect("indices in range")
    }

    /// Disjoint random subsets of the given sizes (e.g. train / X⁽¹⁾ / X⁽²⁾ / test), drawn with a seeded
    /// shuffle. The sizes may sum to less than the data set; more is an error.
    pub fn split(&self, sizes: &[usize], seed: u64) -> Result<Vec<Dataset>> {
        // Checked: sizes come from flags, and a wrapped sum would pass the check and slice out of range.
        let total = sizes.iter().try_fold(0usize, |a, &n| a.checked_add(n));
        if total.is_none_or(|t| t > self.len()) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "sizes",
                reason: format!(
                    "{sizes:?} sum to {}, the data set holds {}",
                    total.map_or("more than usize::MAX".to_string(), |t| t.to_string()),
                    self.len()
                ),
            }));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let mut start = 0;
        sizes
            .iter()
            .map(|&n| {
                let part = self.select(&order[start..start + n]);
                start += n;
                part
            })
            .collect()
    }

    /// Single-channel images replicated to three (grayscale to RGB); colour images unchanged.
    pub fn to_rgb(&self) -> Dataset {
        if self.images.dim().1 != 1 {
            return self.clone();
        }
        let (n, _, h, w) = self.images.dim();
        let images = Array4::from_shape_fn((n, 3, h, w), |(i, _, y, x)| self.images[[i, 0, y, x]]);
        Dataset {
            images,
            labels: self.labels.clone(),
            classes: self.classes.clone(),
        }
    }

    /// Colour images as gray ones, still with three equal channels: Pillow's `convert("L")`
    /// (`(299·R + 587·G + 114·B) / 1000`, rounded). Single-channel images are replicated to three.
    pub fn to_grayscale(&self) -> Dataset {
        if self.images.dim().1 != 3 {
            return self.to_rgb();
        }
        let (n, _, h, w) = self.images.dim();
        let images = Array4::from_shape_fn((n, 3, h, w), |(i, _, y, x)| {
            let [r, g, b] = [0, 1, 2].map(|c| u32::from(self.images[[i, c, y, x]]));
            ((299 * r + 587 * g + 114 * b + 500) / 1000) as u8
        });
        Dataset {
            images,
            labels: self.labels.clone(),
            classes: self.classes.clone(),
        }
    }

    fn check_indices(&self, indices: &[usize]) -> Result<()> {
        match indices.iter().find(|&&i| i >= self.len()) {
            Some(&i) => Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "indices",
                reason: format!("index {i} ≥ {} images", self.len()),
            })),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes whose sum overflows (flags such as `--n-test 18446744073709551615`) are refused; the sum used to
    /// wrap, pass the check and panic slicing out of range.
    #[test]
    fn split_sizes_that_overflow_are_refused() {
        let data = crate::Synthetic {
            classes: 2,
            per_class: 5,
            size: 8,
            seed: 0,
            plain: true,
        }
        .generate()
        .unwrap();
        let e = data.split(&[3, usize::MAX], 0).unwrap_err().to_string();
        assert!(e.contains("more than usize::MAX"), "{e}");
        assert!(data.split(&[usize::MAX, usize::MAX, 2], 0).is_err());
        assert!(data.split(&[11], 0).is_err());
        assert_eq!(data.split(&[4, 6], 0).unwrap()[1].len(), 6);
    }

    #[test]
    fn grayscale_is_pillows_luma_in_three_channels() {
        let images = Array4::from_shape_vec(
            (2, 3, 1, 1),
            vec![255, 0, 0, /* second image */ 10, 200, 30],
        )
        .unwrap();
        let d = Dataset::new(images, vec![0, 1], vec!["a".into(), "b".into()]).unwrap();
        let g = d.to_grayscale();
        // Pillow: Image.new("RGB", (1, 1), (255, 0, 0)).convert("L") is 76; (10, 200, 30) gives 124.
        assert_eq!(
            g.images().iter().copied().collect::<Vec<_>>(),
            vec![76, 76, 76, 124, 124, 124]
        );
        assert_eq!(g.labels(), d.labels());
    }

    fn tiny(n: usize) -> Dataset {
        let images = Array4::from_shape_fn((n, 1, 2, 2), |(i, _, y, x)| (i * 4 + y * 2 + x) as u8);
        let labels = (0..n as u32).map(|i| i % 3).collect();
        Dataset::new(images, labels, vec!["a".into(), "b".into(), "c".into()]).unwrap()
    }

    #[test]
    fn splits_are_disjoint_seeded_and_sized() {
        let d = tiny(30);
        let parts = d.split(&[10, 5, 7], 3).unwrap();
        assert_eq!(
            parts.iter().map(Dataset::len).collect::<Vec<_>>(),
            vec![10, 5, 7]
        );
        // Images are unique (first byte = 4 · index), so disjointness is visible in the bytes.
        let mut firsts: Vec<u8> = parts
            .iter()
            .flat_map(|p| {
                p.images()
                    .index_axis(Axis(1), 0)
                    .index_axis(Axis(1), 0)
                    .index_axis(Axis(1), 0)
                    .to_vec()
            })
            .collect();
        firsts.sort_unstable();
        firsts.dedup();
        assert_eq!(firsts.len(), 22);
        assert_eq!(parts, d.split(&[10, 5, 7], 3).unwrap());
        assert_ne!(parts[0], d.split(&[10, 5, 7], 4).unwrap()[0]);
        assert!(d.split(&[20, 11], 0).is_err());
    }

    #[test]
    fn class_filters_and_counts() {
        let d = tiny(10);
        assert_eq!(d.class_counts(), vec![4, 3, 3]);
        let kept = d.with_classes(&[0, 2]);
        assert_eq!(kept.len(), 7);
        assert!(kept.labels().iter().all(|&l| l != 1));
        assert_eq!(d.without_classes(&[0, 2]).labels(), &[1, 1, 1]);
        let f = d.batch_f32(&[2]).unwrap();
        assert_eq!(f[[0, 0, 1, 1]], 11.0 / 255.0);
        assert_eq!(d.to_rgb().image_shape(), (3, 2, 2));
    }

    #[test]
    fn mismatches_are_errors() {
        let images = Array4::<u8>::zeros((3, 1, 2, 2));
        assert!(matches!(
            Dataset::new(images.clone(), vec![0, 1], vec!["a".into(), "b".into()]),
            Err(Error::Mismatch { .. })
        ));
        assert!(matches!(
            Dataset::new(images, vec![0, 1, 5], vec!["a".into(), "b".into()]),
            Err(Error::Mismatch { .. })
        ));
        assert!(tiny(3).select(&[3]).is_err());
    }
}
