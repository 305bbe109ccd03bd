//! CADet end to end with a deterministic embedder: calibration, scoring, files, mismatches, determinism.

mod common;

use cadet_core::Embedder;
use cadet_core::NoProgress;
use cadet_detect::{
    Cadet, CadetDetector, CadetParams, Calibrated, Calibration, Calibrator, DetectionMethod,
    Detector, Error, Statistic, Stream, ViewLayout,
};
use common::PoolProject;
use ndarray::ShapeBuilder;
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
    let cadet = Cadet::paper(16)
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
    let scores = cal.calibration_scores();
    assert_eq!((scores.len(), cal.x2_size(), cal.x1_size()), (60, 60, 30));
    assert!(scores.windows(2).all(|w| w[0] <= w[1]));
    let gamma = cal.gamma().unwrap();
    for s in &a {
        assert!(s.p_value > 0.0 && s.p_value <= 1.0);
        assert!((s.score - (s.m_in + gamma * s.m_out)).abs() < 1e-12);
        assert_eq!(s.statistics, vec![s.m_in, s.m_out]);
        // p = (#{x' : score(x') < score} + 1) / (|X2| + 1), counted by hand.
        let below = scores.iter().filter(|&&v| v < s.score).count();
        assert_eq!(s.p_value, (below + 1) as f64 / 61.0);
    }
    // The same p-values through the shared calibrator on anomaly scores −score.
    let calibrator = Calibrator::new(scores.iter().map(|v| -v).collect()).unwrap();
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
    let other = cal.clone().with_batch_images(1).unwrap();
    assert_eq!(other.score(&e, test.view(), &NoProgress).unwrap(), a);
    // Calibrating the same data reproduces the same calibration.
    assert_eq!(cal, calibrated().1);
}

#[test]
fn files_round_trip_and_reject_corruption() {
    let (e, cal) = calibrated();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cal.json");
    // An unrelated file named like a temporary one survives the save.
    std::fs::write(dir.path().join("cal.tmp"), b"mine").unwrap();
    cal.save(&path).unwrap();
    assert_eq!(std::fs::read(dir.path().join("cal.tmp")).unwrap(), b"mine");
    let back = Calibration::load(&path).unwrap();
    assert_eq!(back, cal);
    let text = std::fs::read_to_string(&path).unwrap();
    for needle in ["\"sorted\":[", "\"batch_images\":7", "\"checksum\":\""] {
        assert!(text.contains(needle), "{needle}");
    }
    assert_eq!(
        back.score(&e, images(3, 9).view(), &NoProgress).unwrap(),
        cal.score(&e, images(3, 9).view(), &NoProgress).unwrap()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    for (bad, what) in [
        (text[..text.len() / 2].to_string(), "truncated"),
        (text.replace("\"version\":2", "\"version\":99"), "version"),
        (
            text.replace("\"version\":2", "\"version\":3"),
            "version 3 claimed for a version-2 file (checksum)",
        ),
        (
            text.replace("cadet-calibration", "something-else"),
            "format",
        ),
        (
            text.replacen("\"weights\":[1.0,", "\"weights\":[1.0,-", 1),
            "negative gamma",
        ),
        (
            text.replacen("\"n_trs\":10", "\"n_trs\":1", 1),
            "one transform",
        ),
        (
            text.replacen("\"sorted\":[", "\"sorted\":[-10.0,", 1),
            "an extra calibration score (checksum)",
        ),
        (
            text.replacen("\"batch_images\":7", "\"batch_images\":8", 1),
            "a changed setting (checksum)",
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

/// Counts the images it embeds, delegating to `inner`; its default `name` is the pitfall the trait documents.
struct Counting<'a> {
    inner: &'a PoolProject,
    images: std::sync::atomic::AtomicUsize,
}

impl cadet_core::Embedder for Counting<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn embed(
        &self,
        images: ndarray::ArrayView4<'_, f32>,
    ) -> cadet_core::Result<ndarray::Array2<f32>> {
        self.images
            .fetch_add(images.dim().0, std::sync::atomic::Ordering::SeqCst);
        self.inner.embed(images)
    }
}

/// `bind` checks the embedder once (one probe image), then scores batch after batch with no further probe,
/// with the same scores as `score`; the default name is the type's path, so a wrapper is refused.
#[test]
fn binding_checks_the_embedder_once() {
    use cadet_core::Embedder;
    let (e, cal) = calibrated();
    let test = images(3, 5);
    let expected = cal.score(&e, test.view(), &NoProgress).unwrap();
    let wrapped = Counting {
        inner: &e,
        images: 0.into(),
    };
    assert!(
        wrapped.name().starts_with("calibration::Counting"),
        "{}",
        wrapped.name()
    );
    assert!(matches!(
        cal.bind(&wrapped),
        Err(Error::EmbedderMismatch(_))
    ));
    /// The counting embedder under the calibrated embedder's name.
    struct Named<'a>(Counting<'a>);
    impl cadet_core::Embedder for Named<'_> {
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn embed(
            &self,
            images: ndarray::ArrayView4<'_, f32>,
        ) -> cadet_core::Result<ndarray::Array2<f32>> {
            self.0.embed(images)
        }
        fn name(&self) -> String {
            self.0.inner.name()
        }
    }
    let named = Named(wrapped);
    let scorer = cal.bind(&named).unwrap();
    let probe_images = named.0.images.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(probe_images, 1);
    for _ in 0..3 {
        assert_eq!(scorer.score(test.view(), &NoProgress).unwrap(), expected);
    }
    // Three batches of 3 images × their views, and no second probe.
    let per_batch = (named.0.images.load(std::sync::atomic::Ordering::SeqCst) - probe_images) / 3;
    assert_eq!(per_batch % 3, 0);
    assert!(per_batch >= 3 * 2);
    assert_eq!(
        named.0.images.load(std::sync::atomic::Ordering::SeqCst),
        1 + 3 * per_batch
    );
}

