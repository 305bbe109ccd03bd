//! PGD-50 (the paper's preset) on the CPU backend against ResNet-20 (0.27 M parameters), 8 images of 32 px per
//! iteration. Results in docs/performance.md.

use std::hint::black_box;

use burn::prelude::*;
use cadet::attacks::{Attack, Goal, Pgd};
use cadet::model::{CifarResNetConfig, Normalization, Normalized};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array4;

fn bench(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let net = CifarResNetConfig::new(20).init(&device).unwrap();
    let classifier = Normalized::new(net, Normalization::imagenet(), device);
    let images = Array4::from_shape_fn((8, 3, 32, 32), |(i, c, y, x)| {
        ((i * 13 + c * 7 + y * 3 + x) % 17) as f32 / 16.0
    });
    let labels = [0u32, 1, 2, 3, 4, 5, 6, 7];
    let mut group = c.benchmark_group("pgd50_resnet20_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(8));
    group.bench_function("8_images_32px", |b| {
        b.iter(|| {
            Pgd::paper()
                .attack(
                    &classifier,
                    black_box(images.view()),
                    &labels,
                    &Goal::Untargeted,
                    &cadet_core::NoProgress,
                )
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
