//! The header of a safetensors file (tensor names, dtypes, shapes, byte ranges and the free-form
//! `__metadata__`), read and checked without loading the tensors, to check a file against the model before any
//! weight is applied; and [`check_finite`], which streams the tensors a model will load and refuses NaN and ±∞.
//!
//! The file is untrusted (weights are downloaded): the header is capped by [`Limits::max_header_bytes`], every
//! shape's size by [`Limits::max_alloc_bytes`] with checked arithmetic, and every tensor's byte range must be
//! exactly its dtype × shape, the ranges must tile the data section (what the `safetensors` crate that Burn
//! uses requires, here with errors that name the tensor).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use cadet_core::limits::{Limits, open_regular};

use crate::{Error, Result};

/// One tensor as the header declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorInfo {
    /// The safetensors dtype (`F32`, `I64`, …).
    pub(crate) dtype: String,
    /// Its shape.
    pub(crate) shape: Vec<usize>,
    /// Its bytes within the data section, `start..end`.
    start: u64,
    end: u64,
}

/// What a safetensors header declares.
#[derive(Debug, Default)]
pub(crate) struct Header {
    /// The `__metadata__` strings (e.g. `arch`).
    pub(crate) metadata: BTreeMap<String, String>,
    /// Each tensor, by name.
    pub(crate) tensors: BTreeMap<String, TensorInfo>,
    /// Where the data section starts in the file (after the length and the header).
    data_start: u64,
    /// The file's length when the header was read.
    file_len: u64,
}

/// Bytes per element of the dtypes the format defines with whole bytes (Burn reads a subset of them).
fn element_bytes(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

/// Reads and checks the header of the safetensors file `path` within [`Limits::default`].
pub(crate) fn read(path: &Path) -> Result<Header> {
    read_with(path, &Limits::default())
}

/// Reads and checks the header of the safetensors file `path` within `limits`.
pub(crate) fn read_with(path: &Path, limits: &Limits) -> Result<Header> {
    let bad = |reason: String| Error::Weights {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = open_regular(path).map_err(|e| Error::reading(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::reading(path, e))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let len = u64::from_le_bytes(len);
    if len > limits.max_header_bytes {
        return Err(Error::LimitExceeded {
            path: path.to_path_buf(),
            what: format!("a safetensors header of {len} bytes"),
            limit: format!(
                "{} bytes (Limits::max_header_bytes)",
                limits.max_header_bytes
            ),
        });
    }
    if len > file_len.saturating_sub(8) {
        return Err(bad(format!(
            "not a safetensors file: a header of {len} bytes in a file of {file_len}"
        )));
    }
    let mut text = vec![0u8; len as usize];
    file.read_exact(&mut text)
        .map_err(|e| bad(format!("truncated safetensors header: {e}")))?;
    // A tensor or metadata key given twice would leave the one read here to serde (the last), not the file.
    cadet_core::json::unique_keys(&text).map_err(|e| bad(format!("safetensors header: {e}")))?;
    let json: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("unreadable safetensors header: {e}")))?;
    let serde_json::Value::Object(json) = json else {
        return Err(bad("the safetensors header is not a JSON object".into()));
    };
    let mut header = Header {
        data_start: 8 + len,
        ..Header::default()
    };
    for (name, info) in json {
        if name == "__metadata__" {
            for (k, v) in info.as_object().into_iter().flatten() {
                let v = v
                    .as_str()
                    .ok_or_else(|| bad(format!("metadata `{k}` is {v}, not a string")))?;
                header.metadata.insert(k.clone(), v.to_string());
            }
            continue;
        }
        let tensor = tensor_info(path, &name, &info, limits)?;
        header.tensors.insert(name, tensor);
    }
    header.file_len = file_len;
    Ok(header)
}

/// One tensor's entry, its byte range checked against its dtype and shape.
fn tensor_info(
    path: &Path,
    name: &str,
    info: &serde_json::Value,
    limits: &Limits,
) -> Result<TensorInfo> {
    let bad = |reason: String| Error::Weights {
        path: path.to_path_buf(),
        reason: format!("tensor `{name}`: {reason}"),
    };
    let dtype = info
        .get("dtype")
        .and_then(|d| d.as_str())
        .ok_or_else(|| bad("no dtype".into()))?;
    let size = element_bytes(dtype).ok_or_else(|| bad(format!("unknown dtype `{dtype}`")))?;
    let shape: Vec<usize> = info
        .get("shape")
        .and_then(|s| s.as_array())
        .and_then(|dims| {
            dims.iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect()
        })
        .ok_or_else(|| bad("no shape (a list of sizes)".into()))?;
    let offsets = info
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .and_then(|o| match o.as_slice() {
            [a, b] => a.as_u64().zip(b.as_u64()),
            _ => None,
        })
        .ok_or_else(|| bad("no data_offsets (two byte offsets)".into()))?;
    let bytes = limits
        .check_alloc(&format!("tensor `{name}`"), &shape, size)
        .map_err(|e| Error::limit(path, e))?;
    let (start, end) = offsets;
    if end.checked_sub(start) != Some(bytes as u64) {
        return Err(bad(format!(
            "{dtype} of shape {shape:?} needs {bytes} bytes, its data_offsets [{start}, {end}] say otherwise"
        )));
    }
    Ok(TensorInfo {
        dtype: dtype.to_string(),
        shape,
        start,
        end,
    })
}

/// The byte ranges must follow each other from 0 to the end of the file, without gap or overlap (checked after
/// the names and shapes, whose errors say more: a tensor the model has no place for overlaps another).
fn check_tiling(path: &Path, header: &Header) -> Result<()> {
    let bad = |reason: String| Error::Weights {
        path: path.to_path_buf(),
        reason,
    };
    let mut ranges: Vec<(&String, &TensorInfo)> = header.tensors.iter().collect();
    ranges.sort_by_key(|(_, t)| (t.start, t.end));
    let mut at = 0;
    for (name, t) in ranges {
        if t.start != at {
            return Err(bad(format!(
                "tensor `{name}`: its data starts at byte {} of the data, where the previous tensor's ends at {at} \
                 (overlapping or with a gap)",
                t.start
            )));
        }
        at = t.end;
    }
    let data_len = header.file_len.saturating_sub(header.data_start);
    if at != data_len {
        return Err(bad(format!(
            "the tensors' data ends at byte {at}, the file's data section has {data_len} bytes (truncated or \
             padded)"
        )));
    }
    Ok(())
}

/// A little-endian element's value when it is NaN or infinite.
type ElementCheck = fn(&[u8]) -> Option<f64>;

/// The element size of `dtype` and a test returning a little-endian element's value when it is NaN or infinite;
/// `None` for dtypes other than F16, BF16, F32 and F64 (integers are always finite; Burn reads no 8-bit floats).
fn non_finite(dtype: &str) -> Option<(usize, ElementCheck)> {
    fn f16(b: &[u8]) -> Option<f64> {
        let bits = u16::from_le_bytes([b[0], b[1]]);
        (bits & 0x7c00 == 0x7c00).then(|| {
            if bits & 0x03ff != 0 {
                f64::NAN
            } else {
                signed_inf(bits >> 15)
            }
        })
    }
    fn bf16(b: &[u8]) -> Option<f64> {
        let bits = u32::from(u16::from_le_bytes([b[0], b[1]])) << 16;
        Some(f64::from(f32::from_bits(bits))).filter(|v| !v.is_finite())
    }
    fn f32(b: &[u8]) -> Option<f64> {
        Some(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).filter(|v| !v.is_finite())
    }
    fn f64(b: &[u8]) -> Option<f64> {
        let v = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        (!v.is_finite()).then_some(v)
    }
    fn signed_inf(sign: u16) -> f64 {
        if sign == 1 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }
    }
    match dtype {
        "F16" => Some((2, f16)),
        "BF16" => Some((2, bf16)),
        "F32" => Some((4, f32)),
        "F64" => Some((8, f64)),
        _ => None,
    }
}

