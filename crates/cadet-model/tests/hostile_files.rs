//! Hostile model files (issue 25): damaged TensorFlow checkpoints and safetensors files are refused with errors
//! naming the file and the tensor, never converted or loaded into wrong weights; an output path that is an
//! input is refused. The hostile files are made here from the fixtures, byte by byte.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use cadet_model::{CifarResNetConfig, ResNetConfig, SimClrV2Config, load_simclrv2};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A copy of the TensorFlow fixture in `dir` (`r50_1x_sk1_w2/model.ckpt-1.*`); returns its prefix.
fn tf_copy(dir: &Path) -> PathBuf {
    let folder = dir.join("r50_1x_sk1_w2");
    std::fs::create_dir_all(&folder).unwrap();
    for ext in ["index", "data-00000-of-00001"] {
        let name = format!("model.ckpt-1.{ext}");
        std::fs::copy(
            fixtures().join("simclrv2_tf/r50_1x_sk1_w2").join(&name),
            folder.join(&name),
        )
        .unwrap();
    }
    folder.join("model.ckpt-1")
}

fn tf_config() -> SimClrV2Config {
    SimClrV2Config::from_name("r50_1x_sk1")
        .unwrap()
        .with_base_width(2)
}

/// `--out` naming the checkpoint's own index (through another spelling of the path, or a hard link) is refused
/// and the index is left as it was (it used to be overwritten: data loss).
#[test]
fn a_conversion_never_overwrites_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = tf_copy(dir.path());
    let folder = prefix.parent().unwrap();
    let index = folder.join("model.ckpt-1.index");
    let data = folder.join("model.ckpt-1.data-00000-of-00001");
    let before = std::fs::read(&index).unwrap();
    let linked = dir.path().join("linked.safetensors");
    std::fs::hard_link(&data, &linked).unwrap();
    for out in [index.clone(), folder.join("./model.ckpt-1.index"), linked] {
        let err = tf_config()
            .convert_tf_checkpoint(&prefix, false, &out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("input"), "{}: {err}", out.display());
    }
    assert_eq!(std::fs::read(&index).unwrap(), before);
    let out = dir.path().join("fine.safetensors");
    tf_config()
        .convert_tf_checkpoint(&prefix, false, &out)
        .unwrap();
}

