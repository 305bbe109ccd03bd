//! The reader against TensorFlow's own fixture and hostile indexes built here byte by byte.

use super::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/simclrv2_tf/r50_1x_sk1_w2/model.ckpt-1")
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a block and its trailer (compression 0, masked CRC-32C as TensorFlow writes it) to `file`;
/// returns its handle.
fn put_block(file: &mut Vec<u8>, contents: &[u8]) -> (u64, u64) {
    let handle = (file.len() as u64, contents.len() as u64);
    file.extend_from_slice(contents);
    file.push(0);
    let crc = crc32c::crc32c_append(crc32c::crc32c(contents), &[0]);
    file.extend(mask(crc).to_le_bytes());
    handle
}

/// A block of `(shared, unshared key bytes, value)` entries, one restart point.
fn block_of(entries: impl IntoIterator<Item = (usize, Vec<u8>, Vec<u8>)>) -> Vec<u8> {
    let mut b = Vec::new();
    for (shared, unshared, value) in entries {
        put_varint(&mut b, shared as u64);
        put_varint(&mut b, unshared.len() as u64);
        put_varint(&mut b, value.len() as u64);
        b.extend(unshared);
        b.extend(value);
    }
    b.extend(0u32.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    b
}

/// A whole index: one data block, the index block pointing at it, an empty metaindex, the footer.
fn table(data_block: &[u8]) -> Vec<u8> {
    table_listing(data_block, 1)
}

/// [`table`] whose index block lists the data block `times` times.
fn table_listing(data_block: &[u8], times: usize) -> Vec<u8> {
    let mut file = Vec::new();
    let data = put_block(&mut file, data_block);
    let meta = put_block(&mut file, &block_of([]));
    let mut handle = Vec::new();
    put_varint(&mut handle, data.0);
    put_varint(&mut handle, data.1);
    let listed = (0..times).map(|i| (0, vec![0xff, i as u8], handle.clone()));
    let index = put_block(&mut file, &block_of(listed));
    let mut footer = Vec::new();
    for v in [meta.0, meta.1, index.0, index.1] {
        put_varint(&mut footer, v);
    }
    footer.resize(40, 0);
    footer.extend(TABLE_MAGIC.to_le_bytes());
    file.extend(footer);
    file
}

/// A `BundleEntryProto`.
fn entry_proto(e: &Entry) -> Vec<u8> {
    let mut shape = Vec::new();
    for &d in &e.shape {
        let mut dim = vec![0x08];
        put_varint(&mut dim, d as u64);
        shape.push(0x12);
        put_varint(&mut shape, dim.len() as u64);
        shape.extend(dim);
    }
    let mut m = vec![0x08];
    put_varint(&mut m, e.dtype);
    m.push(0x12);
    put_varint(&mut m, shape.len() as u64);
    m.extend(shape);
    for (tag, v) in [(0x18, e.shard), (0x20, e.offset), (0x28, e.size)] {
        m.push(tag);
        put_varint(&mut m, v);
    }
    m.push(0x35);
    m.extend(e.crc32c.to_le_bytes());
    m
}

/// The index of a one-shard bundle holding `entries` (full keys, sorted).
fn index_of(entries: &BTreeMap<String, Entry>) -> Vec<u8> {
    let header = (0, Vec::new(), vec![0x08, 0x01]);
    let rest = entries
        .iter()
        .map(|(k, e)| (0, k.as_bytes().to_vec(), entry_proto(e)));
    table(&block_of(std::iter::once(header).chain(rest)))
}

/// A copy of the fixture in a temporary folder (prefix `m`), its index replaced by `index`.
fn bundle_with(index: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read(format!("{}.data-00000-of-00001", fixture().display())).unwrap();
    std::fs::write(dir.path().join("m.data-00000-of-00001"), data).unwrap();
    std::fs::write(dir.path().join("m.index"), index).unwrap();
    let prefix = dir.path().join("m");
    (dir, prefix)
}

fn good() -> Bundle {
    Bundle::open(&fixture(), &Limits::default()).unwrap()
}

/// Many truncations (every 97th length) and single-byte corruptions of a real index give an error or a bundle, never a
/// panic; reading values from what survives does not panic either.
#[test]
fn damaged_indexes_are_errors_not_panics() {
    let good = std::fs::read(format!("{}.index", fixture().display())).unwrap();
    let (dir, prefix) = bundle_with(&good);
    let try_index = |bytes: &[u8]| {
        std::fs::write(dir.path().join("m.index"), bytes).unwrap();
        if let Ok(bundle) = Bundle::open(&prefix, &Limits::default()) {
            for name in bundle.entries.keys() {
                let _ = bundle.floats(name);
            }
        }
    };
    let bundle = {
        try_index(&good);
        Bundle::open(&prefix, &Limits::default()).unwrap()
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
    assert!(Bundle::open(&dir.path().join("nothing"), &Limits::default()).is_err());
}

/// Every single flipped byte of the index is refused (TensorFlow's block checksums) or changes nothing read
/// (the footer's padding, the unused metaindex): never other entries, hence never other weights.
#[test]
fn no_flipped_index_byte_gives_other_entries() {
    let good_bytes = std::fs::read(format!("{}.index", fixture().display())).unwrap();
    let good = good();
    for at in 0..good_bytes.len() {
        let mut bytes = good_bytes.clone();
        bytes[at] ^= 0x01;
        if let Ok(bundle) = Bundle::parse(&fixture(), &bytes, &Limits::default()) {
            assert!(
                bundle.entries == good.entries,
                "byte {at} flipped: other entries read"
            );
        }
    }
}

/// The writer above is TensorFlow's format: the fixture's entries, written back, read back the same, and
/// their values pass their checksums.
#[test]
fn the_test_writer_writes_what_tensorflow_writes() {
    let good = good();
    let (_dir, prefix) = bundle_with(&index_of(&good.entries));
    let bundle = Bundle::open(&prefix, &Limits::default()).unwrap();
    assert!(bundle.entries == good.entries);
    for (name, e) in &good.entries {
        if e.dtype == DT_FLOAT {
            assert_eq!(
                bundle.floats(name).unwrap(),
                good.floats(name).unwrap(),
                "{name}"
            );
        }
    }
}

/// A flipped data byte, a wrong recorded checksum and an offset shifted by 4 are refused with both checksums,
/// naming the data file and the tensor, as TensorFlow refuses them (as data loss).
#[test]
fn tensor_checksums_are_verified() {
    let good = good();
    let key = "base_model/conv2d/kernel";
    let e = good.entries[key].clone();
    let check = |entries: &BTreeMap<String, Entry>, flip_data: Option<u64>| {
        let (dir, prefix) = bundle_with(&index_of(entries));
        if let Some(at) = flip_data {
            let path = dir.path().join("m.data-00000-of-00001");
            let mut data = std::fs::read(&path).unwrap();
            data[at as usize] ^= 0x40;
            std::fs::write(&path, data).unwrap();
        }
        let bundle = Bundle::open(&prefix, &Limits::default()).unwrap();
        let err = bundle.floats(key).unwrap_err();
        let text = err.to_string();
        let Error::Crc32cMismatch {
            stored, computed, ..
        } = err
        else {
            panic!("{text}")
        };
        assert_ne!(stored, computed);
        for part in [
            "m.data-00000-of-00001".to_string(),
            format!("`{key}`"),
            format!("{stored:#010x}"),
            format!("{computed:#010x}"),
        ] {
            assert!(text.contains(&part), "{part} not in: {text}");
        }
    };
    check(&good.entries, Some(e.offset + 5));
    let mut wrong_crc = good.entries.clone();
    wrong_crc.get_mut(key).unwrap().crc32c ^= 1;
    check(&wrong_crc, None);
    // Shifted by 4 bytes with its old checksum: refused at open, as it now overlaps the next tensor
    // (`overlapping_tensors_are_refused`); shifted back by 4 it overlaps the one before, or has the wrong sum.
    let mut shifted = good.entries.clone();
    shifted.get_mut(key).unwrap().offset += 4;
    let (_dir, prefix) = bundle_with(&index_of(&shifted));
    let err = Bundle::open(&prefix, &Limits::default())
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("overlaps")));
}