/// The flat index and value of the first NaN or infinite element of `bytes`, little-endian elements of `dtype`
/// (a safetensors dtype name); `None` when all are finite or the dtype is not a float.
pub(crate) fn first_non_finite(dtype: &str, bytes: &[u8]) -> Option<(usize, f64)> {
    let (size, check) = non_finite(dtype)?;
    bytes
        .chunks_exact(size)
        .enumerate()
        .find_map(|(i, e)| check(e).map(|v| (i, v)))
}

/// Checks that the tensors' byte ranges tile the data section (what Burn's reader requires, here with errors
/// naming the tensor), then streams the floating-point tensors of `path` whose names `wanted` accepts and
/// refuses the first NaN or infinity ([`Error::NonFiniteWeight`], naming the tensor and the element). Memory
/// stays at one buffer. Loaders call it after checking names and shapes, before Burn reads the file.
pub(crate) fn check_finite(
    path: &Path,
    header: &Header,
    wanted: impl Fn(&str) -> bool,
) -> Result<()> {
    check_tiling(path, header)?;
    let mut file = open_regular(path).map_err(|e| Error::reading(path, e))?;
    let mut buffer = vec![0u8; 1 << 20];
    for (name, t) in header.tensors.iter().filter(|(n, _)| wanted(n)) {
        let Some((size, _)) = non_finite(&t.dtype) else {
            continue;
        };
        // The networks hold f32 parameters, and Burn's CPU backend stores a loaded tensor as the file's dtype
        // (an F16 or F64 tensor in an f32 network panics in the first forward pass): refuse them here.
        if t.dtype != "F32" {
            return Err(Error::Weights {
                path: path.to_path_buf(),
                reason: format!(
                    "tensor `{name}` is {}: these models load float32 weights; convert the file first \
                     (PyTorch: `{{k: v.float() for k, v in state_dict.items()}}`)",
                    t.dtype
                ),
            });
        }
        // A batch norm's running variance is ≥ 0; a negative one gives NaN features (the square root of it).
        let variance = name.ends_with("running_var") || name.ends_with("moving_variance");
        let read_error = |e: std::io::Error| Error::Weights {
            path: path.to_path_buf(),
            reason: format!("tensor `{name}`: {e}"),
        };
        file.seek(SeekFrom::Start(header.data_start + t.start))
            .map_err(read_error)?;
        let (mut left, mut index) = (t.end - t.start, 0);
        while left > 0 {
            // Whole elements per read: the buffer's length is a multiple of every element size.
            let n = left.min(buffer.len() as u64) as usize;
            file.read_exact(&mut buffer[..n]).map_err(read_error)?;
            if let Some((i, value)) = first_non_finite(&t.dtype, &buffer[..n]) {
                return Err(Error::NonFiniteWeight {
                    path: path.to_path_buf(),
                    tensor: name.clone(),
                    index: index + i,
                    value,
                });
            }
            if variance
                && let Some((i, v)) = buffer[..n]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .enumerate()
                    .find(|&(_, v)| v < 0.0)
            {
                return Err(Error::Weights {
                    path: path.to_path_buf(),
                    reason: format!(
                        "tensor `{name}` holds the variance {v} at element {}: a batch norm's running variance \
                         is never negative (the file is damaged)",
                        index + i
                    ),
                });
            }
            index += n / size;
            left -= n as u64;
        }
    }
    Ok(())
}
