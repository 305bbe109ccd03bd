//! IDX files (MNIST, Fashion-MNIST): a big-endian header (two zero bytes, type code, number of dimensions, one
//! `u32` per dimension) followed by the data. Only unsigned bytes (type `0x08`) occur in these data sets.

use std::path::{Path, PathBuf};

use ndarray::Array4;

use super::numbered;
use crate::error::read;
use crate::{Dataset, Error, Result};

fn malformed(reason: String) -> Error {
    Error::Malformed {
        path: PathBuf::new(),
        format: "IDX",
        reason,
    }
}

/// Header check: returns the dimensions and the offset of the data.
fn header(bytes: &[u8], ndim: usize) -> Result<(Vec<usize>, usize)> {
    let offset = 4 + 4 * ndim;
    if bytes.len() < offset {
        return Err(malformed(format!(
            "{} bytes, the header alone needs {offset}",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] as usize != ndim {
        return Err(malformed(format!(
            "magic {:02x}{:02x}{:02x}{:02x}, expected 000008{ndim:02x} (unsigned bytes, {ndim} dimensions)",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| {
            u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| malformed("dimensions overflow".into()))?;
    if bytes.len() - offset != expected {
        return Err(malformed(format!(
            "header {dims:?} needs {expected} data bytes, found {}",
            bytes.len() - offset
        )));
    }
    Ok((dims, offset))
}

/// Images of an IDX file (`N × H × W` bytes) as `(N, 1, H, W)`.
pub fn parse_idx_images(bytes: &[u8]) -> Result<Array4<u8>> {
    let (dims, offset) = header(bytes, 3)?;
    Array4::from_shape_vec((dims[0], 1, dims[1], dims[2]), bytes[offset..].to_vec())
        .map_err(|e| malformed(e.to_string()))
}

/// Labels of an IDX file (`N` bytes).
pub fn parse_idx_labels(bytes: &[u8]) -> Result<Vec<u32>> {
    let (_, offset) = header(bytes, 1)?;
    Ok(bytes[offset..].iter().map(|&b| u32::from(b)).collect())
}

/// An IDX image file with its IDX label file (e.g. `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`);
/// classes are numbered `0..=max label`. Single channel: [`Dataset::to_rgb`] replicates it.
pub fn idx_dataset(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Dataset> {
    let at = |p: &Path, e: Error| match e {
        Error::Malformed { format, reason, .. } => Error::Malformed {
            path: p.to_path_buf(),
            format,
            reason,
        },
        other => other,
    };
    let (ip, lp) = (images.as_ref(), labels.as_ref());
    let imgs = parse_idx_images(&read(ip)?).map_err(|e| at(ip, e))?;
    let labs = parse_idx_labels(&read(lp)?).map_err(|e| at(lp, e))?;
    let classes = labs.iter().max().map_or(0, |&m| m as usize + 1);
    Dataset::new(imgs, labs, numbered(classes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
        b.extend(data);
        b
    }

    #[test]
    fn parses_images_and_labels() {
        let imgs = parse_idx_images(&idx(&[2, 2, 3], &(0..12).collect::<Vec<u8>>())).unwrap();
        assert_eq!(imgs.dim(), (2, 1, 2, 3));
        assert_eq!(imgs[[1, 0, 1, 2]], 11);
        assert_eq!(
            parse_idx_labels(&idx(&[3], &[7, 0, 9])).unwrap(),
            vec![7, 0, 9]
        );
    }

    #[test]
    fn rejects_malformed_headers_and_truncation() {
        assert!(parse_idx_images(&idx(&[2, 2, 3], &[0; 11])).is_err());
        assert!(parse_idx_images(&idx(&[2, 2], &[0; 4])).is_err());
        assert!(parse_idx_labels(&[0, 0, 9, 1, 0, 0, 0, 1, 5]).is_err());
        assert!(parse_idx_labels(&[0, 0, 8]).is_err());
        assert!(parse_idx_images(&idx(&[u32::MAX, u32::MAX, u32::MAX], &[])).is_err());
    }
}
