//! Imported weights are checked against the model they are loaded into: architecture metadata, shapes, and
//! tensors the model has no place for. (ResNet-32 weights used to load into a ResNet-20 silently.)

use burn::prelude::*;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use cadet_model::{CifarResNetConfig, Error};

/// A CIFAR ResNet of `depth` saved in PyTorch's layout, with `arch` in the metadata when given.
fn save(depth: usize, arch: Option<&str>, path: &std::path::Path) {
    let net = CifarResNetConfig::new(depth).init(&Device::flex()).unwrap();
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .overwrite(true);
    if let Some(arch) = arch {
        store = store.metadata("arch", arch);
    }
    net.save_into(&mut store).unwrap();
}

fn load(depth: usize, path: &std::path::Path) -> cadet_model::Result<()> {
    CifarResNetConfig::new(depth)
        .init(&Device::flex())?
        .load_safetensors(path)
        .map(|_| ())
}

#[test]
fn weights_of_another_depth_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (r20, r32, r32_bare) = (
        dir.path().join("r20.safetensors"),
        dir.path().join("r32.safetensors"),
        dir.path().join("r32-bare.safetensors"),
    );
    save(20, Some("resnet20"), &r20);
    save(32, Some("resnet32"), &r32);
    save(32, None, &r32_bare);
    load(20, &r20).unwrap();
    load(32, &r32).unwrap();
    match load(20, &r32) {
        Err(e @ Error::WrongArchitecture { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("resnet32") && text.contains("resnet20"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Without metadata, the deeper network's extra blocks give it away.
    match load(20, &r32_bare) {
        Err(e @ Error::Weights { .. }) => assert!(e.to_string().contains("layer1.3"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A shallower file lacks tensors.
    assert!(matches!(
        load(32, &r20),
        Err(Error::WrongArchitecture { .. })
    ));
    save(20, None, &r20);
    assert!(matches!(load(32, &r20), Err(Error::Weights { .. })));
    // Not a safetensors file.
    std::fs::write(&r20, b"garbage").unwrap();
    assert!(load(20, &r20).is_err());
}

/// The pretrained files of `../shared/data` name their architecture (checked when the data is there).
#[test]
fn pretrained_files_are_checked_when_present() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/resnet-cifar10");
    let Ok(r32) = cadet_model::pretrained_weights(&dir, 32) else {
        eprintln!("no {}: skipped", dir.display());
        return;
    };
    assert!(matches!(
        load(20, &r32),
        Err(Error::WrongArchitecture { .. })
    ));
}

/// A prefix that no tensor has is an error: it was ignored, and the file's unprefixed tensors (a plain encoder
/// beside an `ema.` copy, say) loaded in place of those asked for.
#[test]
fn a_prefix_no_tensor_has_is_refused() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/torchvision_resnet18.safetensors"
    );
    let net = || {
        cadet_model::ResNetConfig::new(18)
            .with_base_width(4)
            .init(&Device::flex())
            .unwrap()
    };
    assert!(net().load_torchvision(fixture, "").is_ok());
    for typo in ["ema.", "conv1_", "zzz."] {
        let e = net()
            .load_torchvision(fixture, typo)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no tensor name starts with the prefix"),
            "{typo}: {e}"
        );
    }
    // Part of a name is not a prefix (`layer` of `layer1.`): refused, not stripped into `1.0.conv1.weight`.
    let e = net()
        .load_torchvision(fixture, "layer")
        .unwrap_err()
        .to_string();
    assert!(e.contains("ends inside the name"), "{e}");
}

/// With a prefix, only the tensors under it load, the same ones on every run: in a file holding a plain encoder
/// and an `ema.` copy, stripping the prefix left two tensors per name and which loaded changed from run to run.
#[test]
fn a_prefix_loads_its_own_tensors_and_only_them() {
    use cadet_model::FeatureModel;
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/torchvision_resnet18.safetensors"
    );
    let bytes = std::fs::read(fixture).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let data = &bytes[8 + len..];
    // The plain tensors as they are, then an `ema.` copy of each F32 tensor with every value doubled.
    let mut out_header = header.clone();
    let mut out_data = data.to_vec();
    for (name, info) in &header {
        if name == "__metadata__" || info["dtype"] != "F32" {
            continue;
        }
        let [a, b] = [0, 1].map(|i| info["data_offsets"][i].as_u64().unwrap() as usize);
        let start = out_data.len();
        for c in data[a..b].chunks_exact(4) {
            let v = 2.0 * f32::from_le_bytes(c.try_into().unwrap());
            out_data.extend_from_slice(&v.to_le_bytes());
        }
        let mut copy = info.clone();
        copy["data_offsets"] = serde_json::json!([start, out_data.len()]);
        out_header.insert(format!("ema.{name}"), copy);
    }
    let text = serde_json::Value::Object(out_header).to_string();
    let mut file = (text.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(text.as_bytes());
    file.extend_from_slice(&out_data);
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("both.safetensors");
    std::fs::write(&both, file).unwrap();

    let device = Device::flex();
    let net = || {
        cadet_model::ResNetConfig::new(18)
            .with_base_width(4)
            .init(&device)
            .unwrap()
    };
    let x = Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Default, &device);
    let features = |prefix: &str| -> Vec<f32> {
        let (loaded, _) = net().load_torchvision(&both, prefix).unwrap();
        loaded
            .forward_features(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let plain = features("");
    let ema = features("ema.");
    assert_ne!(plain, ema, "the ema copy differs from the plain encoder");
    for _ in 0..4 {
        assert_eq!(features("ema."), ema, "the same tensors on every run");
        assert_eq!(features("ema"), ema);
    }
}

/// A torchvision-layout file whose metadata names another ResNet is refused before any tensor is read.
#[test]
fn torchvision_files_naming_another_resnet_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r50.safetensors");
    let header = br#"{"__metadata__":{"arch":"resnet50"}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    std::fs::write(&path, bytes).unwrap();
    let net = cadet_model::ResNetConfig::new(18)
        .init(&Device::flex())
        .unwrap();
    assert_eq!(net.arch(), "resnet18");
    match net.load_torchvision(&path, "") {
        Err(Error::WrongArchitecture {
            expected, found, ..
        }) => assert_eq!(
            (expected.as_str(), found.as_str()),
            ("resnet18", "resnet50")
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("loaded"),
    }
    let r50 = cadet_model::ResNetConfig::new(50)
        .init(&Device::flex())
        .unwrap();
    assert_eq!(r50.arch(), "resnet50");
}

/// Weights of another width (or classifier) are refused with the first tensor that does not fit and both shapes as numbers,
/// not Burn's debug dump of every mismatch (`Import errors: [ShapeMismatch { path: …, expected: Shape { dims: …`,
/// 14 KB for a ResNet-50), for torchvision files and CIFAR ResNets alike.
#[test]
fn weights_of_another_width_name_the_first_tensor_and_both_shapes() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/torchvision_resnet18.safetensors"
    );
    let wide = cadet_model::ResNetConfig::new(18)
        .init(&Device::flex())
        .unwrap();
    match wide.load_torchvision(fixture, "") {
        Err(e @ Error::ShapeMismatch { .. }) => {
            let message = e.to_string();
            assert!(
                message.ends_with(
                    "tensor `conv1.weight` has shape [4, 3, 7, 7], the model expects [64, 3, 7, 7]"
                ),
                "{message}"
            );
        }
        Err(e) => panic!("expected a shape mismatch, got {e}"),
        Ok(_) => panic!("a base-width-4 file loaded into a base-width-64 ResNet"),
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("narrow.safetensors");
    let net = CifarResNetConfig::new(20)
        .with_num_classes(5)
        .init(&Device::flex())
        .unwrap();
    let mut store = SafetensorsStore::from_file(&path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .overwrite(true);
    net.save_into(&mut store).unwrap();
    let default = CifarResNetConfig::new(20).init(&Device::flex()).unwrap();
    match default.load_safetensors(&path) {
        Err(e @ Error::ShapeMismatch { .. }) => assert!(
            e.to_string().contains("`linear.weight` has shape [64, 5]")
                && !e.to_string().contains("Shape {"),
            "{e}"
        ),
        Err(e) => panic!("expected a shape mismatch, got {e}"),
        Ok(_) => panic!("a 5-class ResNet-20 loaded into a 10-class one"),
    }
}

/// `load_weights` builds the same networks as the family loaders, with the same reports, and passes their
/// errors through.
#[test]
fn load_weights_is_the_family_loaders_behind_one_entry() {
    use cadet_model::{
        FeatureModel, LoadedModel, ResNetConfig, SimClrV2Config, WeightFamily, load_weights,
    };
    let device = Device::flex();
    let features = |m: &dyn Fn(Tensor<4>) -> Tensor<2>, size: usize| -> Vec<f32> {
        let x = Tensor::<4>::from_data(
            TensorData::new(
                (0..2 * 3 * size * size)
                    .map(|i| ((i * 37) % 101) as f32 / 101.0)
                    .collect::<Vec<f32>>(),
                [2, 3, size, size],
            ),
            &device,
        );
        m(x).into_data().try_to_vec::<f32>().unwrap()
    };

    // CIFAR ResNet: every tensor loaded, PyTorch's counters (none in Burn's files) aside.
    let dir = tempfile::tempdir().unwrap();
    let r20 = dir.path().join("r20.safetensors");
    save(20, Some("resnet20"), &r20);
    let direct = CifarResNetConfig::new(20)
        .init(&device)
        .unwrap()
        .load_safetensors(&r20)
        .unwrap();
    let (model, report) = load_weights(
        &r20,
        &WeightFamily::CifarResNet(CifarResNetConfig::new(20)),
        &device,
    )
    .unwrap();
    let LoadedModel::CifarResNet(via) = model else {
        panic!("a CIFAR ResNet")
    };
    assert_eq!(
        features(&|x| via.forward_features(x), 32),
        features(&|x| direct.forward_features(x), 32)
    );
    assert!(report.loaded > 0 && report.skipped.is_empty(), "{report:?}");
    // A family of another depth: the loader's own error.
    assert!(matches!(
        load_weights(
            &r20,
            &WeightFamily::CifarResNet(CifarResNetConfig::new(32)),
            &device
        ),
        Err(Error::WrongArchitecture { .. })
    ));

    // torchvision: the fixture's ResNet-18 without classifier leaves `fc` aside, as `load_torchvision` does.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tv = fixtures.join("torchvision_resnet18.safetensors");
    // The fixture is a ResNet-18 of base width 4.
    let (direct, direct_report) = ResNetConfig::new(18)
        .with_base_width(4)
        .init(&device)
        .unwrap()
        .load_torchvision(&tv, "")
        .unwrap();
    let family = WeightFamily::Torchvision {
        config: ResNetConfig::new(18).with_base_width(4),
        prefix: String::new(),
    };
    let (model, report) = load_weights(&tv, &family, &device).unwrap();
    let LoadedModel::ResNet(via) = model else {
        panic!("a ResNet")
    };
    assert_eq!(report, direct_report);
    assert_eq!(
        features(&|x| via.forward_features(x), 32),
        features(&|x| direct.forward_features(x), 32)
    );

    // SimCLRv2: the architecture read from the file, as `load_simclrv2` does.
    let sv2 = fixtures.join("simclrv2_r50_sk1_base2.safetensors");
    let (direct, direct_report) = cadet_model::load_simclrv2(&sv2, &device).unwrap();
    let (model, report) = load_weights(
        &sv2,
        &WeightFamily::SimClrV2 {
            config: None,
            prefix: String::new(),
        },
        &device,
    )
    .unwrap();
    let LoadedModel::SimClr(via) = model else {
        panic!("a SimCLR model")
    };
    assert_eq!(report, direct_report);
    assert_eq!(
        features(&|x| via.encoder.forward_features(x), 32),
        features(&|x| direct.encoder.forward_features(x), 32)
    );
    // A configuration given explicitly that does not fit the file: the loader's shape error.
    let other =
        SimClrV2Config::from_file(fixtures.join("simclrv2_r18_sk1_base4.safetensors")).unwrap();
    assert!(
        load_weights(
            &sv2,
            &WeightFamily::SimClrV2 {
                config: Some(other),
                prefix: String::new(),
            },
            &device
        )
        .is_err()
    );
}
