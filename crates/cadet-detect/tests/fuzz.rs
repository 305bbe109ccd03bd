//! Byte-mutation fuzzing of the calibration file reader, which reads files people download: every input must
//! load or give a typed error, and a calibration that loads must score features without a panic. Two
//! campaigns: mutants as they are (most fail the checksum), and mutants re-signed with a valid checksum, which
//! reach the consistency checks behind it. No execution over 2 s, no allocation over 1 GiB.
//!
//! Budget: `CADET_FUZZ_SECONDS` per campaign (a short default for CI; 600 on a development machine).

mod common;

use std::time::Duration;

use cadet_core::NoProgress;
use cadet_core::fuzz::{Campaign, CappedAllocator};
use cadet_detect::{Cadet, Calibration, DetectionMethod};

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator::new(1 << 30);

const DEFAULT_BUDGET: Duration = Duration::from_secs(4);

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Calibration files of every version and combination: the two committed fixtures and fresh ones (weighted
/// sum, Fisher) on the fixture features.
fn seeds(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let x1: ndarray::Array3<f32> = ndarray_npy::read_npy(fixture("v1_x1.npy")).unwrap();
    let x2: ndarray::Array3<f32> = ndarray_npy::read_npy(fixture("v1_x2.npy")).unwrap();
    let mut seeds: Vec<Vec<u8>> = ["calibration_v1.json", "calibration_v2.json"]
        .iter()
        .map(|f| std::fs::read(fixture(f)).unwrap())
        .collect();
    for method in [DetectionMethod::paper(), DetectionMethod::fisher_cosine(2)] {
        let cal = Cadet::params(32)
            .n_trs(4)
            .method(method)
            .check()
            .unwrap()
            .calibrate_features(None, x1.view(), x2.view(), &NoProgress)
            .unwrap();
        let path = dir.join("seed.json");
        cal.save(&path).unwrap();
        seeds.push(std::fs::read(&path).unwrap());
    }
    seeds
}

fn fuzz(name: &str, resigned: bool) {
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    let features: ndarray::Array3<f32> = ndarray_npy::read_npy(fixture("v1_x2.npy")).unwrap();
    let path = dir.path().join("cal.json");
    let report = Campaign::new(name, seeds)
        .budget_from_env("CADET_FUZZ_SECONDS", DEFAULT_BUDGET)
        .run(|bytes| {
            let bytes = match (resigned, std::str::from_utf8(bytes)) {
                (true, Ok(text)) if text.contains("\"checksum\":\"") => {
                    common::resign(text).into_bytes()
                }
                _ => bytes.to_vec(),
            };
            std::fs::write(&path, bytes).unwrap();
            if let Ok(cal) = Calibration::load(&path) {
                let _ = cal.score_features(features.view());
                let _ = cal.calibration_scores();
            }
        });
    eprintln!("{report}");
    assert!(
        report.panics.is_empty() && report.slow.is_empty(),
        "{report}"
    );
}

#[test]
fn calibration_files_never_panic_or_run_away() {
    fuzz("calibration", false);
}

#[test]
fn resigned_calibration_files_never_panic_or_run_away() {
    fuzz("calibration (re-signed)", true);
}
