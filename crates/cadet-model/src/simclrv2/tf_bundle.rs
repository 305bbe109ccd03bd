//! TensorFlow's checkpoint format (a "tensor bundle"), as far as SimCLRv2's released checkpoints need it:
//! `<prefix>.index` is a table (LevelDB's sorted-string-table layout: blocks of prefix-compressed keys, an index
//! block, a 48-byte footer) mapping each variable's name to a `BundleEntryProto` (dtype, shape, shard, offset,
//! size, checksum); `<prefix>.data-<shard>-of-<shards>` holds the raw little-endian tensors. Blocks written
//! compressed, sliced (partitioned) variables and big-endian bundles are refused; TensorFlow writes bundles
//! uncompressed.
//!
//! The files are untrusted (checkpoints are downloaded): every checksum TensorFlow records is verified as
//! TensorFlow itself does (each block's trailer, each tensor's CRC-32C), every size and offset is bounded by
//! [`Limits`] before anything is allocated, keys are decoded into one reused buffer with their length and total
//! bounded (a prefix-compressed key may grow by one byte per entry), and only regular files are opened.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use cadet_core::limits::{Limits, open_regular, read_capped};

use crate::{Error, Result};

/// The footer's magic number (LevelDB's table magic).
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// TensorFlow's `DT_FLOAT`.
const DT_FLOAT: u64 = 1;
/// The longest variable name read. TensorFlow's names are scope paths of some dozens of bytes; the bound keeps a
/// hostile index whose prefix-compressed keys grow entry after entry from costing more than linear work.
const MAX_KEY_BYTES: usize = 64 << 10;
/// What one decoded entry costs besides its key, charged against [`Limits::max_header_bytes`] with the keys.
const ENTRY_COST: usize = 64;
/// TensorFlow's (and LevelDB's) `crc32c::kMaskDelta`.
const MASK_DELTA: u32 = 0xa282_ead8;

/// TensorFlow's `crc32c::Mask`: stored checksums are rotated and offset, so that a checksum of data holding
/// checksums stays a good one.
pub(crate) fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// The inverse of [`mask`].
fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

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
    /// The masked CRC-32C of its bytes.
    crc32c: u32,
}

/// A checkpoint's variables, read from its index; values are read on demand.
pub(crate) struct Bundle {
    prefix: PathBuf,
    shards: u64,
    limits: Limits,
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
    Fixed32(u32),
    Fixed64,
}

/// The next `len` bytes of `buf`.
fn take<'a>(buf: &'a [u8], pos: &mut usize, len: usize) -> Option<&'a [u8]> {
    let bytes = buf.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    Some(bytes)
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
                Field::Bytes(take(msg, &mut pos, len)?)
            }
            1 => take(msg, &mut pos, 8).map(|_| Field::Fixed64)?,
            5 => Field::Fixed32(u32::from_le_bytes(take(msg, &mut pos, 4)?.try_into().ok()?)),
            _ => return None,
        };
        out.push((tag >> 3, value));
    }
    Some(out)
}

/// The block at `(offset, size)` of the table, after checking its trailer: the checksum TensorFlow recorded over
/// the block and its compression byte, and that compression byte saying "uncompressed".
fn block<'a>(path: &Path, file: &'a [u8], handle: (u64, u64), what: &str) -> Result<&'a [u8]> {
    let beyond = || bad(path, format!("{what} lies beyond the end of the file"));
    let offset = usize::try_from(handle.0).map_err(|_| beyond())?;
    let size = usize::try_from(handle.1).map_err(|_| beyond())?;
    // The block, then its trailer: a compression byte and a checksum.
    let end = offset
        .checked_add(size)
        .filter(|&e| e.checked_add(5).is_some_and(|t| t <= file.len()))
        .ok_or_else(beyond)?;
    let (contents, kind) = (&file[offset..end], file[end]);
    let stored = u32::from_le_bytes([file[end + 1], file[end + 2], file[end + 3], file[end + 4]]);
    let computed = mask(crc32c::crc32c_append(crc32c::crc32c(contents), &[kind]));
    if stored != computed {
        return Err(Error::Crc32cMismatch {
            path: path.to_path_buf(),
            what: format!("{what} ({size} bytes)"),
            stored: unmask(stored),
            computed: unmask(computed),
        });
    }
    match kind {
        0 => Ok(contents),
        1 => Err(bad(
            path,
            format!("{what}: snappy-compressed (not supported)"),
        )),
        t => Err(bad(path, format!("{what}: unknown block compression {t}"))),
    }
}