/// A block whose recorded checksum is wrong is refused, naming the file and both checksums.
#[test]
fn block_checksums_are_verified() {
    let mut bytes = index_of(&good().entries);
    // The first block's trailer: its checksum is the 4 bytes after the block and its compression byte.
    let first = block_of(
        std::iter::once((0, Vec::new(), vec![0x08, 0x01])).chain(
            good()
                .entries
                .iter()
                .map(|(k, e)| (0, k.as_bytes().to_vec(), entry_proto(e))),
        ),
    );
    bytes[first.len() + 1] ^= 0x01;
    let (_dir, prefix) = bundle_with(&bytes);
    let err = Bundle::open(&prefix, &Limits::default()).err().unwrap();
    let text = err.to_string();
    assert!(matches!(err, Error::Crc32cMismatch { .. }), "{text}");
    assert!(
        text.contains("m.index") && text.contains("data block"),
        "{text}"
    );
}

/// Keys growing by one byte per entry (the old reader cloned each: quadratic, over 8 GB for a 1 MB index)
/// are refused quickly, when their total passes `max_header_bytes`; one key over the length bound is refused.
#[test]
fn keys_growing_entry_by_entry_are_refused_in_linear_time() {
    let index = |entries: Vec<(usize, Vec<u8>, Vec<u8>)>| {
        let header = (0, Vec::new(), vec![0x08, 0x01]);
        table(&block_of(std::iter::once(header).chain(entries)))
    };
    let growing = index((0..200_000).map(|i| (i, vec![b'a'], Vec::new())).collect());
    let started = std::time::Instant::now();
    let err = Bundle::parse(&fixture(), &growing, &Limits::default())
        .err()
        .unwrap();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    let long = index(vec![(0, vec![b'a'; 70_000], Vec::new())]);
    let err = Bundle::parse(&fixture(), &long, &Limits::default())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("a key longer than 65536 bytes"),
        "{err}"
    );
}

