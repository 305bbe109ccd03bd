//! CADet end to end with a deterministic embedder: calibration, scoring, files, mismatches, determinism.

mod common;

use cadet_core::NoProgress;
use cadet_detect::{Cadet, CadetDetector, Calibrated, Calibration, Calibrator, Detector, Error};
use common::PoolProject;
use ndarray::{Array4, s};

fn images(n: usize, seed: usize) -> Array4<f32> {
    Array4::from_shape_fn((n, 3, 16, 16), |(i, c, y, x)| {
        let k = i * 31 + seed * 7;
        (0.5 + 0.4
            * ((x as f32 * 0.3 + (k % 5) as f32).sin()
                * ((y + c * 3 + k % 11) as f32 * 0.25).cos()))
        .clamp(0.0, 1.0)
    })
}

fn calibrated() -> (PoolProject, Calibration) {
    let e = PoolProject::new(16, 12, 1);
    let cadet = Cadet::params(16)
        .n_trs(10)
        .batch_images(7)
        .seed(3)
        .check()
        .unwrap();
    let cal = cadet
        .calibrate(&e, images(30, 1).view(), images(60, 2).view(), &NoProgress)
        .unwrap();
    (e, cal)
}

#[test]
fn scores_are_reproducible_batched_and_consistent() {
    let (e, cal) = calibrated();
    let test = images(9, 5);
    let a = cal.score(&e, test.view(), &NoProgress).unwrap();
    assert_eq!(a, cal.score(&e, test.view(), &NoProgress).unwrap());
    assert_eq!(cal.scores.len(), 60);
    assert!(cal.scores.windows(2).all(|w| w[0] <= w[1]));
    for s in &a {
        assert!(s.p_value > 0.0 && s.p_value <= 1.0);
        assert!((s.score - (s.m_in + cal.gamma * s.m_out)).abs() < 1e-12);
        // p = (#{x' : score(x') < score} + 1) / (|X2| + 1), counted by hand.
        let below = cal.scores.iter().filter(|&&v| v < s.score).count();
        assert_eq!(s.p_value, (below + 1) as f64 / 61.0);
    }
    // The same p-values through the shared calibrator on anomaly scores −score.
    let calibrator = Calibrator::new(cal.scores.iter().map(|v| -v).collect()).unwrap();
    let detector = CadetDetector {
        calibration: &cal,
        embedder: &e,
    };
    let anomaly = detector.anomaly_scores(test.view()).unwrap();
    assert_eq!(
        calibrator.p_values(&anomaly),
        a.iter().map(|s| s.p_value).collect::<Vec<_>>()
    );
    let wrapped = Calibrated::fit(detector, images(60, 2).view()).unwrap();
    assert_eq!(wrapped.p_values(test.view()).unwrap().len(), 9);
    // Batching does not change results: each image keeps its stream.
    let mut other = cal.clone();
    other.params = cal.params.clone().batch_images(1);
    assert_eq!(other.score(&e, test.view(), &NoProgress).unwrap(), a);
    // Calibrating the same data reproduces the same calibration.
    assert_eq!(cal, calibrated().1);
}

#[test]
fn files_round_trip_and_reject_corruption() {
    let (e, cal) = calibrated();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cal.json");
    cal.save(&path).unwrap();
    assert!(!dir.path().join("cal.tmp").exists());
    let back = Calibration::load(&path).unwrap();
    assert_eq!(back, cal);
    assert_eq!(
        back.score(&e, images(3, 9).view(), &NoProgress).unwrap(),
        cal.score(&e, images(3, 9).view(), &NoProgress).unwrap()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    for (bad, what) in [
        (text[..text.len() / 2].to_string(), "truncated"),
        (text.replace("\"version\": 1", "\"version\": 99"), "version"),
        (
            text.replace("cadet-calibration", "something-else"),
            "format",
        ),
        (
            text.replacen("\"gamma\": ", "\"gamma\": -", 1),
            "negative gamma",
        ),
        ("not json".to_string(), "garbage"),
    ] {
        std::fs::write(&path, bad).unwrap();
        assert!(
            matches!(Calibration::load(&path), Err(Error::CalibrationFile { .. })),
            "{what}"
        );
    }
    assert!(matches!(
        Calibration::load(dir.path().join("missing.json")),
        Err(Error::CalibrationFile { .. })
    ));
}

#[test]
fn a_different_embedder_is_refused() {
    let (_, cal) = calibrated();
    let test = images(2, 0);
    let other_weights = PoolProject::new(16, 12, 2); // same name and dimension, other weights
    assert!(matches!(
        cal.score(&other_weights, test.view(), &NoProgress),
        Err(Error::EmbedderMismatch(_))
    ));
    let mut renamed = PoolProject::new(16, 12, 1);
    renamed.name = "something else".into();
    assert!(matches!(
        cal.score(&renamed, test.view(), &NoProgress),
        Err(Error::EmbedderMismatch(_))
    ));
    let wider = PoolProject::new(16, 13, 1);
    assert!(matches!(
        cal.score(&wider, test.view(), &NoProgress),
        Err(Error::EmbedderMismatch(_))
    ));
    let e = PoolProject::new(16, 12, 1);
    let small = images(2, 0).slice(s![.., .., ..8, ..8]).to_owned();
    assert!(matches!(
        cal.score(&e, small.view(), &NoProgress),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn bad_settings_and_inputs_are_typed_errors() {
    assert!(matches!(
        Cadet::params(16).n_trs(1).check(),
        Err(Error::InvalidParameter { name: "n_trs", .. })
    ));
    assert!(matches!(
        Cadet::params(16).batch_images(0).check(),
        Err(Error::InvalidParameter { .. })
    ));
    let e = PoolProject::new(16, 12, 1);
    let cadet = Cadet::params(16).n_trs(4).check().unwrap();
    assert!(matches!(
        cadet.calibrate(&e, images(3, 0).view(), images(1, 0).view(), &NoProgress),
        Err(Error::Degenerate(_))
    ));
    let mut nan = images(3, 0);
    nan[[1, 0, 2, 2]] = f32::NAN;
    assert!(
        cadet
            .calibrate(&e, images(3, 0).view(), nan.view(), &NoProgress)
            .is_err()
    );
    // Constant images: every statistic equal, Var m_out = 0.
    let flat = Array4::from_elem((5, 3, 16, 16), 0.5f32);
    assert!(matches!(
        cadet.calibrate(&e, flat.view(), flat.view(), &NoProgress),
        Err(Error::Degenerate(_))
    ));
}