/// Calls `each(key, value)` for the entries of a table block in order. Keys are prefix-compressed (each shares
/// a prefix with the one before): they are rebuilt in one buffer, at most [`MAX_KEY_BYTES`] long, so that the
/// work is linear in the block's size.
fn block_entries(
    path: &Path,
    block: &[u8],
    what: &str,
    mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<()> {
    let corrupt = |why: &str| bad(path, format!("{what}: {why}"));
    let restarts = block
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]))
        .ok_or_else(|| corrupt("shorter than its restart count"))?;
    let data_end = usize::try_from(restarts)
        .ok()
        .and_then(|r| r.checked_mul(4))
        .and_then(|r| block.len().checked_sub(4 + r))
        .ok_or_else(|| corrupt("more restart points than bytes"))?;
    let (mut pos, mut key) = (0, Vec::new());
    while pos < data_end {
        let mut next = || {
            varint(block, &mut pos)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| corrupt("truncated entry"))
        };
        let (shared, unshared, len) = (next()?, next()?, next()?);
        if shared > key.len() {
            return Err(corrupt(
                "an entry shares more of the previous key than it has",
            ));
        }
        if shared
            .checked_add(unshared)
            .is_none_or(|n| n > MAX_KEY_BYTES)
        {
            return Err(corrupt(&format!(
                "a key longer than {MAX_KEY_BYTES} bytes (variable names are far shorter)"
            )));
        }
        let end = pos.checked_add(unshared).and_then(|e| e.checked_add(len));
        if end.is_none_or(|e| e > data_end) {
            return Err(corrupt("an entry runs past the block"));
        }
        key.truncate(shared);
        key.extend_from_slice(&block[pos..pos + unshared]);
        pos += unshared;
        each(&key, &block[pos..pos + len])?;
        pos += len;
    }
    Ok(())
}

fn handle(path: &Path, bytes: &[u8], pos: &mut usize) -> Result<(u64, u64)> {
    let offset = varint(bytes, pos);
    let size = varint(bytes, pos);
    offset
        .zip(size)
        .ok_or_else(|| bad(path, "corrupt block handle"))
}

impl Bundle {
    /// Reads the index of the checkpoint `prefix` (e.g. `r50_1x_sk1/model.ckpt-250228`), within `limits`: the
    /// index is at most [`Limits::max_header_bytes`] and so are its decoded keys and entries.
    pub(crate) fn open(prefix: &Path, limits: &Limits) -> Result<Self> {
        let path = index_path(prefix);
        let file =
            read_capped(&path, limits.max_header_bytes).map_err(|e| Error::reading(&path, e))?;
        Self::parse(prefix, &file, limits)
    }

