//! Batches of views: `k` transforms of each of `N` images, in parallel, laid out `(N·k, C, H, W)`.
//!
//! Image `i`'s views come from its own ChaCha8 stream (seed, stream `first_index + i`), drawn in order, so the
//! output depends only on the seed and the images' global indices: not on the number of threads, nor on how a
//! data set is cut into batches (pass each batch's `first_index`).

use ndarray::{Array4, ArrayView4, Axis, s};
use rand::SeedableRng;
use rayon::prelude::*;

use crate::transforms::{AugmentRng, Transform};
use crate::{Error, Result};

/// The RNG of image `index` under `seed`.
pub fn image_rng(seed: u64, index: u64) -> AugmentRng {
    let mut rng = AugmentRng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// `k` views of each image of `images` (`(N, C, H, W)`), `(N·k, C, H', W')` with image `i`'s views at rows
/// `i·k .. (i+1)·k`, drawn from stream `first_index + i`. Every view must come out the same shape.
pub fn views<T: Transform + ?Sized>(
    images: ArrayView4<'_, f32>,
    k: usize,
    transform: &T,
    seed: u64,
    first_index: u64,
) -> Result<Array4<f32>> {
    let streams: Vec<u64> = (0..images.dim().0 as u64)
        .map(|i| first_index.wrapping_add(i))
        .collect();
    views_with_streams(images, k, transform, seed, &streams)
}

/// [`views`] with one stream per image, given by the caller (e.g. derived from the image's content, so that an
/// image gets the same views wherever it sits in a batch).
pub fn views_with_streams<T: Transform + ?Sized>(
    images: ArrayView4<'_, f32>,
    k: usize,
    transform: &T,
    seed: u64,
    streams: &[u64],
) -> Result<Array4<f32>> {
    let n = images.dim().0;
    if n == 0 || k == 0 {
        return Err(cadet_core::Error::EmptyInput {
            what: "views: images or k",
        }
        .into());
    }
    if streams.len() != n {
        return Err(Error::Core(cadet_core::Error::ShapeMismatch {
            what: "views: one stream per image",
            expected: vec![n],
            got: vec![streams.len()],
        }));
    }
    let per_image: Vec<Vec<crate::Image>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = image_rng(seed, streams[i]);
            let image = images.index_axis(Axis(0), i);
            (0..k)
                .map(|_| transform.apply(image, &mut rng))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    let shape = per_image[0][0].dim();
    let mut out = Array4::<f32>::zeros((n * k, shape.0, shape.1, shape.2));
    for (i, views) in per_image.iter().enumerate() {
        for (j, v) in views.iter().enumerate() {
            if v.dim() != shape {
                return Err(Error::Core(cadet_core::Error::ShapeMismatch {
                    what: "views: every view must have the same shape",
                    expected: vec![shape.0, shape.1, shape.2],
                    got: v.shape().to_vec(),
                }));
            }
            out.slice_mut(s![i * k + j, .., .., ..]).assign(v);
        }
    }
    Ok(out)
}