#[test]
fn bad_settings_and_inputs_are_typed_errors() {
    assert!(matches!(
        Cadet::params(16).n_trs(1).check(),
        Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "n_trs",
            ..
        }))
    ));
    assert!(matches!(
        Cadet::params(16).batch_images(0).check(),
        Err(Error::Core(cadet_core::Error::InvalidParameter { .. }))
    ));
    let e = PoolProject::new(16, 12, 1);
    let cadet = Cadet::paper(16).n_trs(4).check().unwrap();
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

/// An image's score depends on the image only: alone, first or last in a batch, in any order (its views come
/// from a stream derived from its pixels, not from its position).
#[test]
fn an_image_scores_the_same_alone_and_in_any_batch_order() {
    let (e, cal) = calibrated();
    let both = images(2, 4);
    let swapped = ndarray::concatenate(
        ndarray::Axis(0),
        &[
            both.slice(s![1..2, .., .., ..]),
            both.slice(s![0..1, .., .., ..]),
        ],
    )
    .unwrap();
    let ab = cal.score(&e, both.view(), &NoProgress).unwrap();
    let ba = cal.score(&e, swapped.view(), &NoProgress).unwrap();
    let a_alone = cal
        .score(&e, both.slice(s![0..1, .., .., ..]), &NoProgress)
        .unwrap();
    assert_eq!(ab[0], ba[1]);
    assert_eq!(ab[1], ba[0]);
    assert_eq!(ab[0], a_alone[0]);
    // Two different images get different views (their statistics differ).
    assert_ne!(ab[0].m_in, ab[1].m_in);
}

/// Every method calibrates, saves and loads; local m_out with k = |X(1)| is the paper's method exactly; features
/// with another n_trs or dimension are refused, naming the shape.
#[test]
fn methods_round_trip_and_full_k_is_the_paper() {
    let e = PoolProject::new(16, 12, 1);
    let cadet = |m: DetectionMethod| Cadet::params(16).n_trs(6).method(m).check().unwrap();
    let paper = cadet(DetectionMethod::paper());
    let f1 = paper
        .transform_features(&e, images(30, 1).view(), Stream::X1, &NoProgress)
        .unwrap();
    let f2 = paper
        .transform_features(&e, images(60, 2).view(), Stream::X2, &NoProgress)
        .unwrap();
    let test = paper
        .transform_features(&e, images(9, 5).view(), Stream::Scored, &NoProgress)
        .unwrap();
    let scores = |m: DetectionMethod| {
        let cal = cadet(m)
            .calibrate_features(None, f1.view(), f2.view(), &NoProgress)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        cal.save(dir.path().join("c.json")).unwrap();
        assert_eq!(Calibration::load(dir.path().join("c.json")).unwrap(), cal);
        cal.score_features(test.view()).unwrap()
    };
    let p: Vec<(f64, f64)> = scores(DetectionMethod::paper())
        .iter()
        .map(|s| (s.score, s.p_value))
        .collect();
    let full: Vec<(f64, f64)> = scores(DetectionMethod::local_sum(30))
        .iter()
        .map(|s| (s.score, s.p_value))
        .collect();
    assert_eq!(p, full);
    for m in [
        DetectionMethod::local_sum(3),
        DetectionMethod::fisher_local(3),
        DetectionMethod::min_p_local(3),
    ] {
        for s in scores(m.clone()) {
            assert!(s.p_value > 0.0 && s.p_value <= 1.0, "{}", m.label());
            assert_eq!(s.statistics.len(), 2);
        }
    }
    // Local m_in alone needs the reference images' features too (kept at calibration, saved, loaded).
    for s in scores(DetectionMethod::single(Statistic::LocalMIn { k: 3 })) {
        assert!(s.p_value > 0.0 && s.p_value <= 1.0);
        assert_eq!(s.statistics.len(), 1);
    }
    let cal = cadet(DetectionMethod::fisher_local(3))
        .calibrate_features(None, f1.view(), f2.view(), &NoProgress)
        .unwrap();
    let other_n_trs = test.slice(s![.., ..4, ..]);
    assert!(matches!(
        cal.score_features(other_n_trs),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        cadet(DetectionMethod::local_sum(31)).calibrate_features(
            None,
            f1.view(),
            f2.view(),
            &NoProgress
        ),
        Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "k",
            ..
        }))
    ));
    // No embedder identity: images cannot be scored, features can.
    assert!(matches!(
        cal.score(&e, images(2, 0).view(), &NoProgress),
        Err(Error::EmbedderMismatch(_))
    ));
    // X(2) of one image repeated: typed error naming the statistic.
    let repeated = ndarray::Array3::from_shape_fn(f2.dim(), |(_, j, k)| f2[[0, j, k]]);
    let err = cadet(DetectionMethod::paper())
        .calibrate_features(None, f1.view(), repeated.view(), &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("m_in"), "{err}");
    // X(2) of images whose transforms all agree, up to f32-level noise: m_in is constant but for rounding.
    let mut same_views = ndarray::Array3::from_shape_fn(f2.dim(), |(i, _, k)| f2[[i, 0, k]]);
    same_views
        .indexed_iter_mut()
        .for_each(|((i, j, k), v)| *v *= 1.0 + 1e-7 * (((i * 7 + j * 3 + k) % 5) as f32 - 2.0));
    assert!(matches!(
        cadet(DetectionMethod::paper()).calibrate_features(
            None,
            f1.view(),
            same_views.view(),
            &NoProgress
        ),
        Err(Error::Degenerate(_))
    ));
}