    /// The bundle whose index (the file `<prefix>.index`) holds `file`.
    fn parse(prefix: &Path, file: &[u8], limits: &Limits) -> Result<Self> {
        let path = index_path(prefix);
        let footer = file
            .len()
            .checked_sub(48)
            .map(|at| &file[at..])
            .filter(|f| f[40..] == TABLE_MAGIC.to_le_bytes())
            .ok_or_else(|| bad(&path, "not a TensorFlow checkpoint index (no table footer)"))?;
        let mut pos = 0;
        let _metaindex = handle(&path, footer, &mut pos)?;
        let index = handle(&path, footer, &mut pos)?;
        let mut shards = None;
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        let mut budget = usize::try_from(limits.max_header_bytes).unwrap_or(usize::MAX);
        let what = format!("the index block at offset {}", index.0);
        let index_block = block(&path, file, index, &what)?;
        // Data blocks follow each other in the file: one listed twice (or overlapping another) is refused, so
        // that checksums and decoding cost at most one pass over the file.
        let mut next_block = 0u64;
        block_entries(&path, index_block, &what, |_, value| {
            let mut pos = 0;
            let data = handle(&path, value, &mut pos)?;
            let what = format!("the data block at offset {}", data.0);
            if data.0 < next_block {
                return Err(bad(
                    &path,
                    format!("{what} overlaps the block before it (listed twice, or out of order)"),
                ));
            }
            next_block = data.0.saturating_add(data.1).saturating_add(5);
            let bytes = block(&path, file, data, &what)?;
            block_entries(&path, bytes, &what, |key, value| {
                let key = std::str::from_utf8(key)
                    .map_err(|_| bad(&path, format!("{what}: a key is not UTF-8")))?;
                // The header has the empty key, which sorts first; the others are stored sorted: an entry out
                // of order (or repeated) is corrupt, and would otherwise silently replace another.
                let in_order = match (key.is_empty(), &shards, entries.last_key_value()) {
                    (true, None, None) => true,
                    (false, Some(_), None) => true,
                    (false, Some(_), Some((last, _))) => key > last.as_str(),
                    _ => false,
                };
                if !in_order {
                    return Err(bad(
                        &path,
                        format!(
                            "{what}: key `{key}` out of order, repeated, or before the bundle header"
                        ),
                    ));
                }
                budget = budget.checked_sub(key.len() + ENTRY_COST).ok_or_else(|| {
                    Error::LimitExceeded {
                        path: path.clone(),
                        what: "the decoded keys and entries of the index".into(),
                        limit: format!(
                            "{} bytes (Limits::max_header_bytes)",
                            limits.max_header_bytes
                        ),
                    }
                })?;
                let parsed = if key.is_empty() {
                    parse_header(value).map(|n| shards = Some(n))
                } else {
                    parse_entry(value).map(|e| {
                        entries.insert(key.to_string(), e);
                    })
                };
                parsed.map_err(|reason| bad(&path, format!("`{key}`: {reason}")))
            })
        })?;
        let shards = shards.ok_or_else(|| bad(&path, "no bundle header"))?;
        if let Some((key, e)) = entries.iter().find(|(_, e)| e.shard >= shards) {
            return Err(bad(
                &path,
                format!("`{key}` lies in shard {} of a bundle of {shards}", e.shard),
            ));
        }
        no_overlaps(&path, &entries)?;
        Ok(Self {
            prefix: prefix.to_path_buf(),
            shards,
            limits: *limits,
            entries,
        })
    }

    /// The files of the checkpoint: its index and every data shard.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let shards = (0..self.shards).map(|s| self.data_path(s));
        std::iter::once(index_path(&self.prefix))
            .chain(shards)
            .collect()
    }

    fn data_path(&self, shard: u64) -> PathBuf {
        PathBuf::from(format!(
            "{}.data-{shard:05}-of-{:05}",
            self.prefix.display(),
            self.shards
        ))
    }

    /// The values of the float variable `name`, after checking its size against its shape, its checksum
    /// against the one TensorFlow recorded, and that every value is finite.
    pub(crate) fn floats(&self, name: &str) -> Result<Vec<f32>> {
        let index = index_path(&self.prefix);
        let e = self.entries.get(name).ok_or_else(|| Error::MissingTensor {
            path: index.clone(),
            key: name.to_string(),
        })?;
        if e.dtype != DT_FLOAT {
            return Err(bad(
                &index,
                format!(
                    "`{name}` has TensorFlow dtype {} ({}); only float32 (dtype 1) is read",
                    e.dtype,
                    dtype_name(e.dtype)
                ),
            ));
        }
        let what = format!("float32 tensor `{name}`");
        let needed = self
            .limits
            .check_alloc(&what, &e.shape, 4)
            .map_err(|err| Error::limit(&index, err))?;
        if needed as u64 != e.size {
            return Err(bad(
                &index,
                format!(
                    "{what} of shape {:?} needs {needed} bytes, the entry says {}",
                    e.shape, e.size
                ),
            ));
        }
        let path = self.data_path(e.shard);
        let mut file = open_regular(&path).map_err(|err| Error::reading(&path, err))?;
        let len = file
            .metadata()
            .map_err(|err| Error::reading(&path, err))?
            .len();
        if e.offset.checked_add(e.size).is_none_or(|end| end > len) {
            return Err(bad(
                &path,
                format!(
                    "`{name}` ({} bytes at offset {}) lies beyond the end of the file ({len} bytes)",
                    e.size, e.offset
                ),
            ));
        }
        let mut bytes = vec![0u8; needed];
        file.seek(SeekFrom::Start(e.offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|err| bad(&path, format!("`{name}`: {err}")))?;
        let computed = mask(crc32c::crc32c(&bytes));
        if computed != e.crc32c {
            return Err(Error::Crc32cMismatch {
                path,
                what: format!("tensor `{name}` ({} bytes at offset {})", e.size, e.offset),
                stored: unmask(e.crc32c),
                computed: unmask(computed),
            });
        }
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFiniteWeight {
                path,
                tensor: name.to_string(),
                index,
                value: value.into(),
            });
        }
        Ok(values)
    }
}

