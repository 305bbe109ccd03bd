//! SimCLRv2's encoders against the reference PyTorch implementation (the converter's `resnet.py`): parameter
//! counts of the 13 released architectures, and the outputs of tiny networks written by
//! `fixtures/make_simclrv2_fixture.py` (eval mode), loaded from the converter's layout.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use cadet_core::Embedder;
use cadet_model::{
    BurnEmbedder, Error, FeatureModel, LarsConfig, Normalization, RELEASED_SIMCLRV2, SK_RATIO,
    SimClrConfig, SimClrTrainer, SimClrV2Config, StopAfter, TrainConfig, ViewPairs, load_simclrv2,
};
use ndarray::Array4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
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

const CASES: [&str; 3] = ["r50_sk1_base2", "r50_sk0_base1_2x", "r18_sk1_base4"];

#[test]
fn parameter_counts_equal_the_reference_for_every_released_checkpoint() {
    let counts = json("simclrv2_param_counts.json");
    for name in RELEASED_SIMCLRV2 {
        let want = &counts[name];
        let config = SimClrV2Config::from_name(name)
            .unwrap()
            .with_num_classes(Some(1000));
        assert_eq!(
            config.num_params().unwrap() as u64,
            want["resnet"],
            "{name}"
        );
        assert_eq!(config.head_num_params(128) as u64, want["head"], "{name}");
        assert_eq!(config.feature_dim() as u64, want["feature_dim"], "{name}");
    }
}

#[test]
fn built_networks_have_the_counted_parameters() {
    let device = Device::flex();
    for depth in [18, 50, 101, 152] {
        for sk_ratio in [0.0, SK_RATIO] {
            let config = SimClrV2Config::new(depth)
                .with_base_width(2)
                .with_sk_ratio(sk_ratio)
                .with_num_classes(Some(3));
            let net = config.init(&device).unwrap();
            let values = config.num_params().unwrap() + config.num_running_stats().unwrap();
            assert_eq!(net.num_params(), values, "{config:?}");
        }
    }
    // At full size too (r50_1x_sk1: 37.3 M parameters, 150 MB).
    let config = SimClrV2Config::from_name("r50_1x_sk1")
        .unwrap()
        .with_num_classes(Some(1000));
    assert_eq!(config.num_params().unwrap(), 37_264_584);
    assert_eq!(
        config.init(&device).unwrap().num_params(),
        37_264_584 + config.num_running_stats().unwrap()
    );
}

