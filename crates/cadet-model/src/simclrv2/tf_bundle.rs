//! TensorFlow's checkpoint format (a "tensor bundle"), as far as SimCLRv2's released checkpoints need it:
//! `<prefix>.index` is a table (LevelDB's sorted-string-table layout: blocks of prefix-compressed keys, an index
//! block, a 48-byte footer) mapping each variable's name to a `BundleEntryProto` (dtype, shape, shard, offset,
//! size); `<prefix>.data-<shard>-of-<shards>` holds the raw little-endian tensors. Blocks written compressed,
//! sliced (partitioned) variables and big-endian bundles are refused; TensorFlow writes bundles uncompressed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The footer's magic number (LevelDB's table magic).
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// TensorFlow's `DT_FLOAT`.
const DT_FLOAT: u64 = 1;

/// One variable of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// TensorFlow's dtype number.
    pub(crate) dtype: u64,
    /// Its shape.
    pub(crate) shape: Vec<usize>,
    shard: u64,
    offset: u64,
    size: u64,
}

/// A checkpoint's variables, read from its index; values are read on demand.
pub(crate) struct Bundle {
    prefix: PathBuf,
    shards: u64,
    /// Variable name → entry.
    pub(crate) entries: BTreeMap<String, Entry>,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Weights {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// A protobuf field's value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The `(field number, value)` pairs of a protobuf message.
fn fields(msg: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < msg.len() {
        let tag = varint(msg, &mut pos)?;
        let value = match tag & 7 {
            0 => Field::Varint(varint(msg, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(msg, &mut pos)?).ok()?;
                let bytes = msg.get(pos..pos.checked_add(len)?)?;
                pos += len;
                Field::Bytes(bytes)
            }
            1 => {
                pos += 8;
                Field::Fixed
            }
            5 => {
                pos += 4;
                Field::Fixed
            }
            _ => return None,
        };
        out.push((tag >> 3, value));
    }
    (pos == msg.len()).then_some(out)
}

/// The block at `(offset, size)` of the table, after checking its trailer says "uncompressed".
fn block<'a>(path: &Path, file: &'a [u8], handle: (u64, u64)) -> Result<&'a [u8]> {
    let (offset, size) = (handle.0 as usize, handle.1 as usize);
    // The block, then its trailer: a compression byte and a checksum.
    let end = offset
        .checked_add(size)
        .filter(|&e| e.checked_add(5).is_some_and(|t| t <= file.len()));
    let Some(end) = end else {
        return Err(bad(path, "index block beyond the end of the file"));
    };
    match file[end] {
        0 => Ok(&file[offset..end]),
        1 => Err(bad(path, "snappy-compressed index block (not supported)")),
        t => Err(bad(path, format!("unknown block compression {t}"))),
    }
}

/// The `(key, value)` entries of a table block.
fn block_entries<'a>(path: &Path, block: &'a [u8]) -> Result<Vec<(Vec<u8>, &'a [u8])>> {
    let corrupt = || bad(path, "corrupt index block");
    let restarts = block
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes(block[at..].try_into().expect("4 bytes")) as usize)
        .ok_or_else(corrupt)?;
    let data_end = restarts
        .checked_mul(4)
        .and_then(|r| block.len().checked_sub(4 + r))
        .ok_or_else(corrupt)?;
    let (mut pos, mut key, mut out) = (0, Vec::new(), Vec::new());
    while pos < data_end {
        let mut next = || {
            varint(block, &mut pos)
                .map(|v| v as usize)
                .ok_or_else(corrupt)
        };
        let (shared, unshared, len) = (next()?, next()?, next()?);
        let end = pos.checked_add(unshared).and_then(|e| e.checked_add(len));
        if shared > key.len() || end.is_none_or(|e| e > data_end) {
            return Err(corrupt());
        }
        key.truncate(shared);
        key.extend_from_slice(&block[pos..pos + unshared]);
        pos += unshared;
        out.push((key.clone(), &block[pos..pos + len]));
        pos += len;
    }
    Ok(out)
}

fn handle(path: &Path, bytes: &[u8], pos: &mut usize) -> Result<(u64, u64)> {
    let offset = varint(bytes, pos);
    let size = varint(bytes, pos);
    offset
        .zip(size)
        .ok_or_else(|| bad(path, "corrupt block handle"))
}

impl Bundle {
    /// Reads the index of the checkpoint `prefix` (e.g. `r50_1x_sk1/model.ckpt-250228`).
    pub(crate) fn open(prefix: &Path) -> Result<Self> {
        let path = PathBuf::from(format!("{}.index", prefix.display()));
        let file = std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if file.len() < 48
            || u64::from_le_bytes(file[file.len() - 8..].try_into().expect("8 bytes"))
                != TABLE_MAGIC
        {
            return Err(bad(&path, "not a TensorFlow checkpoint index"));
        }
        let footer = &file[file.len() - 48..];
        let mut pos = 0;
        let _metaindex = handle(&path, footer, &mut pos)?;
        let index = handle(&path, footer, &mut pos)?;
        let mut shards = None;
        let mut entries = BTreeMap::new();
        for (_, value) in block_entries(&path, block(&path, &file, index)?)? {
            let mut pos = 0;
            let data = handle(&path, value, &mut pos)?;
            for (key, value) in block_entries(&path, block(&path, &file, data)?)? {
                let key = String::from_utf8(key).map_err(|_| bad(&path, "a key is not UTF-8"))?;
                let parsed = if key.is_empty() {
                    parse_header(value).map(|n| shards = Some(n))
                } else {
                    parse_entry(value).map(|e| {
                        entries.insert(key.clone(), e);
                    })
                };
                parsed.map_err(|reason| bad(&path, format!("`{key}`: {reason}")))?;
            }
        }
        let shards = shards.ok_or_else(|| bad(&path, "no bundle header"))?;
        Ok(Self {
            prefix: prefix.to_path_buf(),
            shards,
            entries,
        })
    }

