//! Features of `n_trs` evaluation transforms of each image, in batches across images.

use cadet_augment::views_with_streams;
use cadet_core::{Embedder, Progress};
use ndarray::{Array3, ArrayView4, Axis, s};

use super::{Cadet, Stream};
use crate::method::ViewLayout;
use crate::{Error, Result};

/// FNV-1a (64 bits) of an image's pixel bits, folded to 40 bits: the part of its view stream that makes its views
/// depend on its content only, not on its position in a batch. Stable across platforms and Rust versions.
pub(crate) fn content_stream(image: ndarray::ArrayView3<'_, f32>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for &v in image.iter() {
        for b in v.to_bits().to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
    }
    (h ^ (h >> 40)) & ((1 << 40) - 1)
}

/// `(N, views, d)` features of `images`: the `n_trs` transforms, after the un-augmented view when the layout has
/// it; an image's transforms come from stream `stream.domain() + content_stream(image)`.
pub(crate) fn transform_features<E: Embedder + ?Sized>(
    cadet: &Cadet,
    embedder: &E,
    images: ArrayView4<'_, f32>,
    stream: Stream,
    progress: &dyn Progress,
) -> Result<Array3<f32>> {
    let p = &cadet.params;
    let domain = stream.domain();
    let (n, d) = (images.dim().0, embedder.dim());
    let views = p.layout.views(p.n_trs);
    cadet_core::validate::finite_array("images", images.into_dyn())?;
    let mut out = Array3::<f32>::zeros((n, views, d));
    for start in (0..n).step_by(p.batch_images) {
        let end = (start + p.batch_images).min(n);
        let batch_images = images.slice(s![start..end, .., .., ..]);
        let streams: Vec<u64> = batch_images
            .outer_iter()
            .map(|img| domain + content_stream(img))
            .collect();
        let mut batch = views_with_streams(batch_images, p.n_trs, &p.pipeline, p.seed, &streams)?;
        if p.layout == ViewLayout::IdentityFirst {
            batch = with_identity_views(batch, batch_images, &p.pipeline, p.n_trs)?;
        }
        let feats = embedder.embed(batch.view())?;
        if feats.dim() != ((end - start) * views, d) {
            return Err(Error::ShapeMismatch {
                what: "embedder output",
                expected: vec![(end - start) * views, d],
                got: feats.shape().to_vec(),
            });
        }
        // Through standard layout: an embedder may return a column-major or otherwise strided array.
        let feats = feats
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((end - start, views, d))
            .map_err(|e| Error::Numerical(format!("embedder output: {e}")))?;
        out.slice_mut(s![start..end, .., ..]).assign(&feats);
        progress.advance((end - start) as u64);
    }
    debug_assert_eq!(out.len_of(Axis(0)), n);
    Ok(out)
}

/// `transforms` (`(N·n_trs, C, H, W)`, image `i`'s at rows `i·n_trs ..`) with each image's un-augmented view
/// inserted before its transforms: `(N·(1 + n_trs), C, H, W)`.
fn with_identity_views(
    transforms: ndarray::Array4<f32>,
    images: ArrayView4<'_, f32>,
    pipeline: &cadet_augment::CadetEval,
    n_trs: usize,
) -> Result<ndarray::Array4<f32>> {
    let (rows, c, h, w) = transforms.dim();
    let n = rows / n_trs;
    let mut out = ndarray::Array4::<f32>::zeros((n * (1 + n_trs), c, h, w));
    for (i, image) in images.outer_iter().enumerate() {
        let identity = pipeline.identity_view(image)?;
        if identity.dim() != (c, h, w) {
            return Err(Error::ShapeMismatch {
                what: "un-augmented view",
                expected: vec![c, h, w],
                got: identity.shape().to_vec(),
            });
        }
        let first = i * (1 + n_trs);
        out.index_axis_mut(Axis(0), first).assign(&identity);
        out.slice_mut(s![first + 1..first + 1 + n_trs, .., .., ..])
            .assign(&transforms.slice(s![i * n_trs..(i + 1) * n_trs, .., .., ..]));
    }
    Ok(out)
}
