//! The quickstart's SimCLR step and encoder inference on the CPU backend (issue 14): ResNet-18 layout, base width
//! 16, ImageNet stem, head 256-256-64 with BN, NT-Xent τ 0.2, LARS; 32 px. The step takes two views of 128 images
//! made beforehand; inference takes 512 images (the CADet scoring path: views in batches). The PyTorch side of
//! the comparison is `scripts/cpu_vs_torch.py`; results in docs/performance.md.

use std::hint::black_box;

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
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

criterion_group!(benches, step, inference);
criterion_main!(benches);
