//! # cadet-data
//!
//! Data sets for cadet-rs: loaders for the usual formats, seeded disjoint splits and class filters, a synthetic
//! data set that needs no download, and PNG grids to look at images.
//!
//! - [`Dataset`]: labelled images held as bytes `(N, C, H, W)`; [`Dataset::images_f32`] gives the `[0, 1]`
//!   convention of `cadet-augment` and of `Embedder`s.
//! - [`formats`]: CIFAR-10/100 binary batches, `.npy` arrays with `.npy` labels (CIFAR-10.1), image folders
//!   (PNG/JPEG), Tiny-ImageNet's validation folder, IDX (MNIST / Fashion-MNIST), the convnetjs CIFAR sheets.
//! - [`Synthetic`]: shapes on varied backgrounds, one class per shape.
//!
//! ```
//! use cadet_data::Synthetic;
//!
//! let data = Synthetic { classes: 6, per_class: 20, size: 32, seed: 0, plain: false }.generate()?;
//! // In-distribution: shapes 0..4; held out (unseen classes): shapes 4 and 5.
//! let seen = data.without_classes(&[4, 5]);
//! let unseen = data.with_classes(&[4, 5]);
//! let parts = seen.split(&[40, 20, 20], 1)?; // train / X(1) / X(2)
//! assert_eq!((parts[0].len(), unseen.len()), (40, 40));
//! assert_eq!(parts[1].images_f32().dim(), (20, 3, 32, 32));
//! # Ok::<(), cadet_data::Error>(())
//! ```

mod dataset;
mod error;
pub mod formats;
mod jpeg;
mod render;
mod synthetic;

pub use dataset::Dataset;
pub use error::{Error, Result};
pub use render::save_grid;
pub use synthetic::{SHAPES, Synthetic};
