//! # cadet-augment
//!
//! The paper's two families of views: SimCLR's training transforms, which shape the similarity the encoder
//! learns, and CADet's evaluation transforms, `n_trs` of which are scored per image. Transforms follow
//! torchvision's semantics and defaults (crop-box sampling, antialiased bilinear resizing, the colour formulas,
//! the blur kernel), take images in the convention of [`image`] (`(C, H, W)`, `f32` in `[0, 1]`) and draw all
//! randomness from an explicit RNG; [`views`] makes batches in parallel, reproducibly.
//!
//! ```
//! use cadet_augment::{cadet_eval, simclr_train, views};
//! use ndarray::Array4;
//!
//! // Two 3 × 32 × 32 images.
//! let images = Array4::from_shape_fn((2, 3, 32, 32), |(n, c, y, x)| ((n + c + y * x) % 7) as f32 / 7.0);
//! // 50 evaluation views of each, laid out (2·50, 3, 32, 32) for an Embedder.
//! let eval = views(images.view(), 50, &cadet_eval(32), 0, 0)?;
//! assert_eq!(eval.dim(), (100, 3, 32, 32));
//! // Two training views of each, 24 px; the pipeline is a value whose steps can be changed.
//! let mut train = simclr_train(24, 0.5);
//! train.blur.p = 0.0;
//! let pair = views(images.view(), 2, &train, 7, 0)?;
//! assert_eq!(pair.dim(), (4, 3, 24, 24));
//! assert!(pair.iter().all(|&v| (0.0..=1.0).contains(&v)));
//! # Ok::<(), cadet_augment::Error>(())
//! ```

mod error;
pub mod functional;
pub mod image;
mod pipelines;
pub mod transforms;
mod views;

pub use error::{Error, Result};
pub use image::{Image, ImageView};
pub use pipelines::{CadetEval, SimclrTrain, cadet_eval, simclr_train};
pub use transforms::{
    AugmentRng, CenterCrop, ColorJitter, Compose, GaussianBlur, HorizontalFlip, Normalize,
    RandomApply, RandomGrayscale, RandomResizedCrop, Resize, Transform,
};
pub use views::{image_rng, views, views_with_streams};