    /// The values of the float variable `name`.
    pub(crate) fn floats(&self, name: &str) -> Result<Vec<f32>> {
        let e = &self.entries[name];
        let path = PathBuf::from(format!(
            "{}.data-{:05}-of-{:05}",
            self.prefix.display(),
            e.shard,
            self.shards
        ));
        let bytes = e
            .shape
            .iter()
            .try_fold(4u64, |n, &d| n.checked_mul(d as u64));
        if e.dtype != DT_FLOAT || bytes != Some(e.size) {
            return Err(bad(
                &path,
                format!(
                    "`{name}`: dtype {} and {} bytes, expected float32",
                    e.dtype, e.size
                ),
            ));
        }
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let len = file.metadata().map_or(0, |m| m.len());
        if e.offset.checked_add(e.size).is_none_or(|end| end > len) {
            return Err(bad(
                &path,
                format!("`{name}` lies beyond the end of the file"),
            ));
        }
        let mut bytes = vec![0u8; e.size as usize];
        file.seek(SeekFrom::Start(e.offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|err| bad(&path, format!("`{name}`: {err}")))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect())
    }
}

/// `BundleHeaderProto`: the number of shards (little-endian bundles only).
fn parse_header(msg: &[u8]) -> Result<u64, String> {
    let mut shards = 1;
    for (field, value) in fields(msg).ok_or("corrupt bundle header")? {
        match (field, value) {
            (1, Field::Varint(n)) => shards = n,
            (2, Field::Varint(0)) => {}
            (2, Field::Varint(_)) => return Err("big-endian bundle (not supported)".into()),
            _ => {}
        }
    }
    Ok(shards)
}

/// `BundleEntryProto`: dtype, shape, shard, offset, size.
fn parse_entry(msg: &[u8]) -> Result<Entry, String> {
    let mut e = Entry {
        dtype: 0,
        shape: Vec::new(),
        shard: 0,
        offset: 0,
        size: 0,
    };
    for (field, value) in fields(msg).ok_or("corrupt entry")? {
        match (field, value) {
            (1, Field::Varint(v)) => e.dtype = v,
            (2, Field::Bytes(shape)) => e.shape = parse_shape(shape).ok_or("corrupt shape")?,
            (3, Field::Varint(v)) => e.shard = v,
            (4, Field::Varint(v)) => e.offset = v,
            (5, Field::Varint(v)) => e.size = v,
            (7, _) => return Err("sliced (partitioned) variable (not supported)".into()),
            _ => {}
        }
    }
    Ok(e)
}

/// `TensorShapeProto`: the sizes of its `dim`s.
fn parse_shape(msg: &[u8]) -> Option<Vec<usize>> {
    let mut dims = Vec::new();
    for (field, value) in fields(msg)? {
        if let (2, Field::Bytes(dim)) = (field, value) {
            let mut size = 0;
            for (f, v) in fields(dim)? {
                if let (1, Field::Varint(s)) = (f, v) {
                    size = usize::try_from(s).ok()?;
                }
            }
            dims.push(size);
        }
    }
    Some(dims)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many truncations (every 97th length) and single-byte corruptions of a real index give an error or a bundle, never a
    /// panic; reading values from what survives does not panic either.
    #[test]
    fn damaged_indexes_are_errors_not_panics() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/simclrv2_tf/r50_1x_sk1_w2/model.ckpt-1");
        let good = std::fs::read(format!("{}.index", fixture.display())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = std::fs::read(format!("{}.data-00000-of-00001", fixture.display())).unwrap();
        std::fs::write(dir.path().join("m.data-00000-of-00001"), data).unwrap();
        let prefix = dir.path().join("m");
        let try_index = |bytes: &[u8]| {
            std::fs::write(dir.path().join("m.index"), bytes).unwrap();
            if let Ok(bundle) = Bundle::open(&prefix) {
                for name in bundle.entries.keys() {
                    let _ = bundle.floats(name);
                }
            }
        };
        let bundle = {
            try_index(&good);
            Bundle::open(&prefix).unwrap()
        };
        assert_eq!(bundle.entries.len(), 390);
        assert_eq!(
            bundle.entries["base_model/conv2d/kernel"].shape,
            vec![3, 3, 3, 1]
        );
        for len in (0..good.len()).step_by(97) {
            try_index(&good[..len]);
        }
        for at in (0..good.len()).step_by(23) {
            for flip in [0x01, 0xff] {
                let mut bad = good.clone();
                bad[at] ^= flip;
                try_index(&bad);
            }
        }
        assert!(Bundle::open(&dir.path().join("nothing")).is_err());
    }
}