/// A version-1 file (the paper's method: μ, γ, sorted scores) still loads and scores as it did.
#[test]
fn version_1_files_load() {
    let (e, cal) = calibrated();
    // Version 1's params had no method.
    let mut params = serde_json::to_value(cal.params()).unwrap();
    params.as_object_mut().unwrap().remove("method").unwrap();
    let v1 = serde_json::json!({
        "format": "cadet-calibration",
        "version": 1,
        "params": params,
        "embedder": serde_json::to_value(cal.embedder().unwrap()).unwrap(),
        "mu": cal.reference().mu(),
        "gamma": cal.gamma().unwrap(),
        "scores": cal.calibration_scores(),
        "x1_size": 30,
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.json");
    std::fs::write(&path, serde_json::to_vec(&v1).unwrap()).unwrap();
    let back = Calibration::load(&path).unwrap();
    assert_eq!(back.method(), &DetectionMethod::paper());
    let test = images(4, 7);
    assert_eq!(
        back.score(&e, test.view(), &NoProgress).unwrap(),
        cal.score(&e, test.view(), &NoProgress).unwrap()
    );
    // A newer file relabelled version 1 (no embedder, no γ): the message says which layout it failed.
    let mut relabelled = serde_json::to_value(&cal).unwrap();
    relabelled["version"] = serde_json::json!(1);
    relabelled["embedder"] = serde_json::Value::Null;
    std::fs::write(&path, serde_json::to_vec(&relabelled).unwrap()).unwrap();
    let e = Calibration::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("says version 1 but lacks that version's fields"),
        "{e}"
    );
}

/// An embedder that returns its features in column-major order (a valid ndarray any user may produce).
struct ColumnMajor(PoolProject);
impl cadet_core::Embedder for ColumnMajor {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn embed(
        &self,
        images: ndarray::ArrayView4<'_, f32>,
    ) -> cadet_core::Result<ndarray::Array2<f32>> {
        let f = self.0.embed(images)?;
        let mut t = ndarray::Array2::<f32>::zeros(f.dim().f());
        t.assign(&f);
        Ok(t)
    }
    fn name(&self) -> String {
        self.0.name()
    }
}

#[test]
fn column_major_embedder_output_gives_the_same_scores() {
    let (e, cal) = calibrated();
    let cm = ColumnMajor(PoolProject::new(16, 12, 1));
    assert!(!cm.embed(images(2, 0).view()).unwrap().is_standard_layout());
    let test = images(5, 6);
    assert_eq!(
        cal.score(&cm, test.view(), &NoProgress).unwrap(),
        cal.score(&e, test.view(), &NoProgress).unwrap()
    );
}

/// A version-1 file written by the previous release (commit 3f832da: `detect --x1 v1_x1.npy --x2 v1_x2.npy
/// --set test=v1_x2.npy --save-calibration calibration_v1.json`, features from a seeded NumPy draw) loads as the
/// paper's method and agrees with a fresh calibration on the same features: same γ, same calibration scores, same
/// p-values.
#[test]
fn a_version_1_file_from_the_previous_release_loads_and_agrees() {
    let fixture = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let old = Calibration::load(fixture("calibration_v1.json")).unwrap();
    assert_eq!(old.method(), &DetectionMethod::paper());
    let x1: ndarray::Array3<f32> = ndarray_npy::read_npy(fixture("v1_x1.npy")).unwrap();
    let x2: ndarray::Array3<f32> = ndarray_npy::read_npy(fixture("v1_x2.npy")).unwrap();
    let fresh = Cadet::paper(32)
        .n_trs(4)
        .check()
        .unwrap()
        .calibrate_features(None, x1.view(), x2.view(), &NoProgress)
        .unwrap();
    assert!((old.gamma().unwrap() - fresh.gamma().unwrap()).abs() < 1e-12);
    for (a, b) in old
        .calibration_scores()
        .iter()
        .zip(fresh.calibration_scores())
    {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let p = |c: &Calibration| -> Vec<f64> {
        c.score_features(x1.view())
            .unwrap()
            .iter()
            .map(|s| s.p_value)
            .collect()
    };
    assert_eq!(p(&old), p(&fresh));
}

/// A version-2 file written by the previous release (commit 42fe0fd: `detect --x1 v1_x1.npy --x2 v1_x2.npy
/// --method min-p-cos --k 2 --set test=v1_x2.npy --save-calibration calibration_v2.json`) loads (no
/// un-augmented view), checksum verified, and equals a fresh calibration on the same features, which this
/// version writes byte for byte as the previous release did (version 2: it uses no view). Changing a byte of
/// its content still fails.
#[test]
fn a_version_2_file_from_the_previous_release_loads_and_agrees() {
    let fixture = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let old = Calibration::load(fixture("calibration_v2.json")).unwrap();
    assert_eq!(old.method(), &DetectionMethod::min_p_cosine(2));
    assert_eq!(old.params().layout(), ViewLayout::Transforms);
    let x1: ndarray::Array3<f32> = ndarray_npy::read_npy(fixture("v1_x1.npy")).unwrap();
    let x2: ndarray::Array3<f32> = ndarray_npy::read_npy(fixture("v1_x2.npy")).unwrap();
    let fresh = Cadet::params(32)
        .n_trs(4)
        .method(DetectionMethod::min_p_cosine(2))
        .check()
        .unwrap()
        .calibrate_features(None, x1.view(), x2.view(), &NoProgress)
        .unwrap();
    assert_eq!(old, fresh);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again.json");
    fresh.save(&path).unwrap();
    let v2 = std::fs::read_to_string(fixture("calibration_v2.json")).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), v2);
    let damaged = dir.path().join("damaged.json");
    std::fs::write(&damaged, v2.replacen("\"k\":2", "\"k\":3", 1)).unwrap();
    assert!(matches!(
        Calibration::load(&damaged),
        Err(Error::CalibrationFile { reason, .. }) if reason.contains("checksum")
    ));
}

