//! The header of a safetensors file (tensor names, shapes and the free-form `__metadata__`), read without
//! loading the tensors, to check a file against the model before any weight is applied.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// Headers larger than this are refused (the format's own reference implementation caps them at 100 MB).
const MAX_HEADER: u64 = 100 << 20;

/// What a safetensors header declares.
#[derive(Debug, Default)]
pub(crate) struct Header {
    /// The `__metadata__` strings (e.g. `arch`).
    pub(crate) metadata: BTreeMap<String, String>,
    /// Each tensor's name and shape.
    pub(crate) tensors: BTreeMap<String, Vec<usize>>,
}

/// Reads the header of the safetensors file `path`.
pub(crate) fn read(path: &Path) -> Result<Header> {
    let bad = |reason: String| Error::Weights {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(bad(format!(
            "not a safetensors file: header of {len} bytes"
        )));
    }
    let mut text = vec![0u8; len as usize];
    file.read_exact(&mut text)
        .map_err(|e| bad(format!("truncated safetensors header: {e}")))?;
    let json: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("unreadable safetensors header: {e}")))?;
    let metadata = json
        .get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let tensors = json
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(name, info)| {
            let shape = info
                .get("shape")
                .and_then(|s| s.as_array())
                .and_then(|dims| {
                    dims.iter()
                        .map(|d| d.as_u64().map(|d| d as usize))
                        .collect()
                })
                .ok_or_else(|| bad(format!("tensor `{name}` has no shape")))?;
            Ok((name.clone(), shape))
        })
        .collect::<Result<_>>()?;
    Ok(Header { metadata, tensors })
}