/// A size that disagrees with the shape says which is which; shapes over the allocation bound, offsets past
/// the data file and shards the bundle lacks are refused before anything is read.
#[test]
fn sizes_offsets_and_shards_are_checked() {
    let good = good();
    let key = "base_model/conv2d/kernel";
    let read = |edit: &dyn Fn(&mut Entry)| {
        let mut entries = good.entries.clone();
        edit(entries.get_mut(key).unwrap());
        let (_dir, prefix) = bundle_with(&index_of(&entries));
        Bundle::open(&prefix, &Limits::default()).and_then(|b| b.floats(key))
    };
    // (4 bytes fewer: 4 more would overlap the next tensor, refused at open.)
    let err = read(&|e| e.size -= 4).unwrap_err().to_string();
    assert!(
        err.contains("float32 tensor `base_model/conv2d/kernel` of shape [3, 3, 3, 1] needs 108 bytes, the entry says 104"),
        "{err}"
    );
    let err = read(&|e| e.dtype = 2).unwrap_err().to_string();
    assert!(err.contains("dtype 2 (float64); only float32"), "{err}");
    let err = read(&|e| {
        e.shape = vec![1 << 40, 1 << 40];
        e.size = u64::MAX;
    })
    .unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    let err = read(&|e| e.offset = u64::MAX - 50).unwrap_err().to_string();
    assert!(err.contains("beyond the end of the file"), "{err}");
    let err = read(&|e| e.shard = 3).unwrap_err().to_string();
    assert!(err.contains("lies in shard 3 of a bundle of 1"), "{err}");
}