/// Bytes in, bytes out, and every public way in refuses a tampered file (γ = −50, n_trs = 1: the issue's
/// example) that `load` refuses: `from_bytes`, `read_from`, serde's `Deserialize` from text and from a value.
#[test]
fn every_public_way_in_checks_the_file() {
    let (_, cal) = calibrated();
    let bytes = cal.to_bytes().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cal.json");
    cal.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(Calibration::from_bytes(&bytes).unwrap(), cal);
    assert_eq!(Calibration::read_from(&bytes[..]).unwrap(), cal);
    let mut written = Vec::new();
    cal.write_to(&mut written).unwrap();
    assert_eq!(written, bytes);
    // serde round-trips through the same file form.
    let text = serde_json::to_string(&cal).unwrap();
    assert_eq!(text.as_bytes(), &bytes[..]);
    assert_eq!(serde_json::from_str::<Calibration>(&text).unwrap(), cal);

    let text = String::from_utf8(bytes).unwrap();
    let weights = text.find("\"weights\":[1.0,").unwrap() + "\"weights\":[1.0,".len();
    let end = weights + text[weights..].find([',', ']']).unwrap();
    let tampered = format!("{}-50.0{}", &text[..weights], &text[end..]).replacen(
        "\"n_trs\":10",
        "\"n_trs\":1",
        1,
    );
    std::fs::write(&path, &tampered).unwrap();
    assert!(Calibration::load(&path).is_err());
    assert!(Calibration::from_bytes(tampered.as_bytes()).is_err());
    assert!(Calibration::read_from(tampered.as_bytes()).is_err());
    assert!(serde_json::from_str::<Calibration>(&tampered).is_err());
    let value: serde_json::Value = serde_json::from_str(&tampered).unwrap();
    assert!(serde_json::from_value::<Calibration>(value).is_err());
    // Re-signed, the same edit still fails the content checks on every way in.
    let resigned = common::resign(&tampered);
    assert!(Calibration::from_bytes(resigned.as_bytes()).is_err());
    assert!(serde_json::from_str::<Calibration>(&resigned).is_err());
    let e = Calibration::from_bytes(b"{}").unwrap_err().to_string();
    assert!(e.contains("<calibration bytes>"), "{e}");
}

