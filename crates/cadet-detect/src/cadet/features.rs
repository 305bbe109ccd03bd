//! Features of `n_trs` evaluation transforms of each image, in batches across images.

use cadet_augment::views;
use cadet_core::{Embedder, Progress};
use ndarray::{Array3, ArrayView4, Axis, s};

use super::Cadet;
use crate::{Error, Result};

/// `(N, n_trs, d)` features of the transforms of `images`; image `i` uses view stream `stream + i`.
pub(crate) fn transform_features<E: Embedder + ?Sized>(
    cadet: &Cadet,
    embedder: &E,
    images: ArrayView4<'_, f32>,
    stream: u64,
    progress: &dyn Progress,
) -> Result<Array3<f32>> {
    let p = &cadet.params;
    let (n, d) = (images.dim().0, embedder.dim());
    cadet_core::validate::finite_array("images", images.into_dyn())?;
    let mut out = Array3::<f32>::zeros((n, p.n_trs, d));
    for start in (0..n).step_by(p.batch_images) {
        let end = (start + p.batch_images).min(n);
        let batch = views(
            images.slice(s![start..end, .., .., ..]),
            p.n_trs,
            &p.pipeline,
            p.seed,
            stream + start as u64,
        )?;
        let feats = embedder.embed(batch.view())?;
        if feats.dim() != ((end - start) * p.n_trs, d) {
            return Err(Error::ShapeMismatch {
                what: "embedder output",
                expected: vec![(end - start) * p.n_trs, d],
                got: feats.shape().to_vec(),
            });
        }
        let feats = feats
            .into_shape_with_order((end - start, p.n_trs, d))
            .expect("sizes checked");
        out.slice_mut(s![start..end, .., ..]).assign(&feats);
        progress.advance((end - start) as u64);
    }
    debug_assert_eq!(out.len_of(Axis(0)), n);
    Ok(out)
}
