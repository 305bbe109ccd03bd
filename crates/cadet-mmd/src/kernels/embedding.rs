//! A kernel on images: embed, then compare the features.

use cadet_core::{Embedder, Error, Kernel, Result, validate};
use ndarray::{Array2, ArrayView2, Axis, concatenate};

use super::CosineKernel;

/// Applies an [`Embedder`] to images, then an inner kernel (cosine by default, the paper's choice) to the
/// features. Each row of the kernel's input is one image flattened in `(C, H, W)` order; `image_shape` gives
/// `(C, H, W)`. Images are embedded in batches of `batch_size`.
#[derive(Debug, Clone)]
pub struct EmbeddingKernel<E, K = CosineKernel> {
    embedder: E,
    image_shape: [usize; 3],
    inner: K,
    batch_size: usize,
}

impl<E: Embedder> EmbeddingKernel<E, CosineKernel> {
    /// Cosine similarity of the embedder's features, images of shape `(C, H, W)`, batches of 256.
    pub fn new(embedder: E, image_shape: [usize; 3]) -> Self {
        Self::with_kernel(embedder, image_shape, CosineKernel)
    }
}

impl<E: Embedder, K: Kernel> EmbeddingKernel<E, K> {
    /// Any inner kernel.
    pub fn with_kernel(embedder: E, image_shape: [usize; 3], inner: K) -> Self {
        Self {
            embedder,
            image_shape,
            inner,
            batch_size: 256,
        }
    }

    /// Images per call to the embedder (at least 1).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Embeds flattened images, one per row.
    pub fn embed_rows(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let [c, h, w] = self.image_shape;
        validate::samples("images", x, Some(c * h * w))?;
        let mut parts = Vec::new();
        for chunk in x.axis_chunks_iter(Axis(0), self.batch_size) {
            let images = chunk
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((chunk.nrows(), c, h, w))
                .map_err(|e| Error::Embedder(Box::new(e)))?;
            let features = self.embedder.embed(images.view())?;
            if features.dim() != (chunk.nrows(), self.embedder.dim()) {
                return Err(Error::ShapeMismatch {
                    what: "embedder output",
                    expected: vec![chunk.nrows(), self.embedder.dim()],
                    got: features.shape().to_vec(),
                });
            }
            parts.push(features);
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        concatenate(Axis(0), &views).map_err(|e| Error::Embedder(Box::new(e)))
    }
}

impl<E: Embedder, K: Kernel> Kernel for EmbeddingKernel<E, K> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn gram(&self, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let (fx, fy) = (self.embed_rows(x)?, self.embed_rows(y)?);
        self.inner.gram(fx.view(), fy.view())
    }
    fn pooled_gram(&self, z: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.inner.pooled_gram(self.embed_rows(z)?.view())
    }
    fn feature_map(&self, x: ArrayView2<'_, f32>) -> Result<Option<Array2<f32>>> {
        self.inner.feature_map(self.embed_rows(x)?.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::{Array2, ArrayView4};

    /// Features: per-channel means (a deterministic embedder with a known answer).
    struct ChannelMeans;
    impl Embedder for ChannelMeans {
        fn dim(&self) -> usize {
            2
        }
        fn embed(&self, images: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
            Ok(Array2::from_shape_fn((images.dim().0, 2), |(n, c)| {
                images
                    .index_axis(Axis(0), n)
                    .index_axis(Axis(0), c)
                    .mean()
                    .unwrap()
            }))
        }
    }

    #[test]
    fn embeds_then_applies_inner_kernel() {
        // Two 2×1×1... images of shape (2, 1, 2): channel 0 then channel 1, two pixels each.
        let x = ndarray::array![
            [1.0f32, 1.0, 0.0, 0.0],
            [0.0, 0.0, 0.5, 0.5],
            [0.2, 0.4, 0.3, 0.3]
        ];
        let k = EmbeddingKernel::new(ChannelMeans, [2, 1, 2]).batch_size(2);
        let g = k.gram(x.view(), x.view()).unwrap();
        assert_relative_eq!(g[[0, 1]], 0.0, epsilon = 1e-6);
        assert_relative_eq!(g[[0, 2]], 0.3 / (0.3f32 * 2f32.sqrt()), epsilon = 1e-6);
        assert!(matches!(
            k.gram(x.slice(ndarray::s![.., ..3]), x.view()),
            Err(Error::DimensionMismatch {
                expected: 4,
                got: 3,
                ..
            })
        ));
    }
}