#[test]
fn released_layout_gives_the_reference_outputs() {
    let device = Device::flex();
    for case in CASES {
        let c = json(&format!("simclrv2_{case}.json"));
        let path = fixtures().join(format!("simclrv2_{case}.safetensors"));
        let config = SimClrV2Config::from_file(&path).unwrap();
        assert_eq!(
            (config.depth, config.width_multiplier, config.base_width),
            (
                c["depth"].as_u64().unwrap() as usize,
                c["width_multiplier"].as_u64().unwrap() as usize,
                c["base_width"].as_u64().unwrap() as usize
            ),
            "{case}"
        );
        assert_eq!(config.sk_ratio, c["sk_ratio"].as_f64().unwrap(), "{case}");
        let config = config.with_num_classes(Some(c["classes"].as_u64().unwrap() as usize));
        let (net, report) = config.load(&path, "", &device).unwrap();
        assert!(
            report
                .skipped
                .iter()
                .all(|k| k.ends_with("num_batches_tracked") || k.starts_with("head.")),
            "{:?}",
            report.skipped
        );
        let x = Tensor::<4>::from_data(
            TensorData::new(floats(&c["input"]), [2, 3, 20, 20]),
            &device,
        );
        let features: Vec<f32> = net
            .forward_features(x.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_close(
            &features,
            &floats(&c["features"]),
            &format!("{case} features"),
        );
        let logits: Vec<f32> = net
            .forward(x.clone())
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_close(&logits, &floats(&c["logits"]), &format!("{case} logits"));

        // The whole model, head included; the architecture from the file.
        let (model, _) = load_simclrv2(&path, &device).unwrap();
        assert_eq!(model.encoder.feature_dim(), config.feature_dim());
        let projections: Vec<f32> = model
            .head
            .forward(model.encoder.forward_features(x))
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_close(
            &projections,
            &floats(&c["projections"]),
            &format!("{case} projections"),
        );
    }
}

#[test]
fn the_embedder_takes_images_in_unit_range_unnormalised() {
    let device = Device::flex();
    let c = json("simclrv2_r50_sk1_base2.json");
    let path = fixtures().join("simclrv2_r50_sk1_base2.safetensors");
    let (net, _) = SimClrV2Config::from_file(&path)
        .unwrap()
        .load(&path, "", &device)
        .unwrap();
    let embedder = BurnEmbedder::new(net, device, Normalization::simclrv2(), "r50_1x_sk1_w2")
        .with_batch_size(1);
    let images = Array4::from_shape_vec((2, 3, 20, 20), floats(&c["input"])).unwrap();
    let features = embedder.embed(images.view()).unwrap();
    assert_eq!(features.dim(), (2, 64));
    assert_close(
        features.as_slice().unwrap(),
        &floats(&c["features"]),
        "embedder features",
    );
}

/// A copy of `src` in `dir` whose safetensors header `edit` changed (the data block is kept as is).
fn edited(
    src: &Path,
    dir: &Path,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    edit(&mut header);
    let mut text = serde_json::to_vec(&header).unwrap();
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + len..]);
    let path = dir.join(src.file_name().unwrap());
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn missing_unknown_and_misshapen_tensors_are_errors_naming_the_key() {
    let device = Device::flex();
    let path = fixtures().join("simclrv2_r50_sk1_base2.safetensors");
    let config = SimClrV2Config::from_file(&path).unwrap();
    // Selective kernels off: the stem's first convolution is 7 × 7, the file's 3 × 3.
    let plain = config.clone().with_sk_ratio(0.0);
    match plain.load(&path, "", &device) {
        Err(Error::ShapeMismatch {
            key, expected, got, ..
        }) => {
            assert_eq!(key, "net.0.0.weight");
            assert_eq!((expected, got), (vec![2, 3, 7, 7], vec![1, 3, 3, 3]));
        }
        other => panic!("{other:?}"),
    }
    // A prefix the file does not have.
    assert!(matches!(
        config.load(&path, "module.", &device),
        Err(Error::MissingTensor { key, .. }) if key == "module.net.0.0.weight"
    ));
    // A renamed tensor is missing under its name.
    let dir = tempfile::tempdir().unwrap();
    let renamed = edited(&path, dir.path(), |h| {
        let v = h
            .remove("net.2.blocks.1.net.2.mixing_conv.2.weight")
            .unwrap();
        h.insert("net.2.blocks.1.net.2.mixing.weight".into(), v);
        // (Tensors are renamed rather than removed: safetensors files must cover their data block.)
    });
    assert!(matches!(
        config.load(&renamed, "", &device),
        Err(Error::MissingTensor { key, .. }) if key == "net.2.blocks.1.net.2.mixing_conv.2.weight"
    ));
    // An extra tensor the architecture has no place for.
    let extra = edited(&path, dir.path(), |h| {
        let v = h["net.0.0.weight"].clone();
        h.insert("net.5.blocks.0.net.0.weight".into(), v);
    });
    assert!(matches!(
        config.load(&extra, "", &device),
        Err(Error::UnexpectedTensor { key, .. }) if key == "net.5.blocks.0.net.0.weight"
    ));
    // The head is required when loading the whole model, not the encoder alone.
    let headless = edited(&path, dir.path(), |h| {
        let v = h.remove("head.layers.0.weight").unwrap();
        h.insert("head.layers.9.weight".into(), v);
    });
    assert!(config.load(&headless, "", &device).is_ok());
    assert!(matches!(
        config.load_simclr(&headless, "", &device),
        Err(Error::MissingTensor { key, .. }) if key == "head.layers.0.weight"
    ));
    // Another flattening: every key under a prefix.
    let prefixed = edited(&path, dir.path(), |h| {
        *h = std::mem::take(h)
            .into_iter()
            .map(|(k, v)| {
                if k == "__metadata__" {
                    (k, v)
                } else {
                    (format!("model.{k}"), v)
                }
            })
            .collect();
    });
    assert!(config.load_simclr(&prefixed, "model.", &device).is_ok());
    assert!(matches!(
        config.load(dir.path().join("nothing.safetensors"), "", &device),
        Err(Error::Weights { .. })
    ));
}

/// A flag that names the architecture is read exactly (a typo such as `sk10` used to run `sk1`), keeps the file's
/// base width unless it names one (it used to drop it, and the load failed on shapes), and a header that holds
/// `__metadata__` twice is refused (the last copy won).
#[test]
fn architecture_flags_are_exact_and_keep_the_file_base_width() {
    let device = Device::flex();
    let src = fixtures().join("simclrv2_r18_sk1_base4.safetensors");
    let config = SimClrV2Config::from_file_as(&src, "r18_1x_sk1").unwrap();
    assert_eq!(config.base_width, 4);
    assert!(config.load(&src, "", &device).is_ok());
    assert_eq!(
        SimClrV2Config::from_file_as(&src, "r18_1x_sk1_w8")
            .unwrap()
            .base_width,
        8
    );
    for typo in [
        "r18_1x_sk10",
        "r18_1x_sk1x",
        "r18_1x_sk1.safetensors",
        "r18_1x_sk1_w",
    ] {
        assert!(SimClrV2Config::from_file_as(&src, typo).is_err(), "{typo}");
    }

    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&src).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + len]).unwrap();
    let at = header.find("\"__metadata__\"").unwrap();
    let doubled = format!(
        "{{\"__metadata__\":{{\"arch\":\"r50_1x_sk1\"}},{}",
        &header[at..]
    );
    // Data offsets count from the end of the header: a longer header moves nothing.
    let mut out = (doubled.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(doubled.as_bytes());
    out.extend_from_slice(&bytes[8 + len..]);
    let path = dir.path().join("doubled.safetensors");
    std::fs::write(&path, out).unwrap();
    let e = SimClrV2Config::from_file(&path).unwrap_err().to_string();
    assert!(e.contains("__metadata__") && e.contains("twice"), "{e}");
}

