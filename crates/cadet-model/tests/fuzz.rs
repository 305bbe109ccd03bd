//! Byte-mutation fuzzing of the model-file readers (issue 25), which read files people download: SimCLRv2 and
//! torchvision safetensors (the header mutated, the tensor bytes kept) and TensorFlow checkpoints (the `.index`
//! mutated with the data file kept, and the data file mutated). Every input must load (finite weights only) or
//! give a typed error: no panic, no execution over 15 s (a loaded 2-core machine stretched a few ordinary conversions to 7 s), no allocation over 2 GiB (the allocator aborts and saves
//! the input).
//!
//! Budget: `CADET_FUZZ_SECONDS` per campaign (a short default for CI; 600 on a development machine).

use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::prelude::*;
use cadet_core::fuzz::{Campaign, CappedAllocator};
use cadet_model::{ResNetConfig, SimClrV2Config, load_simclrv2};

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator::new(2 << 30);

const DEFAULT_BUDGET: Duration = Duration::from_secs(4);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn campaign(name: &str, seeds: Vec<Vec<u8>>) -> Campaign {
    Campaign::new(name, seeds)
        .budget_from_env("CADET_FUZZ_SECONDS", DEFAULT_BUDGET)
        .slow_after(Duration::from_secs(15))
}

/// A safetensors file split into its header (length prefix and JSON) and its tensor bytes.
fn split_safetensors(path: &Path) -> (Vec<u8>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (bytes[..8 + len].to_vec(), bytes[8 + len..].to_vec())
}

#[test]
fn safetensors_headers_never_panic_or_run_away() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let (v2_header, v2_data) =
        split_safetensors(&fixtures().join("simclrv2_r18_sk1_base4.safetensors"));
    let (tv_header, tv_data) =
        split_safetensors(&fixtures().join("torchvision_resnet18.safetensors"));
    let torchvision = ResNetConfig::new(18)
        .with_base_width(4)
        .with_num_classes(Some(5));
    let path = dir.path().join("model.safetensors");
    let report = campaign("safetensors", vec![v2_header, tv_header]).run(|header| {
        for data in [&v2_data, &tv_data] {
            let mut file = header.to_vec();
            file.extend_from_slice(data);
            std::fs::write(&path, &file).unwrap();
            let _ = load_simclrv2(&path, &device);
            if let Ok(config) = SimClrV2Config::from_file(&path) {
                let _ = config.load(&path, "", &device);
            }
            if let Ok(net) = torchvision.init(&device) {
                let _ = net.load_torchvision(&path, "");
            }
        }
    });
    eprintln!("{report}");
    assert!(
        report.panics.is_empty() && report.slow.is_empty(),
        "{report}"
    );
}

/// The TensorFlow fixture (`r50_1x_sk1` at base width 2) copied into `dir`; returns its prefix.
fn tf_copy(dir: &Path) -> PathBuf {
    for ext in ["index", "data-00000-of-00001"] {
        let name = format!("model.ckpt-1.{ext}");
        std::fs::copy(
            fixtures().join("simclrv2_tf/r50_1x_sk1_w2").join(&name),
            dir.join(&name),
        )
        .unwrap();
    }
    dir.join("model.ckpt-1")
}

fn tf_campaign(name: &str, ext: &str) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = tf_copy(dir.path());
    let target = dir.path().join(format!("model.ckpt-1.{ext}"));
    let seed = std::fs::read(&target).unwrap();
    let config = SimClrV2Config::from_name("r50_1x_sk1")
        .unwrap()
        .with_base_width(2);
    let out = dir.path().join("out.safetensors");
    let report = campaign(name, vec![seed]).run(|bytes| {
        std::fs::write(&target, bytes).unwrap();
        let _ = config.convert_tf_checkpoint(&prefix, false, &out);
    });
    eprintln!("{report}");
    assert!(
        report.panics.is_empty() && report.slow.is_empty(),
        "{report}"
    );
}

#[test]
fn tensorflow_indexes_never_panic_or_run_away() {
    tf_campaign("TF index", "index");
}

#[test]
fn tensorflow_data_files_never_panic_or_run_away() {
    tf_campaign("TF data", "data-00000-of-00001");
}
