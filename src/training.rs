//! Glue between cadet-augment and cadet-model: images in memory as a [`ViewPairs`] source of two
//! `simclr_train` views each, for [`cadet_model::SimClrTrainer`].

use cadet_augment::{SimclrTrain, views};
use cadet_model::{Error, Result, ViewPairs};
use ndarray::{Array4, Axis};

/// Images `(N, C, H, W)` in `[0, 1]` and the SimCLR pipeline that makes their views.
#[derive(Debug, Clone)]
pub struct SimclrPairs {
    /// The images.
    pub images: Array4<f32>,
    /// The augmentation of each view.
    pub pipeline: SimclrTrain,
}

impl ViewPairs for SimclrPairs {
    fn len(&self) -> usize {
        self.images.dim().0
    }

    fn pairs(&self, indices: &[usize], seed: u64) -> Result<(Array4<f32>, Array4<f32>)> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::InvalidConfig {
                name: "indices",
                reason: format!("index {bad} ≥ {} images", self.len()),
            });
        }
        let batch = self.images.select(Axis(0), indices);
        let two =
            views(batch.view(), 2, &self.pipeline, seed, 0).map_err(|e| Error::InvalidConfig {
                name: "views",
                reason: e.to_string(),
            })?;
        // Rows 2i and 2i + 1 are the two views of image i.
        let first: Vec<usize> = (0..indices.len()).map(|i| 2 * i).collect();
        let second: Vec<usize> = (0..indices.len()).map(|i| 2 * i + 1).collect();
        Ok((two.select(Axis(0), &first), two.select(Axis(0), &second)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cadet_augment::simclr_train;

    #[test]
    fn two_different_views_per_image_reproducibly() {
        let images = Array4::from_shape_fn((3, 3, 16, 16), |(i, c, y, x)| {
            ((i * 5 + c * 3 + y * 7 + x) % 17) as f32 / 16.0
        });
        let pairs = SimclrPairs {
            images,
            pipeline: simclr_train(12, 0.5),
        };
        let (a, b) = pairs.pairs(&[2, 0], 7).unwrap();
        assert_eq!(a.dim(), (2, 3, 12, 12));
        assert_eq!(b.dim(), (2, 3, 12, 12));
        assert_ne!(a, b);
        assert_eq!((a.clone(), b), pairs.pairs(&[2, 0], 7).unwrap());
        assert_ne!(a, pairs.pairs(&[2, 0], 8).unwrap().0);
        assert!(pairs.pairs(&[3], 0).is_err());
    }
}