/// Tensors are written one after another: two whose bytes overlap (an offset moved, its checksum recomputed
/// over the shifted bytes) would read parts of each other as weights, so the index is refused. Extents are
/// checked arithmetic; an empty tensor overlaps nothing, and one whose end overflows lies beyond any file (it is
/// refused, with its size and offset, when read: [`Bundle::floats`]).
fn no_overlaps(path: &Path, entries: &BTreeMap<String, Entry>) -> Result<()> {
    let mut extents: Vec<_> = entries
        .iter()
        .filter(|(_, e)| e.size > 0)
        .filter_map(|(key, e)| Some((e.shard, e.offset, e.offset.checked_add(e.size)?, key)))
        .collect();
    extents.sort_unstable();
    for pair in extents.windows(2) {
        let ((shard, start, end, key), (next_shard, next_start, _, next_key)) = (pair[0], pair[1]);
        if shard == next_shard && end > next_start {
            return Err(bad(
                path,
                format!(
                    "`{key}` (bytes {start}..{end} of shard {shard}) overlaps `{next_key}` (from byte {next_start})"
                ),
            ));
        }
    }
    Ok(())
}

fn index_path(prefix: &Path) -> PathBuf {
    PathBuf::from(format!("{}.index", prefix.display()))
}

/// TensorFlow's name of a dtype number, for messages.
fn dtype_name(dtype: u64) -> &'static str {
    match dtype {
        1 => "float32",
        2 => "float64",
        3 => "int32",
        4 => "uint8",
        7 => "string",
        9 => "int64",
        10 => "bool",
        14 => "bfloat16",
        19 => "float16",
        _ => "another type",
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
    // The data files are named with five-digit shard numbers; TensorFlow writes one shard per saving device.
    if shards == 0 || shards > 99_999 {
        return Err(format!("{shards} shards (1 to 99999 expected)"));
    }
    Ok(shards)
}

/// `BundleEntryProto`: dtype, shape, shard, offset, size, crc32c.
fn parse_entry(msg: &[u8]) -> Result<Entry, String> {
    let mut e = Entry {
        dtype: 0,
        shape: Vec::new(),
        shard: 0,
        offset: 0,
        size: 0,
        crc32c: 0,
    };
    for (field, value) in fields(msg).ok_or("corrupt entry")? {
        match (field, value) {
            (1, Field::Varint(v)) => e.dtype = v,
            (2, Field::Bytes(shape)) => e.shape = parse_shape(shape).ok_or("corrupt shape")?,
            (3, Field::Varint(v)) => e.shard = v,
            (4, Field::Varint(v)) => e.offset = v,
            (5, Field::Varint(v)) => e.size = v,
            (6, Field::Fixed32(v)) => e.crc32c = v,
            (7, _) => return Err("sliced (partitioned) variable (not supported)".into()),
            _ => {}
        }
    }
    Ok(e)
}

/// `TensorShapeProto`: the sizes of its `dim`s (an unknown size, -1, is refused).
fn parse_shape(msg: &[u8]) -> Option<Vec<usize>> {
    let mut dims = Vec::new();
    for (field, value) in fields(msg)? {
        if let (2, Field::Bytes(dim)) = (field, value) {
            let mut size = 0;
            for (f, v) in fields(dim)? {
                if let (1, Field::Varint(s)) = (f, v) {
                    size = usize::try_from(i64::try_from(s).ok()?).ok()?;
                }
            }
            dims.push(size);
        }
    }
    Some(dims)
}

#[cfg(test)]
mod tests;
