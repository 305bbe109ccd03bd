//! Loaders for the usual formats. Binary parsers take bytes (so they can be fuzzed) and return typed errors
//! for every malformed input; file loaders wrap them.

mod cifar;
mod folder;
mod idx;
mod npy;
mod sheet;

pub use cifar::{CifarKind, cifar10_binary, cifar100_binary, parse_cifar};
pub use folder::{ImageFolder, annotated_folder, tiny_imagenet_val};
pub use idx::{idx_dataset, parse_idx_images, parse_idx_labels};
pub use npy::{
    NpyHeader, check_npy_size, npy_images, read_npy, read_npy_header, save_npy,
    unlabelled_npy_images,
};
pub use sheet::{cifar10_lossless, convnetjs_labels, parse_sheet};

/// CIFAR-10's class names, in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Class names `"0"`, `"1"`, … for data sets that carry none.
pub(crate) fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}
