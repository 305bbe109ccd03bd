//! The two contracts between the statistical crates and the neural ones.

use ndarray::{Array2, ArrayView2, ArrayView4};

use crate::Result;

/// Maps a batch of images to feature vectors.
///
/// Images are `(N, C, H, W)`, `f32` in `[0, 1]` (any normalisation happens inside the embedder); the result is
/// `(N, dim())`, one feature row per image. Implementations report their own failures through
/// [`Error::Embedder`](crate::Error::Embedder) and reject malformed batches with
/// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch).
pub trait Embedder: Send + Sync {
    /// Length of each feature vector.
    fn dim(&self) -> usize;
    /// Embeds a batch of images, `(N, C, H, W)` → `(N, dim())`.
    fn embed(&self, images: ArrayView4<'_, f32>) -> Result<Array2<f32>>;
    /// A name that identifies the model (architecture, checkpoint), recorded in calibration artefacts so a
    /// mismatched embedder can be refused later.
    ///
    /// **Implement it.** The default is the Rust type name with its module path
    /// (`my_service::models::Encoder`): renaming the type, moving it to another module or crate, or
    /// wrapping it makes every calibration saved before refuse it ("embedder mismatch"), and two
    /// instances of one type with different weights share a name (the calibration's probe features still tell
    /// them apart). Return something stable that names the weights, e.g. `"resnet18-simclr-2026-12-01"`.
    fn name(&self) -> String {
        std::any::type_name::<Self>().to_string()
    }
}

/// A similarity between feature vectors (rows).
///
/// Kernels must be symmetric (`k(x, y) = k(y, x)`); the MMD estimators rely on it.
pub trait Kernel: Send + Sync {
    /// Short name for reports, e.g. `"cosine"`.
    fn name(&self) -> &str;

    /// The `|x| × |y|` matrix of `k(x_i, y_j)`.
    fn gram(&self, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Result<Array2<f32>>;

    /// The Gram matrix of one pooled sample with itself. Data-dependent choices (such as a median-heuristic
    /// bandwidth) are made from `z` alone, so they do not depend on how `z` is later split.
    fn pooled_gram(&self, z: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.gram(z, z)
    }

    /// An explicit finite feature map `φ` with `k(x, y) = ⟨φ(x), φ(y)⟩`, one row per sample, when the kernel has
    /// one (cosine: the normalised rows; linear: the rows themselves). Algorithms use it to replace `N × N` Gram
    /// matrices by `N × D` feature matrices when `D < N`.
    fn feature_map(&self, x: ArrayView2<'_, f32>) -> Result<Option<Array2<f32>>> {
        let _ = x;
        Ok(None)
    }
}

impl<K: Kernel + ?Sized> Kernel for &K {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn gram(&self, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        (**self).gram(x, y)
    }
    fn pooled_gram(&self, z: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        (**self).pooled_gram(z)
    }
    fn feature_map(&self, x: ArrayView2<'_, f32>) -> Result<Option<Array2<f32>>> {
        (**self).feature_map(x)
    }
}

impl<E: Embedder + ?Sized> Embedder for &E {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn embed(&self, images: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        (**self).embed(images)
    }
    fn name(&self) -> String {
        (**self).name()
    }
}