/// A file whose checksum was recomputed after an edit passes the integrity check, so the content is checked
/// too: a fitted combination other than the method's (it would score with Fisher while the method says min-p),
/// and a weighted sum's weights other than those its X⁽²⁾ statistics give.
#[test]
fn a_resigned_file_whose_parts_disagree_is_refused() {
    let fixture = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let v2 = std::fs::read_to_string(fixture("calibration_v2.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.json");
    std::fs::write(&path, common::resign(&v2)).unwrap();
    assert!(
        Calibration::load(&path).is_ok(),
        "re-signing alone changes nothing"
    );
    let fitted = "\"combination\":{\"combination\":{\"min_p\"";
    assert!(v2.contains(fitted));
    let edited = v2.replacen(fitted, "\"combination\":{\"combination\":{\"fisher\"", 1);
    std::fs::write(&path, common::resign(&edited)).unwrap();
    let e = Calibration::load(&path).unwrap_err().to_string();
    assert!(e.contains("min-p") && e.contains("Fisher"), "{e}");

    let (_, cal) = calibrated();
    cal.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let weights = text.find("\"weights\":[1.0,").unwrap() + "\"weights\":[1.0,".len();
    let end = weights + text[weights..].find([',', ']']).unwrap();
    let gamma: f64 = text[weights..end].parse().unwrap();
    let edited = format!("{}{:?}{}", &text[..weights], gamma * 1.5, &text[end..]);
    std::fs::write(&path, common::resign(&edited)).unwrap();
    let e = Calibration::load(&path).unwrap_err().to_string();
    assert!(e.contains("weights"), "{e}");

    // A part that does not deserialise is named: serde alone said "invalid type: unit variant, expected struct
    // variant", naming no field.
    let variant = "\"combination\":{\"combination\":{\"min_p\":{";
    assert!(v2.contains(variant));
    let edited = v2.replacen(
        variant,
        "\"combination\":{\"combination\":{\"min_p\":7,\"x\":{",
        1,
    );
    std::fs::write(&path, common::resign(&edited)).unwrap();
    let e = Calibration::load(&path).unwrap_err().to_string();
    assert!(e.contains("`combination`"), "{e}");

    // A reference size no reference has (the paper's method keeps no per-image features to count): it used to
    // load and print |X1| = 18446744073709551615.
    cal.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let size = "\"reference\":{\"size\":";
    let at = text.find(size).unwrap() + size.len();
    let end = at + text[at..].find([',', '}']).unwrap();
    for huge in [u64::MAX, 1 << 40] {
        let edited = format!("{}{huge}{}", &text[..at], &text[end..]);
        std::fs::write(&path, common::resign(&edited)).unwrap();
        let e = Calibration::load(&path).unwrap_err().to_string();
        assert!(e.contains("reference"), "{e}");
    }
}

/// With the un-augmented view: features are `(N, 1 + n_trs, d)`, view 0 the embedder's features of
/// `identity_view(image)` and the rest exactly the transforms made without it; calibrating and scoring from
/// images equals doing it from those features; the file round-trips as version 3; a method that needs the view
/// refuses the paper's layout, and features without the view are a shape error.
#[test]
fn the_un_augmented_view_comes_first_and_calibrates_end_to_end() {
    let e = PoolProject::new(16, 12, 1);
    let method = DetectionMethod::fisher_views(5, 1, 3);
    let plain = Cadet::paper(16).n_trs(6).check().unwrap();
    let cadet = Cadet::params(16)
        .n_trs(6)
        .identity_view(true)
        .method(method.clone())
        .check()
        .unwrap();
    let imgs = images(7, 3);
    let with = cadet
        .transform_features(&e, imgs.view(), Stream::Scored, &NoProgress)
        .unwrap();
    let without = plain
        .transform_features(&e, imgs.view(), Stream::Scored, &NoProgress)
        .unwrap();
    assert_eq!(with.dim(), (7, 7, 12));
    assert_eq!(with.slice(s![.., 1.., ..]), without);
    for (i, image) in imgs.outer_iter().enumerate() {
        let view = cadet_augment::cadet_eval(16).identity_view(image).unwrap();
        let f = e.embed(view.insert_axis(ndarray::Axis(0)).view()).unwrap();
        assert_eq!(with.slice(s![i, 0, ..]), f.row(0));
    }

    let (x1, x2) = (images(30, 1), images(60, 2));
    let cal = cadet
        .calibrate(&e, x1.view(), x2.view(), &NoProgress)
        .unwrap();
    assert_eq!(cal.params().layout(), ViewLayout::IdentityFirst);
    assert!(cal.reference().identity_units().is_some());
    let f1 = cadet
        .transform_features(&e, x1.view(), Stream::X1, &NoProgress)
        .unwrap();
    let f2 = cadet
        .transform_features(&e, x2.view(), Stream::X2, &NoProgress)
        .unwrap();
    let from_features = cadet
        .calibrate_features(None, f1.view(), f2.view(), &NoProgress)
        .unwrap();
    let scored = cal.score(&e, imgs.view(), &NoProgress).unwrap();
    assert_eq!(scored, from_features.score_features(with.view()).unwrap());
    assert!(
        scored
            .iter()
            .all(|s| s.statistics.len() == 6 && s.p_value > 0.0 && s.p_value <= 1.0)
    );

    let dir = tempfile::tempdir().unwrap();
    cal.save(dir.path().join("c.json")).unwrap();
    let text = std::fs::read_to_string(dir.path().join("c.json")).unwrap();
    assert!(text.contains("\"version\":3") && text.contains("identity_first"));
    assert_eq!(Calibration::load(dir.path().join("c.json")).unwrap(), cal);

    assert!(matches!(
        Cadet::params(16)
            .n_trs(6)
            .identity_view(false)
            .method(method)
            .check(),
        Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "identity_view",
            ..
        }))
    ));
    assert!(matches!(
        cal.score_features(without.view()),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// `Cadet::params` is the recommended method with the un-augmented view; `Cadet::paper` the paper's, transforms
/// only; a method given later brings the layout it needs unless `identity_view` chose one, in either order; and
/// the recommended method's size (|X1| ≥ 50) is an error that says what to change.
#[test]
fn the_default_is_the_recommended_method_and_its_sizes_are_checked() {
    let recommended = Cadet::params(16).n_trs(4).check().unwrap();
    assert_eq!(recommended.method(), &DetectionMethod::recommended());
    assert_eq!(recommended.settings().layout(), ViewLayout::IdentityFirst);
    let paper = Cadet::paper(16).n_trs(4).check().unwrap();
    assert_eq!(paper.method(), &DetectionMethod::paper());
    assert_eq!(paper.settings().layout(), ViewLayout::Transforms);
    // The layout follows a method given later, unless chosen explicitly (in either order).
    let layout = |p: CadetParams| p.check().unwrap().settings().layout();
    assert_eq!(
        layout(Cadet::params(16).method(DetectionMethod::paper())),
        ViewLayout::Transforms
    );
    assert_eq!(
        layout(Cadet::paper(16).method(DetectionMethod::fisher_views(5, 1, 3))),
        ViewLayout::IdentityFirst
    );
    assert_eq!(
        layout(
            Cadet::params(16)
                .identity_view(true)
                .method(DetectionMethod::paper())
        ),
        ViewLayout::IdentityFirst
    );
    assert_eq!(
        layout(
            Cadet::paper(16)
                .method(DetectionMethod::paper())
                .identity_view(true)
        ),
        ViewLayout::IdentityFirst
    );
    // Too few reference images for the recommended method: the error names |X1|, the size and the way out.
    let e = PoolProject::new(16, 12, 1);
    let err = recommended
        .calibrate(&e, images(30, 1).view(), images(20, 2).view(), &NoProgress)
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("|X(1)| = 30") && message.contains("50"),
        "{message}"
    );
    // `images` repeats after 55 images (X2 would copy X1: identity cos constant); these do not.
    let varied = |n: usize, seed: usize| {
        Array4::from_shape_fn((n, 3, 16, 16), |(i, c, y, x)| {
            let h = ((i * 7919 + seed * 104_729 + c * 31 + y * 17 + x) as f32 * 12.9898).sin()
                * 43_758.547;
            (0.5 + 0.3 * (x as f32 * 0.3 + i as f32 * 0.37 + seed as f32).sin()
                + 0.2 * (h - h.floor() - 0.5))
                .clamp(0.0, 1.0)
        })
    };
    let cal = recommended
        .calibrate(&e, varied(50, 1).view(), varied(20, 2).view(), &NoProgress)
        .unwrap();
    assert_eq!(cal.method(), &DetectionMethod::recommended());
    let scores = cal.score(&e, varied(4, 3).view(), &NoProgress).unwrap();
    assert!(scores.iter().all(|s| s.p_value > 0.0 && s.p_value <= 1.0));
}

/// A re-signed file whose X⁽²⁾ statistic is outside the values the statistic can take (a cosine of 1e308) is
/// refused naming the statistic; the weighted sum's variance would otherwise overflow into a degenerate weight.
#[test]
fn a_stored_statistic_outside_its_range_is_refused() {
    let fixture = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let v2 = std::fs::read_to_string(fixture("calibration_v2.json")).unwrap();
    let start = v2.find("\"x2\":[[").unwrap() + "\"x2\":[[".len();
    let end = start + v2[start..].find([',', ']']).unwrap();
    // Written as serde_json writes them, so that the re-signed content is what the reader hashes.
    for value in ["1e+308", "-1.5", "2.0"] {
        let edited = format!("{}{value}{}", &v2[..start], &v2[end..]);

        let e = Calibration::from_bytes(common::resign(&edited).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("outside") && e.contains("X(2) holds"),
            "{value}: {e}"
        );
    }
    let inside = format!("{}0.5{}", &v2[..start], &v2[end..]);
    assert!(Calibration::from_bytes(common::resign(&inside).as_bytes()).is_ok());
}

/// A re-signed file whose reference μ is zero (every m_out 0: it scored, exit 0, with a rejection rate of 0) or
/// far beyond a mean of unit features is refused; so is a per-image reference mean above norm 1.
#[test]
fn a_reference_no_features_give_is_refused() {
    let (_, cal) = calibrated();
    let text = String::from_utf8(cal.to_bytes().unwrap()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mu = value["reference"]["mu"].as_array().unwrap().clone();
    let start = text.find("\"mu\":[").unwrap() + "\"mu\":[".len();
    let end = start + text[start..].find(']').unwrap();
    for replacement in [
        vec!["0.0".to_string(); mu.len()].join(","),
        std::iter::once("1e+300".to_string())
            .chain(std::iter::repeat_n("0.0".to_string(), mu.len() - 1))
            .collect::<Vec<_>>()
            .join(","),
    ] {
        let edited = format!("{}{replacement}{}", &text[..start], &text[end..]);
        let e = Calibration::from_bytes(common::resign(&edited).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("μ has norm"), "{e}");
    }
}

/// A re-signed file whose evaluation pipeline is out of range (a crop area over the image, a negative flip
/// probability, a resize to 2⁴⁰ pixels) is refused when loaded, naming the setting: before, it loaded with
/// exit 0 and failed, or allocated, only when a library user transformed images with it.
#[test]
fn an_out_of_range_pipeline_is_refused_at_load() {
    let fixture = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let v2 = std::fs::read_to_string(fixture("calibration_v2.json")).unwrap();
    for (from, to, name) in [
        (
            "\"scale\":[0.75,0.75]",
            "\"scale\":[2.0,3.0]",
            "RandomResizedCrop.scale",
        ),
        (
            "\"flip\":{\"p\":0.5}",
            "\"flip\":{\"p\":-0.5}",
            "HorizontalFlip.p",
        ),
        (
            "\"resize\":null",
            "\"resize\":{\"size\":1099511627776}",
            "Resize.size",
        ),
        ("\"size\":32,", "\"size\":0,", "RandomResizedCrop.size"),
    ] {
        assert!(v2.contains(from), "{from}");
        let edited = v2.replacen(from, to, 1);
        let e = Calibration::from_bytes(common::resign(&edited).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains(name), "{to}: {e}");
    }
}

/// A scored set made of the calibration's own images is found (to the rounding of sums in another order): X⁽²⁾
/// from the scores, X⁽¹⁾ from the features (when the method keeps the reference's per-image features); other
/// images never match.
#[test]
fn a_set_of_the_calibrations_own_images_is_found() {
    let f = |seed: f32| {
        ndarray::Array3::from_shape_fn((30, 4, 8), |(i, t, k)| {
            1.0 + ((i * 13 + t * 7 + k * 3) as f32 * (0.37 + seed))
                .sin()
                .abs()
        })
    };
    let (x1, x2, other) = (f(0.0), f(0.11), f(0.23));
    let local = cadet_detect::DetectionMethod::single(cadet_detect::Statistic::LocalMOut { k: 1 });
    let cal = Cadet::paper(32)
        .n_trs(4)
        .method(local)
        .check()
        .unwrap()
        .calibrate_features(None, x1.view(), x2.view(), &NoProgress)
        .unwrap();
    assert_eq!(cal.x1_images_among(x1.view()).unwrap(), 30);
    assert_eq!(
        cal.x1_images_among(x1.slice(ndarray::s![..7, .., ..]))
            .unwrap(),
        7
    );
    assert_eq!(cal.x1_images_among(other.view()).unwrap(), 0);
    let scores = |x: &ndarray::Array3<f32>| cal.score_features(x.view()).unwrap();
    assert_eq!(cal.x2_images_among(&scores(&x2)), 30);
    assert_eq!(cal.x2_images_among(&scores(&other)), 0);
    let mixed = ndarray::concatenate![ndarray::Axis(0), x2.slice(ndarray::s![..5, .., ..]), other];
    assert_eq!(cal.x2_images_among(&scores(&mixed)), 5);
}

/// The calibration's own images with each image's transform views in another order are still its own: bit
/// equality of the statistics found 90 of 200 (hostile pass 13), sums in another order differing in the last
/// bits.
#[test]
fn own_images_with_their_views_reordered_are_found() {
    let f = |seed: f32| {
        ndarray::Array3::from_shape_fn((40, 6, 64), |(i, t, k)| {
            0.1 + ((i * 131 + t * 17 + k * 7) as f32 * (0.731 + seed))
                .sin()
                .abs()
                * (1.0 + (k as f32 * 0.37).cos())
        })
    };
    let (x1, x2) = (f(0.0), f(0.113));
    let reorder = |x: &ndarray::Array3<f32>| {
        let order = [4, 1, 5, 0, 3, 2];
        ndarray::Array3::from_shape_fn(x.dim(), |(i, t, k)| x[[i, order[t], k]])
    };
    let local = cadet_detect::DetectionMethod::single(cadet_detect::Statistic::LocalMOut { k: 1 });
    for method in [cadet_detect::DetectionMethod::paper(), local] {
        let cal = Cadet::paper(32)
            .n_trs(6)
            .method(method)
            .check()
            .unwrap()
            .calibrate_features(None, x1.view(), x2.view(), &NoProgress)
            .unwrap();
        let scores = cal.score_features(reorder(&x2).view()).unwrap();
        assert_eq!(cal.x2_images_among(&scores), 40);
        if cal.reference().image_means().is_some() {
            assert_eq!(cal.x1_images_among(reorder(&x1).view()).unwrap(), 40);
        }
    }
}

/// The JSON value of `key` in `text` (an object or an array, found by matching brackets).
fn json_part(text: &str, key: &str) -> (usize, usize) {
    let start = text.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    let (open, close) = match &text[start..start + 1] {
        "{" => (b'{', b'}'),
        _ => (b'[', b']'),
    };
    let mut depth = 0;
    for (i, &b) in text.as_bytes()[start..].iter().enumerate() {
        depth += i32::from(b == open) - i32::from(b == close);
        if depth == 0 {
            return (start, start + i + 1);
        }
    }
    panic!("unbalanced {key}");
}

/// Hostile passes 17 and 18: re-signed calibrations whose reference contradicts them. A local method's calibration
/// relabelled as the paper's method (it flagged 70% of in-distribution images at α = 5%), and a local
/// calibration with reference images dropped while μ still averages all of them, are refused.
#[test]
fn a_resigned_file_whose_reference_contradicts_it_is_refused() {
    let e = PoolProject::new(16, 12, 1);
    let local = Cadet::params(16)
        .n_trs(6)
        .seed(3)
        .method(DetectionMethod::local_sum(3))
        .check()
        .unwrap()
        .calibrate(&e, images(30, 1).view(), images(60, 2).view(), &NoProgress)
        .unwrap();
    let (_, paper) = calibrated();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.json");
    local.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    paper.save(&path).unwrap();
    let paper_text = std::fs::read_to_string(&path).unwrap();
    let (a, b) = json_part(&text, "method");
    let (pa, pb) = json_part(&paper_text, "method");
    let relabelled = format!("{}{}{}", &text[..a], &paper_text[pa..pb], &text[b..]);
    std::fs::write(&path, common::resign(&relabelled)).unwrap();
    let e1 = Calibration::load(&path).unwrap_err().to_string();
    assert!(e1.contains("per-image features"), "{e1}");

    // One reference image of 30 dropped (its features and m_in), the size lowered, μ kept.
    let d = local.reference().dim();
    let (a, b) = json_part(&text, "image_means");
    let means: Vec<f32> = serde_json::from_str(&text[a..b]).unwrap();
    let dropped = serde_json::to_string(&means[..means.len() - d]).unwrap();
    let mut edited = format!("{}{dropped}{}", &text[..a], &text[b..]);
    let (a, b) = json_part(&edited, "image_m_in");
    let m_in: Vec<f64> = serde_json::from_str(&edited[a..b]).unwrap();
    let fewer = serde_json::to_string(&m_in[..m_in.len() - 1]).unwrap();
    edited = format!("{}{fewer}{}", &edited[..a], &edited[b..]);
    assert!(edited.contains("\"reference\":{\"size\":30,"));
    let edited = edited.replacen(
        "\"reference\":{\"size\":30,",
        "\"reference\":{\"size\":29,",
        1,
    );
    std::fs::write(&path, common::resign(&edited)).unwrap();
    let e2 = Calibration::load(&path).unwrap_err().to_string();
    assert!(e2.contains("μ differs"), "{e2}");
    // The reference given twice over (hostile pass 18): μ unchanged, every image counted twice.
    let (a, b) = json_part(&text, "image_means");
    let twice = serde_json::to_string(&[means.clone(), means].concat()).unwrap();
    let mut edited = format!("{}{twice}{}", &text[..a], &text[b..]);
    let (a, b) = json_part(&edited, "image_m_in");
    let twice = serde_json::to_string(&[m_in.clone(), m_in].concat()).unwrap();
    edited = format!("{}{twice}{}", &edited[..a], &edited[b..]);
    let edited = edited.replacen(
        "\"reference\":{\"size\":30,",
        "\"reference\":{\"size\":60,",
        1,
    );
    std::fs::write(&path, common::resign(&edited)).unwrap();
    let e3 = Calibration::load(&path).unwrap_err().to_string();
    assert!(e3.contains("more than once"), "{e3}");
    // The untouched file loads.
    std::fs::write(&path, common::resign(&text)).unwrap();
    assert!(Calibration::load(&path).is_ok());
}
