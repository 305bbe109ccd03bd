//! The quickstart's SimCLR step and encoder inference on the CPU backend (issue 14): ResNet-18 layout, base width
//! 16, ImageNet stem, head 256-256-64 with BN, NT-Xent τ 0.2, LARS; 32 px. The step takes two views of 128 images
//! made beforehand; inference takes 512 images (the CADet scoring path: views in batches). Each of the encoder's
//! convolution shapes alone, through cadet-rs's path and Burn's (`cargo bench --bench simclr -- conv`). The
//! PyTorch side of the comparison is `scripts/cpu_vs_torch.py`; results in docs/performance.md.

use std::hint::black_box;

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module;
use burn::tensor::ops::ConvOptions;
use cadet::model::kernels::conv as cpu_conv;
use cadet::model::{FeatureModel, LarsConfig, ResNetConfig, SimClrConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn quickstart_encoder() -> ResNetConfig {
    ResNetConfig::new(18).with_base_width(16)
}

fn step(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    device.seed(0);
    let mut model = SimClrConfig::new(quickstart_encoder().into())
        .with_hidden(256)
        .with_output(64)
        .init(&device)
        .unwrap();
    let mut optim = LarsConfig::new().init().unwrap();
    let views = || Tensor::<4>::random([128, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let (v1, v2) = (views(), views());
    let mut group = c.benchmark_group("simclr_quickstart_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(128));
    group.bench_function("step_128_images_32px", |b| {
        b.iter(|| {
            let loss = model.loss(black_box(v1.clone()), v2.clone(), 0.2);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(0.3, model.clone(), grads);
        })
    });
    group.finish();
}

fn inference(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(0);
    let encoder = quickstart_encoder().init(&device).unwrap();
    let images = Tensor::<4>::random([512, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let mut group = c.benchmark_group("encoder_quickstart_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(512));
    group.bench_function("inference_512_images_32px", |b| {
        b.iter(|| {
            encoder
                .forward_features(black_box(images.clone()))
                .sum()
                .into_scalar::<f32>()
        })
    });
    group.finish();
}

/// The quickstart encoder's convolution shapes (256 views): (name, C in, side, C out, kernel, stride, padding).
const CONVS: [(&str, usize, usize, usize, usize, usize, usize); 9] = [
    ("stem_7x7s2_3to16_32px", 3, 32, 16, 7, 2, 3),
    ("3x3_16to16_8px", 16, 8, 16, 3, 1, 1),
    ("3x3s2_16to32_8px", 16, 8, 32, 3, 2, 1),
    ("3x3_32to32_4px", 32, 4, 32, 3, 1, 1),
    ("3x3s2_32to64_4px", 32, 4, 64, 3, 2, 1),
    ("3x3_64to64_2px", 64, 2, 64, 3, 1, 1),
    ("3x3s2_64to128_2px", 64, 2, 128, 3, 2, 1),
    ("3x3_128to128_1px", 128, 1, 128, 3, 1, 1),
    ("1x1s2_16to32_8px", 16, 8, 32, 1, 2, 0),
];

/// Each convolution shape of the quickstart's encoder through cadet-rs's path (`cpu_conv::conv2d`, which the
/// networks call) and through Burn's own `conv2d`: forward on the inference device, forward + backward on the
/// autodiff device.
fn convolutions(c: &mut Criterion) {
    let plain = Device::flex();
    let ad = plain.clone().autodiff();
    plain.seed(0);
    let mut group = c.benchmark_group("conv_quickstart_cpu_256_views");
    group.sample_size(20);
    for (name, cin, side, cout, k, stride, pad) in CONVS {
        let options = ConvOptions::new([stride; 2], [pad; 2], [1; 2], 1);
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<4>::random([256, cin, side, side], normal, &plain);
        let w = Tensor::<4>::random([cout, cin, k, k], normal, &plain);
        let xa = Tensor::<4>::random([256, cin, side, side], normal, &ad).require_grad();
        let wa = Tensor::<4>::random([cout, cin, k, k], normal, &ad).require_grad();
        type Conv = fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>;
        for (path, conv) in [
            ("cadet", cpu_conv::conv2d as Conv),
            ("burn", module::conv2d as Conv),
        ] {
            group.bench_function(format!("{path}/forward/{name}"), |b| {
                b.iter(|| conv(black_box(x.clone()), w.clone(), None, options.clone()).into_data())
            });
            group.bench_function(format!("{path}/forward_backward/{name}"), |b| {
                b.iter(|| {
                    let y = conv(black_box(xa.clone()), wa.clone(), None, options.clone());
                    let grads = y.sum().backward();
                    (
                        xa.grad(&grads).map(|g| g.into_data()),
                        wa.grad(&grads).map(|g| g.into_data()),
                    )
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, step, inference, convolutions);
criterion_main!(benches);
