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

/// A CIFAR-10 split stored as an image folder (`cifar10-jpeg/train` or `/test` of `../shared/data`): one folder
/// per class, named and therefore labelled as [`CIFAR10_CLASSES`]. A folder more, less or misnamed shifted every
/// label, and a classifier's accuracy read 2 % where it is 81 %: it is an error here. So is a class folder
/// without images (empty, its images moved into a subfolder, a link to another folder): an accuracy over nine
/// classes read as CIFAR-10's.
pub fn cifar10_folder(dir: impl AsRef<std::path::Path>) -> crate::Result<crate::Dataset> {
    let dir = dir.as_ref();
    let data = ImageFolder::new(dir).load()?;
    if data.classes() != CIFAR10_CLASSES {
        return Err(crate::Error::Mismatch {
            what: "CIFAR-10 class folders",
            expected: CIFAR10_CLASSES.join(", "),
            got: format!("{} in {}", data.classes().join(", "), dir.display()),
        });
    }
    let counts = data.class_counts();
    if let Some(empty) = counts.iter().position(|&n| n == 0) {
        return Err(crate::Error::Mismatch {
            what: "CIFAR-10 class folders",
            expected: "images in each of the ten class folders".into(),
            got: format!("none in {}", dir.join(CIFAR10_CLASSES[empty]).display()),
        });
    }
    Ok(data)
}

/// Class names `"0"`, `"1"`, … for data sets that carry none.
pub(crate) fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}
