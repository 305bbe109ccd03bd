//! Architectures: shapes, feature sizes and parameter counts against torchvision's and akamaster's models.

use burn::prelude::*;
use cadet_core::Embedder;
use cadet_model::{
    BurnEmbedder, CifarResNetConfig, FeatureModel, Normalization, ProjectionHeadConfig,
    ResNetConfig,
};

fn images(n: usize, side: usize) -> Tensor<4> {
    Tensor::<4>::ones([n, 3, side, side], &Device::flex())
}

#[test]
fn resnet_feature_sizes_and_shapes() {
    let device = Device::flex();
    for (depth, dim) in [(18, 512), (34, 512), (50, 2048)] {
        let net = ResNetConfig::new(depth)
            .with_cifar_stem(true)
            .with_num_classes(Some(10))
            .init(&device)
            .unwrap();
        assert_eq!(net.feature_dim(), dim);
        assert_eq!(net.forward_features(images(2, 8)).dims(), [2, dim]);
        assert_eq!(net.forward(images(2, 8)).unwrap().dims(), [2, 10]);
    }
    let wide = ResNetConfig::new(18)
        .with_width_multiplier(2)
        .init(&device)
        .unwrap();
    assert_eq!(wide.forward_features(images(1, 32)).dims(), [1, 1024]);
    let narrow = ResNetConfig::new(18)
        .with_cifar_stem(true)
        .with_base_width(16)
        .init(&device)
        .unwrap();
    assert_eq!(narrow.forward_features(images(2, 8)).dims(), [2, 128]);
    assert!(
        ResNetConfig::new(18)
            .with_base_width(0)
            .init(&device)
            .is_err()
    );
    assert!(ResNetConfig::new(19).init(&device).is_err());
    assert!(
        ResNetConfig::new(18)
            .with_width_multiplier(0)
            .init(&device)
            .is_err()
    );
}

#[test]
fn parameter_counts_match_the_reference_implementations() {
    let device = Device::flex();
    // torchvision resnet18 without fc has 11,176,512 parameters; Burn also counts the BN running mean and
    // variance (2 × 4,800 channels).
    let r18 = ResNetConfig::new(18).init(&device).unwrap();
    assert_eq!(r18.num_params(), 11_176_512 + 9_600);
    // torchvision resnet50 without fc: 23,508,032, plus 2 × 26,560 running statistics.
    let r50 = ResNetConfig::new(50).init(&device).unwrap();
    assert_eq!(r50.num_params(), 23_508_032 + 53_120);
    // akamaster's ResNet-20: 269,722 parameters, plus 2 × 688 running statistics.
    let r20 = CifarResNetConfig::new(20).init(&device).unwrap();
    assert_eq!(r20.num_params(), 269_722 + 1_376);
    assert_eq!(r20.forward(images(3, 32)).dims(), [3, 10]);
    assert!(CifarResNetConfig::new(21).init(&device).is_err());
    let head = ProjectionHeadConfig::new(2048).init(&device);
    // 2 · 2048² + 2048 · 128 weights, BN on 2048 + 2048 + 128 channels (4 values each).
    assert_eq!(
        head.num_params(),
        2 * 2048 * 2048 + 2048 * 128 + 4 * (2048 + 2048 + 128)
    );
}

#[test]
fn classifiers_and_embedders_run_in_inference_mode_on_autodiff_devices() {
    use cadet_model::{Classifier, Normalized};
    // Random weights with fresh running statistics (mean 0, variance 1): the inference path differs from the
    // batch-statistics path, so a wrapper left in training mode gives other logits.
    let plain = Device::flex();
    plain.seed(5);
    let net = CifarResNetConfig::new(20).init(&plain).unwrap();
    let x = Tensor::<4>::random(
        [4, 3, 16, 16],
        burn::tensor::Distribution::Uniform(0.0, 1.0),
        &plain,
    );
    // Burn draws weights lazily, per copy: draw them once before copying the network.
    let _ = net.forward(x.clone());
    let reference =
        Normalized::new(net.clone(), Normalization::imagenet(), plain.clone()).logits(x.clone());
    let ad = plain.clone().autodiff();
    let on_ad = Normalized::new(net.fork(&ad), Normalization::imagenet(), ad.clone());
    let logits = on_ad.logits(Tensor::from_data(x.into_data(), &ad));
    let diff: f32 = (Tensor::<2>::from_data(logits.into_data(), &plain) - reference)
        .abs()
        .max()
        .into_scalar();
    assert!(diff < 1e-4, "{diff}");
}

#[test]
fn embedder_batches_and_checks_shapes() {
    let device = Device::flex();
    let net = CifarResNetConfig::new(20).init(&device).unwrap();
    let embedder = BurnEmbedder::new(net, device, Normalization::imagenet(), "resnet20-random")
        .with_batch_size(3);
    let imgs = ndarray::Array4::from_shape_fn((7, 3, 16, 16), |(i, c, y, x)| {
        ((i + c + y * x) % 9) as f32 / 9.0
    });
    let all = embedder.embed(imgs.view()).unwrap();
    assert_eq!(all.dim(), (7, 64));
    // Batching does not change features (inference-mode batch norm).
    let one = embedder
        .embed(imgs.slice(ndarray::s![4..5, .., .., ..]))
        .unwrap();
    for (a, b) in one.row(0).iter().zip(all.row(4).iter()) {
        assert!((a - b).abs() < 1e-4);
    }
    assert_eq!(embedder.name(), "resnet20-random");
    let gray = ndarray::Array4::<f32>::zeros((1, 1, 16, 16));
    assert!(embedder.embed(gray.view()).is_err());
}