#[test]
fn without_metadata_the_file_name_gives_the_architecture() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("simclrv2_r50_sk1_base2.safetensors");
    let bare = edited(&src, dir.path(), |h| {
        h.remove("__metadata__");
    });
    let named = dir.path().join("r50_1x_sk1_ema.safetensors");
    std::fs::rename(&bare, &named).unwrap();
    let config = SimClrV2Config::from_file(&named).unwrap();
    assert_eq!(config, SimClrV2Config::from_name("r50_1x_sk1").unwrap());
    // The name says nothing of the fixture's base width of 2: the released 64 is refused by shape, the
    // override loads.
    assert!(matches!(
        config.load(&named, "", &device),
        Err(Error::ShapeMismatch { key, .. }) if key == "net.0.0.weight"
    ));
    assert!(config.with_base_width(2).load(&named, "", &device).is_ok());
    let unnamed = dir.path().join("weights.safetensors");
    std::fs::rename(&named, &unnamed).unwrap();
    assert!(matches!(
        SimClrV2Config::from_file(&unnamed),
        Err(Error::InvalidConfig { name: "arch", .. })
    ));
}

/// Eight 8 × 8 images; the two views of an image are it with different seeded noise.
struct Noise;

impl ViewPairs for Noise {
    fn len(&self) -> usize {
        8
    }
    fn pairs(
        &self,
        indices: &[usize],
        seed: u64,
    ) -> cadet_model::Result<(Array4<f32>, Array4<f32>)> {
        let view = |salt: u64| {
            Array4::from_shape_fn((indices.len(), 3, 8, 8), |(i, c, y, x)| {
                let h = (seed ^ salt)
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(
                        (indices[i] * 997 + c * 61 + y * 8 + x) as u64 * 1442695040888963407,
                    )
                    >> 40;
                (h % 1000) as f32 / 1000.0
            })
        };
        Ok((view(1), view(2)))
    }
}

fn simclrv2_trainer() -> SimClrTrainer {
    // Base width 4: at 2 the selective-kernel stem is one channel wide, and one dead ReLU collapses it.
    let model = SimClrConfig::new(
        SimClrV2Config::new(50)
            .with_base_width(4)
            .with_sk_ratio(SK_RATIO)
            .with_sk_min_width(4)
            .into(),
    )
    .with_hidden(64)
    .with_output(16);
    let config = TrainConfig::new(4, 2, LarsConfig::new())
        .with_base_lr(Some(0.05))
        .with_seed(1);
    SimClrTrainer::new(model, config, Normalization::identity(), &Device::flex(), 8).unwrap()
}

fn steps(n: u64) -> StopAfter {
    StopAfter {
        steps: Some(n),
        time: None,
    }
}

#[test]
fn the_trainer_trains_and_resumes_a_simclrv2_encoder() {
    let mut whole = simclrv2_trainer();
    whole
        .train(&Noise, &cadet_core::NoProgress, StopAfter::default(), None)
        .unwrap();
    let losses = whole.state().losses.clone();
    assert_eq!(losses.len(), 4);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    // Two steps, a checkpoint, then the rest from it: the checkpoint's settings name the SimCLRv2 encoder and
    // its weights continue exactly.
    let dir = tempfile::tempdir().unwrap();
    let mut first = simclrv2_trainer();
    first
        .train(
            &Noise,
            &cadet_core::NoProgress,
            steps(2),
            Some((dir.path(), 1)),
        )
        .unwrap();
    let mut resumed = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    assert!(matches!(
        resumed.model().encoder,
        cadet_model::Encoder::SimClrV2(_)
    ));
    resumed
        .train(&Noise, &cadet_core::NoProgress, StopAfter::default(), None)
        .unwrap();
    assert_eq!(resumed.state().losses, losses);
}