/// A non-finite value is refused even when its checksum is right (a checkpoint saved after divergence).
#[test]
fn non_finite_values_are_refused() {
    let good = good();
    let key = "base_model/conv2d/kernel";
    let e = good.entries[key].clone();
    let (dir, prefix) = bundle_with(&[]);
    let path = dir.path().join("m.data-00000-of-00001");
    let mut data = std::fs::read(&path).unwrap();
    let at = e.offset as usize + 8;
    data[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&path, &data).unwrap();
    let mut entries = good.entries.clone();
    let bytes = &data[e.offset as usize..(e.offset + e.size) as usize];
    entries.get_mut(key).unwrap().crc32c = mask(crc32c::crc32c(bytes));
    std::fs::write(dir.path().join("m.index"), index_of(&entries)).unwrap();
    let err = Bundle::open(&prefix, &Limits::default())
        .unwrap()
        .floats(key)
        .unwrap_err();
    assert!(
        matches!(&err, Error::NonFiniteWeight { tensor, index: 2, .. } if tensor == key),
        "{err}"
    );
}

/// Special files as the index are refused at once: `/dev/zero` would be read until memory runs out, a FIFO
/// would block forever.
#[cfg(target_os = "linux")]
#[test]
fn special_files_are_refused() {
    let (dir, prefix) = bundle_with(&[]);
    let index = dir.path().join("m.index");
    std::fs::remove_file(&index).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &index).unwrap();
    let err = Bundle::open(&prefix, &Limits::default()).err().unwrap();
    assert!(err.to_string().contains("a device"), "{err}");
    std::fs::remove_file(&index).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&index).status();
    if matches!(made, Ok(s) if s.success()) {
        let err = Bundle::open(&prefix, &Limits::default()).err().unwrap();
        assert!(err.to_string().contains("a FIFO"), "{err}");
    }
}

/// A data block listed twice by the index block is refused (each listing would cost another checksum pass over
/// it: quadratic work for an index of many listings of one large block).
#[test]
fn a_data_block_listed_twice_is_refused() {
    let header = (0, Vec::new(), vec![0x08, 0x01]);
    let twice = table_listing(&block_of([header]), 2);
    let err = Bundle::parse(&fixture(), &twice, &Limits::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("listed twice"), "{err}");
}

/// An entry moved onto its neighbour's bytes, its checksum recomputed over what it now points at, passes every
/// checksum: the overlap itself is refused (it converted with exit 0 and wrong weights).
#[test]
fn overlapping_tensors_are_refused() {
    let good = good();
    let data = std::fs::read(format!("{}.data-00000-of-00001", fixture().display())).unwrap();
    // The first tensor in the file that has another right after it.
    let mut by_offset: Vec<(&String, &Entry)> =
        good.entries.iter().filter(|(_, e)| e.size > 0).collect();
    by_offset.sort_by_key(|(_, e)| e.offset);
    let (key, e) = by_offset[0];
    let mut entries = good.entries.clone();
    let moved = entries.get_mut(key.as_str()).unwrap();
    moved.offset += 4;
    let bytes = &data[moved.offset as usize..(moved.offset + moved.size) as usize];
    moved.crc32c = mask(crc32c::crc32c(bytes));
    assert!(
        e.offset + e.size + 4 > by_offset[1].1.offset,
        "the shift must reach the next tensor"
    );
    let (_dir, prefix) = bundle_with(&index_of(&entries));
    let err = Bundle::open(&prefix, &Limits::default())
        .err()
        .map(|e| e.to_string());
    let err = err.expect("an index whose tensors overlap must be refused");
    assert!(
        err.contains(&format!("`{key}`")) && err.contains("overlaps"),
        "{err}"
    );
    // The clean index still opens, and every tensor reads.
    let (_dir, prefix) = bundle_with(&index_of(&good.entries));
    let bundle = Bundle::open(&prefix, &Limits::default()).unwrap();
    for (key, e) in &bundle.entries {
        if e.dtype == 1 {
            bundle.floats(key).unwrap();
        }
    }
}
