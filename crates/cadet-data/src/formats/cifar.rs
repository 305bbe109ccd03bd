//! CIFAR-10 and CIFAR-100 binary batches: fixed-size records of label byte(s) and 3,072 bytes of image in
//! `(C, H, W)` order (1,024 red, 1,024 green, 1,024 blue).

use std::path::{Path, PathBuf};

use ndarray::Array4;

use super::{CIFAR10_CLASSES, numbered};
use crate::error::read;
use crate::{Dataset, Error, Result};

/// Which CIFAR file, and for CIFAR-100 which label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// CIFAR-10: one label byte (0..10) per record.
    Cifar10,
    /// CIFAR-100 with its 100 fine labels (two label bytes per record: coarse, fine).
    Cifar100Fine,
    /// CIFAR-100 with its 20 coarse labels.
    Cifar100Coarse,
}

impl CifarKind {
    fn label_bytes(self) -> usize {
        if self == CifarKind::Cifar10 { 1 } else { 2 }
    }
    fn classes(self) -> u32 {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100Fine => 100,
            CifarKind::Cifar100Coarse => 20,
        }
    }
}

const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Parses one binary batch: images `(N, 3, 32, 32)` and labels.
pub fn parse_cifar(bytes: &[u8], kind: CifarKind) -> Result<(Array4<u8>, Vec<u32>)> {
    let record = kind.label_bytes() + IMAGE_BYTES;
    let malformed = |reason: String| Error::Malformed {
        path: PathBuf::new(),
        format: "CIFAR binary",
        reason,
    };
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(malformed(format!(
            "{} bytes is not a whole number of {record}-byte records",
            bytes.len()
        )));
    }
    let n = bytes.len() / record;
    let mut images = Array4::<u8>::zeros((n, 3, 32, 32));
    let mut labels = Vec::with_capacity(n);
    let dst = images.as_slice_mut().expect("fresh array");
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label =
            u32::from(rec[kind.label_bytes() - 1 - usize::from(kind == CifarKind::Cifar100Coarse)]);
        if label >= kind.classes() {
            return Err(malformed(format!(
                "record {i}: label {label} ≥ {}",
                kind.classes()
            )));
        }
        labels.push(label);
        dst[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES].copy_from_slice(&rec[kind.label_bytes()..]);
    }
    Ok((images, labels))
}

fn with_path<T>(r: Result<T>, path: &Path) -> Result<T> {
    r.map_err(|e| match e {
        Error::Malformed { format, reason, .. } => Error::Malformed {
            path: path.to_path_buf(),
            format,
            reason,
        },
        other => other,
    })
}

/// CIFAR-10 from one or more binary batches (`data_batch_1.bin` …, `test_batch.bin`), concatenated in order.
/// Class names come from `batches.meta.txt` beside the first file when present.
pub fn cifar10_binary<P: AsRef<Path>>(paths: &[P]) -> Result<Dataset> {
    load(paths, CifarKind::Cifar10, "batches.meta.txt")
}

/// CIFAR-100 from its binary files (`train.bin`, `test.bin`), with fine or coarse labels; names from
/// `fine_label_names.txt` / `coarse_label_names.txt` beside the first file when present.
pub fn cifar100_binary<P: AsRef<Path>>(paths: &[P], kind: CifarKind) -> Result<Dataset> {
    let names = if kind == CifarKind::Cifar100Coarse {
        "coarse_label_names.txt"
    } else {
        "fine_label_names.txt"
    };
    load(paths, kind, names)
}

fn load<P: AsRef<Path>>(paths: &[P], kind: CifarKind, names_file: &str) -> Result<Dataset> {
    let first = paths.first().ok_or_else(|| {
        Error::Core(cadet_core::Error::InvalidParameter {
            name: "paths",
            reason: "no file".into(),
        })
    })?;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for p in paths {
        let (im, lb) = with_path(parse_cifar(&read(p.as_ref())?, kind), p.as_ref())?;
        images.push(im);
        labels.extend(lb);
    }
    let views: Vec<_> = images.iter().map(|a| a.view()).collect();
    let images = ndarray::concatenate(ndarray::Axis(0), &views).expect("same image shape");
    let names_path = first.as_ref().with_file_name(names_file);
    let classes = match std::fs::read_to_string(&names_path) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        Err(_) if kind == CifarKind::Cifar10 => {
            CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect()
        }
        Err(_) => numbered(kind.classes() as usize),
    };
    Dataset::new(images, labels, classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: &[u8], fill: u8) -> Vec<u8> {
        let mut r = label.to_vec();
        r.extend((0..IMAGE_BYTES).map(|i| fill.wrapping_add(i as u8)));
        r
    }

    #[test]
    fn parses_cifar10_and_cifar100_records() {
        let bytes = [record(&[3], 0), record(&[9], 7)].concat();
        let (images, labels) = parse_cifar(&bytes, CifarKind::Cifar10).unwrap();
        assert_eq!(labels, vec![3, 9]);
        // Byte 1024 of the image is the first green value.
        assert_eq!(images[[1, 1, 0, 0]], 7u8.wrapping_add(0));
        assert_eq!(images[[1, 0, 0, 5]], 12);
        let bytes100 = record(&[4, 77], 1);
        assert_eq!(
            parse_cifar(&bytes100, CifarKind::Cifar100Fine).unwrap().1,
            vec![77]
        );
        assert_eq!(
            parse_cifar(&bytes100, CifarKind::Cifar100Coarse).unwrap().1,
            vec![4]
        );
    }

    #[test]
    fn rejects_truncated_and_bad_labels() {
        let bytes = record(&[3], 0);
        assert!(matches!(
            parse_cifar(&bytes[..100], CifarKind::Cifar10),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            parse_cifar(&[], CifarKind::Cifar10),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            parse_cifar(&record(&[10], 0), CifarKind::Cifar10),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            parse_cifar(&record(&[20, 5], 0), CifarKind::Cifar100Coarse),
            Err(Error::Malformed { .. })
        ));
    }
}
