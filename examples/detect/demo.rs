//! `--demo`: the synthetic shapes through a hand-crafted embedder, no trained model needed.

use cadet::data::Synthetic;
use cadet::detect::{Cadet, Calibration, ImageScore};
use cadet_core::Embedder;
use cadet_report::progress::Lines;
use ndarray::{Array2, Array4, ArrayView4, Axis};

use super::{Args, BoxError, Scored, method};

/// A hand-crafted stand-in for a trained encoder: the image in grayscale, pooled to 8 × 8, standardised per
/// image and taken in absolute value (so the silhouette counts, not its colour or whether it is darker or
/// lighter than the background).
struct Silhouette;

impl Embedder for Silhouette {
    fn dim(&self) -> usize {
        64
    }
    fn embed(&self, images: ArrayView4<'_, f32>) -> cadet_core::Result<Array2<f32>> {
        let (n, _, h, w) = images.dim();
        let mut out = Array2::<f32>::zeros((n, 64));
        for i in 0..n {
            let gray = images
                .index_axis(Axis(0), i)
                .mean_axis(Axis(0))
                .expect("channels");
            let mut cells = [0.0f32; 64];
            for ((y, x), v) in gray.indexed_iter() {
                cells[(y * 8 / h) * 8 + x * 8 / w] += v;
            }
            let mean = cells.iter().sum::<f32>() / 64.0;
            let sd = (cells.iter().map(|c| (c - mean).powi(2)).sum::<f32>() / 64.0).sqrt() + 1e-6;
            out.row_mut(i)
                .iter_mut()
                .zip(&cells)
                .for_each(|(o, c)| *o = ((c - mean) / sd).abs() + 0.05);
        }
        Ok(out)
    }
    fn name(&self) -> String {
        "silhouette-8x8".into()
    }
}

/// The demo: calibrate on 8 shapes, score their test images, 2 unseen shapes, and noisy test images.
pub(super) fn demo(args: &Args) -> Result<Scored, BoxError> {
    let data = Synthetic {
        classes: 10,
        per_class: 120,
        size: 32,
        seed: 1,
        plain: false,
    }
    .generate()?;
    let seen = data.without_classes(&[8, 9]);
    let parts = seen.split(&[100, 400, 300], 2)?;
    let unseen = data.with_classes(&[8, 9]).split(&[240], 3)?.remove(0);
    let cadet = Cadet::params(32)
        .n_trs(20)
        .identity_view(method(args).needs_identity_view())
        .batch_images(32)
        .method(method(args))
        .check()?;
    let embedder = Silhouette;
    let cal = match &args.calibration {
        Some(p) => Calibration::load(p)?,
        None => cadet.calibrate(
            &embedder,
            parts[0].images_f32().view(),
            parts[1].images_f32().view(),
            &Lines::new(),
        )?,
    };
    let test = parts[2].images_f32();
    let noise: Array4<f32> = {
        let mut x = test.clone();
        x.indexed_iter_mut().for_each(|((i, c, y, xx), v)| {
            let h = ((i * 7919 + c * 104_729 + y * 1299 + xx * 15_485_863) % 1000) as f32 / 1000.0
                - 0.5;
            *v = (*v + 0.3 * h).clamp(0.0, 1.0);
        });
        x
    };
    let score = |name: &str, x: &Array4<f32>| -> Result<(String, Vec<ImageScore>), BoxError> {
        Ok((
            name.to_string(),
            cal.score(&embedder, x.view(), &Lines::new())?,
        ))
    };
    let sets = vec![
        score("in-distribution test", &test)?,
        score("unseen shapes (crescent, pair)", &unseen.images_f32())?,
        score("pixel noise ±0.15", &noise)?,
    ];
    Ok((cal, sets))
}
