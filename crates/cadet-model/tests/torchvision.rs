//! Import of torchvision-layout weights: a ResNet-18 and a ResNet-50 (tiny widths) written by
//! `fixtures/make_torchvision_fixture.py` with torchvision's key names, checked against that script's own NumPy
//! forward pass (eval mode).

use burn::prelude::*;
use cadet_model::{Error, FeatureModel, ResNetConfig};

struct Case {
    depth: usize,
    base_width: usize,
    classes: usize,
    prefix: String,
    input: Vec<f32>,
    features: Vec<f32>,
    logits: Vec<f32>,
}

fn case(depth: usize) -> (Case, std::path::PathBuf) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("torchvision_resnet{depth}.json"))).unwrap(),
    )
    .unwrap();
    let floats = |k: &str| -> Vec<f32> {
        json[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    let c = Case {
        depth,
        base_width: json["base_width"].as_u64().unwrap() as usize,
        classes: json["classes"].as_u64().unwrap() as usize,
        prefix: json["prefix"].as_str().unwrap().to_string(),
        input: floats("input"),
        features: floats("features"),
        logits: floats("logits"),
    };
    (
        c,
        dir.join(format!("torchvision_resnet{depth}.safetensors")),
    )
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(0.0f32, |a, b| a.max(b.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale.max(1.0),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn torchvision_weights_give_the_reference_outputs() {
    let device = Device::flex();
    for depth in [18, 50] {
        let (c, path) = case(depth);
        let net = ResNetConfig::new(c.depth)
            .with_base_width(c.base_width)
            .with_num_classes(Some(c.classes))
            .init(&device)
            .unwrap();
        let (net, report) = net.load_torchvision(&path, &c.prefix).unwrap();
        // Everything but `num_batches_tracked` (one per batch norm) is used.
        assert!(
            report
                .skipped
                .iter()
                .all(|k| k.ends_with("num_batches_tracked")),
            "{:?}",
            report.skipped
        );
        let x = Tensor::<4>::from_data(TensorData::new(c.input.clone(), [2, 3, 16, 16]), &device);
        let features: Vec<f32> = net
            .forward_features(x.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_close(&features, &c.features, &format!("ResNet-{depth} features"));
        let logits: Vec<f32> = net.forward(x).unwrap().into_data().try_to_vec().unwrap();
        assert_close(&logits, &c.logits, &format!("ResNet-{depth} logits"));
    }
}

#[test]
fn an_encoder_without_classifier_leaves_fc_unused() {
    let device = Device::flex();
    let (c, path) = case(18);
    let net = ResNetConfig::new(18)
        .with_base_width(c.base_width)
        .init(&device)
        .unwrap();
    let (_, report) = net.load_torchvision(&path, "").unwrap();
    assert!(
        report.skipped.contains(&"fc.weight".to_string()),
        "{:?}",
        report.skipped
    );
}

#[test]
fn mismatches_are_errors() {
    let device = Device::flex();
    let (c, path) = case(50);
    // Wrong prefix: nothing found.
    let net = ResNetConfig::new(50)
        .with_base_width(c.base_width)
        .init(&device)
        .unwrap();
    assert!(matches!(
        net.clone().load_torchvision(&path, ""),
        Err(Error::Weights { .. })
    ));
    // Wrong width: shapes differ.
    let wide = ResNetConfig::new(50)
        .with_base_width(4)
        .init(&device)
        .unwrap();
    assert!(matches!(
        wide.load_torchvision(&path, &c.prefix),
        Err(Error::ShapeMismatch { key, .. }) if key == "conv1.weight"
    ));
    // Wrong depth: a ResNet-18 file for a ResNet-50 (the first tensor that does not fit).
    let (_, path18) = case(18);
    let e = net.clone().load_torchvision(&path18, "");
    assert!(matches!(e, Err(Error::ShapeMismatch { .. })), "{e:?}");
    assert!(matches!(
        net.load_torchvision("no/such/file.safetensors", ""),
        Err(Error::Weights { .. })
    ));
}
