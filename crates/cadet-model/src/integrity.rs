//! Checksums of the files the crate writes (SHA-256 through the `sha2` crate), checked when they are read back.

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::ModuleSnapshot;
use burn::tensor::DType;
use cadet_core::limits::{Limits, open_regular, read_capped};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The manifest of a checkpoint folder: file name → SHA-256 (hex).
pub(crate) const MANIFEST: &str = "checksums.json";

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The SHA-256 of a file's bytes, in hex (regular files only: a FIFO would block, a device never end).
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut file = open_regular(path).map_err(|e| Error::reading(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io_error(path))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `dir/checksums.json` with the digest of each of `files` (names inside `dir`).
pub(crate) fn write_manifest(dir: &Path, files: &[&str]) -> Result<()> {
    let mut sums = BTreeMap::new();
    for &file in files {
        sums.insert(file.to_string(), sha256_file(&dir.join(file))?);
    }
    let json = serde_json::to_string_pretty(&sums).expect("a map of strings serialises");
    let path = dir.join(MANIFEST);
    std::fs::write(&path, json).map_err(io_error(&path))
}

/// Checks each of `files` in `dir` against `dir/checksums.json`: every one must be recorded and match.
pub(crate) fn verify_manifest(dir: &Path, files: &[&str]) -> Result<()> {
    let path = dir.join(MANIFEST);
    let text = read_capped(&path, Limits::default().max_file_bytes)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| Error::Checkpoint {
            path: dir.to_path_buf(),
            reason: format!(
                "no readable {MANIFEST} ({e}): incomplete, or written by an older version"
            ),
        })?;
    cadet_core::json::unique_keys(text.as_bytes()).map_err(|e| Error::Checkpoint {
        path: path.clone(),
        reason: format!("not a checksum list: {e}"),
    })?;
    let sums: BTreeMap<String, String> =
        serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: format!("not a checksum list: {e}"),
        })?;
    for &file in files {
        let expected = sums.get(file).ok_or_else(|| Error::Checkpoint {
            path: path.clone(),
            reason: format!("no checksum for {file}"),
        })?;
        let found = sha256_file(&dir.join(file))?;
        // Hex digits in either case: an upper-case digest is the same digest.
        if !found.eq_ignore_ascii_case(expected) {
            return Err(Error::ChecksumMismatch {
                path: dir.join(file),
                expected: expected.clone(),
                found,
            });
        }
    }
    Ok(())
}

/// Refuses a model holding a NaN or infinite float (a parameter or a batch-norm statistic), naming it by its path
/// in the model, as loaded from `path` ([`Error::NonFiniteWeight`]).
pub(crate) fn check_finite_module<M: ModuleSnapshot>(path: &Path, module: &M) -> Result<()> {
    for tensor in module.collect(None, None, false) {
        let dtype = match tensor.dtype {
            DType::F64 => "F64",
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            _ => continue,
        };
        let bytes = tensor.to_bytes().map_err(|e| Error::Weights {
            path: path.to_path_buf(),
            reason: format!("tensor `{}`: {e}", tensor.name),
        })?;
        if let Some((index, value)) = crate::safetensors_header::first_non_finite(dtype, &bytes) {
            return Err(Error::NonFiniteWeight {
                path: path.to_path_buf(),
                tensor: tensor.name,
                index,
                value,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_known_values_and_flips_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"abc").unwrap();
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_file(&dir.path().join("a")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::write(dir.path().join("b"), [7u8; 1000]).unwrap();
        write_manifest(dir.path(), &["a", "b"]).unwrap();
        verify_manifest(dir.path(), &["a", "b"]).unwrap();
        let mut bytes = std::fs::read(dir.path().join("b")).unwrap();
        bytes[500] ^= 0x10;
        std::fs::write(dir.path().join("b"), bytes).unwrap();
        assert!(matches!(
            verify_manifest(dir.path(), &["a", "b"]),
            Err(Error::ChecksumMismatch { path, .. }) if path.ends_with("b")
        ));
        assert!(matches!(
            verify_manifest(dir.path(), &["a", "c"]),
            Err(Error::Checkpoint { .. })
        ));
    }
}