/// The tensors of a float32 safetensors file: key → (shape, values).
fn read_tensors(path: &Path) -> std::collections::BTreeMap<String, (Vec<u64>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let data = &bytes[8 + len..];
    header
        .into_iter()
        .filter(|(k, v)| k != "__metadata__" && v["dtype"] == "F32")
        .map(|(k, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            let [a, b] = [0, 1].map(|i| v["data_offsets"][i].as_u64().unwrap() as usize);
            let values = data[a..b]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (k, (shape, values))
        })
        .collect()
}

#[test]
fn tensorflow_checkpoints_convert_to_the_converter_layout() {
    let device = Device::flex();
    // The r50_sk1_base2 fixture's weights, saved by TensorFlow under the released checkpoints' names.
    let prefix = fixtures().join("simclrv2_tf/r50_1x_sk1_w2/model.ckpt-1");
    let config = SimClrV2Config::from_name("r50_1x_sk1")
        .unwrap()
        .with_base_width(2);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("converted.safetensors");
    let written = config.convert_tf_checkpoint(&prefix, false, &out).unwrap();
    // Every tensor equals the reference's state dict, except the head's last beta, which TensorFlow lacks.
    let converted = read_tensors(&out);
    let reference = read_tensors(&fixtures().join("simclrv2_r50_sk1_base2.safetensors"));
    assert_eq!(converted.len(), written);
    for (key, (shape, values)) in &reference {
        match converted.get(key) {
            Some(got) if key == "head.layers.7.bias" => {
                assert_eq!((&got.0, got.1.iter().all(|&v| v == 0.0)), (shape, true))
            }
            Some(got) => assert_eq!((&got.0, &got.1), (shape, values), "{key}"),
            None => assert!(key.ends_with("num_batches_tracked"), "{key} not converted"),
        }
    }
    // The written file names its architecture and loads like a converted .pth.
    assert_eq!(SimClrV2Config::from_file(&out).unwrap(), config);
    let c = json("simclrv2_r50_sk1_base2.json");
    let (net, _) = config
        .clone()
        .with_num_classes(Some(10))
        .load(&out, "", &device)
        .unwrap();
    let x = Tensor::<4>::from_data(
        TensorData::new(floats(&c["input"]), [2, 3, 20, 20]),
        &device,
    );
    let features: Vec<f32> = net.forward_features(x).into_data().try_to_vec().unwrap();
    assert_close(&features, &floats(&c["features"]), "converted features");
    assert!(load_simclrv2(&out, &device).is_ok());

    // Another architecture is refused by the numbers of layers, another width by shape, naming the variable.
    let r101 = SimClrV2Config::from_name("r101_1x_sk1")
        .unwrap()
        .with_base_width(2);
    assert!(matches!(
        r101.convert_tf_checkpoint(&prefix, false, &out),
        Err(Error::WrongArchitecture { .. })
    ));
    assert!(matches!(
        config.clone().with_base_width(4).convert_tf_checkpoint(&prefix, false, &out),
        Err(Error::ShapeMismatch { key, .. }) if key == "base_model/conv2d/kernel"
    ));
    // No moving-average weights in this checkpoint; no checkpoint at all.
    match config.convert_tf_checkpoint(&prefix, true, &out) {
        Err(e @ Error::Weights { .. }) => assert!(
            e.to_string()
                .contains("no moving-average weights (no `ema_model/base_model/…` variable)"),
            "{e}"
        ),
        other => panic!("expected a missing-EMA error, got {other:?}"),
    }
    assert!(matches!(
        config.convert_tf_checkpoint(dir.path().join("none/model.ckpt-1"), false, &out),
        Err(Error::Io { .. })
    ));
}

/// Metadata that contradicts itself (an `arch` naming base width 8, a `base_width` of 4) is refused, naming
/// both (hostile pass 17: `_w4000000` beside `base_width` 2 was read silently as 2).
#[test]
fn metadata_that_contradicts_itself_is_refused() {
    let src = fixtures().join("simclrv2_r18_sk1_base4.safetensors");
    let bytes = std::fs::read(&src).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + len]).unwrap();
    assert!(header.contains("\"arch\":\"r18_1x_sk1\""), "{header}");
    let edited = header.replacen("\"arch\":\"r18_1x_sk1\"", "\"arch\":\"r18_1x_sk1_w8\"", 1);
    let mut out = (edited.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(edited.as_bytes());
    out.extend_from_slice(&bytes[8 + len..]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contradicts.safetensors");
    std::fs::write(&path, out).unwrap();
    let e = SimClrV2Config::from_file(&path).unwrap_err().to_string();
    assert!(
        e.contains("r18_1x_sk1_w8") && e.contains("base_width says 4"),
        "{e}"
    );
    // Agreeing metadata loads.
    assert_eq!(SimClrV2Config::from_file(&src).unwrap().base_width, 4);
}