/// A flipped byte in the data file is caught by TensorFlow's own checksum: an error naming the data file, the
/// variable and both checksums, where the conversion used to succeed with wrong weights.
#[test]
fn a_flipped_data_byte_is_refused_by_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = tf_copy(dir.path());
    let data = prefix.with_file_name("model.ckpt-1.data-00000-of-00001");
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&data, bytes).unwrap();
    let out = dir.path().join("out.safetensors");
    let err = tf_config()
        .convert_tf_checkpoint(&prefix, false, &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data-00000-of-00001") && err.contains("CRC-32C") && err.contains("tensor `"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A copy of the safetensors file `src` in `dir` after `edit` changed its header and data.
fn edited(
    src: &Path,
    dir: &Path,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>, &mut Vec<u8>),
) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let mut data = bytes[8 + len..].to_vec();
    edit(&mut header, &mut data);
    let mut text = serde_json::to_vec(&header).unwrap();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(data);
    let path = dir.join(src.file_name().unwrap());
    std::fs::write(&path, out).unwrap();
    path
}

/// `src` with `value` written over the third element of tensor `key` (F32).
fn poisoned(src: &Path, dir: &Path, key: &str, value: f32) -> PathBuf {
    edited(src, dir, |header, data| {
        let start = header[key]["data_offsets"][0].as_u64().unwrap() as usize + 8;
        data[start..start + 4].copy_from_slice(&value.to_le_bytes());
    })
}

fn assert_names(err: String, parts: &[&str]) {
    for part in parts {
        assert!(err.contains(part), "`{part}` not in: {err}");
    }
}

/// NaN or infinite weights are refused by every safetensors loader, naming the file and the tensor (they used to
/// load: all-NaN features, exit 0).
#[test]
fn non_finite_weights_are_refused_by_every_loader() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();

    let v2 = fixtures().join("simclrv2_r50_sk1_base2.safetensors");
    let key = "net.1.blocks.0.net.0.weight";
    let bad = poisoned(&v2, dir.path(), key, f32::NAN);
    let err = load_simclrv2(&bad, &device).err().unwrap().to_string();
    assert_names(err, &["simclrv2_r50_sk1_base2.safetensors", key, "NaN"]);
    let config = SimClrV2Config::from_file(&v2).unwrap();
    let err = config.load(&bad, "", &device).err().unwrap().to_string();
    assert_names(err, &[key, "NaN"]);
    let head = "head.layers.0.weight";
    let bad = poisoned(&v2, dir.path(), head, f32::INFINITY);
    let err = config
        .load_simclr(&bad, "", &device)
        .err()
        .unwrap()
        .to_string();
    assert_names(err, &[head, "inf"]);

    let tv = fixtures().join("torchvision_resnet18.safetensors");
    let key = "layer2.0.conv1.weight";
    let bad = poisoned(&tv, dir.path(), key, f32::NEG_INFINITY);
    let net = ResNetConfig::new(18)
        .with_base_width(4)
        .with_num_classes(Some(5))
        .init(&device)
        .unwrap();
    let err = net.load_torchvision(&bad, "").err().unwrap().to_string();
    assert_names(err, &["torchvision_resnet18.safetensors", key, "-inf"]);

    let cifar = dir.path().join("resnet20.safetensors");
    let net = CifarResNetConfig::new(20).init(&device).unwrap();
    let mut store = SafetensorsStore::from_file(&cifar).with_to_adapter(BurnToPyTorchAdapter);
    net.save_into(&mut store).unwrap();
    let sub = dir.path().join("poisoned");
    std::fs::create_dir(&sub).unwrap();
    let key = "linear.weight";
    let bad = poisoned(&cifar, &sub, key, f32::NAN);
    let err = CifarResNetConfig::new(20)
        .init(&device)
        .unwrap()
        .load_safetensors(&bad)
        .err()
        .unwrap()
        .to_string();
    assert_names(err, &["resnet20.safetensors", key, "NaN"]);
}

/// Byte ranges that disagree with dtype × shape, and shapes whose size overflows or exceeds the allocation
/// bound, are refused with errors naming the tensor (Burn's reader said only "invalid info").
#[test]
fn safetensors_byte_ranges_must_match_dtype_and_shape() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let tv = fixtures().join("torchvision_resnet18.safetensors");
    let net = || {
        ResNetConfig::new(18)
            .with_base_width(4)
            .with_num_classes(Some(5))
            .init(&device)
            .unwrap()
    };
    let key = "bn1.weight";
    let half = edited(&tv, dir.path(), |h, _| h[key]["dtype"] = "F16".into());
    let err = net().load_torchvision(&half, "").err().unwrap().to_string();
    assert_names(err, &[key, "F16 of shape [4] needs 8 bytes"]);
    let huge = edited(&tv, dir.path(), |h, _| {
        let mut t = h[key].clone();
        t["shape"] = serde_json::json!([1u64 << 40, 1u64 << 40, 1u64 << 40]);
        h.insert("extra".into(), t);
    });
    let err = net().load_torchvision(&huge, "").err().unwrap().to_string();
    assert_names(err, &["extra", "Limits::max_alloc_bytes"]);
    // A file cut short: the tensors' ranges run past its end.
    let cut = edited(&tv, dir.path(), |_, data| data.truncate(data.len() - 4));
    let err = net().load_torchvision(&cut, "").err().unwrap().to_string();
    assert_names(err, &["torchvision_resnet18.safetensors", "data section"]);
}

/// Well-formed F16 and F64 tensors (the byte ranges fit), which made the first forward pass panic in burn-flex
/// ("dtype mismatch (expected F16, got F32)"), and a negative running variance, which gave NaN features blamed on
/// the model overflowing, are refused at load naming the tensor (second hostile pass).
#[test]
fn half_and_double_weights_and_negative_variances_are_refused_at_load() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let tv = fixtures().join("torchvision_resnet18.safetensors");
    let net = || {
        ResNetConfig::new(18)
            .with_base_width(4)
            .with_num_classes(Some(5))
            .init(&device)
            .unwrap()
    };
    let key = "bn1.weight"; // F32 of shape [4]: 16 bytes, as many as F16 [8] or F64 [2]
    for (dtype, shape) in [("F16", 8), ("F64", 2)] {
        let other = edited(&tv, dir.path(), |h, _| {
            h[key]["dtype"] = dtype.into();
            h[key]["shape"] = serde_json::json!([shape]);
        });
        let err = net()
            .load_torchvision(&other, "")
            .err()
            .unwrap()
            .to_string();
        assert_names(err, &[key, &format!("is {dtype}"), "float32"]);
    }
    let v2 = fixtures().join("simclrv2_r50_sk1_base2.safetensors");
    let header_key = |src: &Path, suffix: &str| {
        let bytes = std::fs::read(src).unwrap();
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..8 + len]).unwrap();
        header.keys().find(|k| k.ends_with(suffix)).unwrap().clone()
    };
    let var = header_key(&v2, "running_var");
    let bad = poisoned(&v2, dir.path(), &var, -0.5);
    let err = load_simclrv2(&bad, &device).err().unwrap().to_string();
    assert_names(err, &[&var, "variance -0.5"]);
    let var = "bn1.running_var";
    let bad = poisoned(&tv, dir.path(), var, -0.5);
    let err = net().load_torchvision(&bad, "").err().unwrap().to_string();
    assert_names(err, &[var, "variance -0.5", "never negative"]);
}

/// A FIFO or a device given as weights or as a checkpoint's index is refused at once (a FIFO used to block
/// forever, `/dev/zero` to be read until memory ran out).
#[cfg(target_os = "linux")]
#[test]
fn special_files_are_refused() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let prefix = tf_copy(dir.path());
    let index = prefix.with_file_name("model.ckpt-1.index");
    let out = dir.path().join("out.safetensors");
    std::fs::remove_file(&index).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &index).unwrap();
    let err = tf_config()
        .convert_tf_checkpoint(&prefix, false, &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a device"), "{err}");
    std::fs::remove_file(&index).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&index).status();
    if matches!(made, Ok(s) if s.success()) {
        let err = tf_config()
            .convert_tf_checkpoint(&prefix, false, &out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a FIFO"), "{err}");
    }
    let fifo = dir.path().join("r50_1x_sk1.safetensors");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if matches!(made, Ok(s) if s.success()) {
        let err = load_simclrv2(&fifo, &device).err().unwrap().to_string();
        assert!(err.contains("FIFO"), "{err}");
    }
    let net = ResNetConfig::new(18)
        .with_base_width(4)
        .init(&device)
        .unwrap();
    assert!(net.load_torchvision("/dev/zero", "").is_err());
}
