//! Views per second on one core: `cadet_eval` at 32 px (32 px inputs) and 224 px (256 px inputs), and
//! `simclr_train` at 224 px. Side by side with Pillow + NumPy: `scripts/bench_vs_pillow.py` (docs/performance.md).

use std::hint::black_box;

use cadet::augment::{Transform, cadet_eval, image_rng, simclr_train};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array3;

fn image(side: usize) -> Array3<f32> {
    Array3::from_shape_fn((3, side, side), |(c, y, x)| {
        ((c * 37 + y * 11 + x * 5) % 251) as f32 / 250.0
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("views_one_core");
    group.throughput(Throughput::Elements(1));
    let cases: [(&str, usize, Box<dyn Transform>); 3] = [
        ("cadet_eval_32_from_32", 32, Box::new(cadet_eval(32))),
        ("cadet_eval_224_from_256", 256, Box::new(cadet_eval(224))),
        (
            "simclr_train_224_from_256",
            256,
            Box::new(simclr_train(224, 1.0)),
        ),
    ];
    for (name, side, t) in cases {
        let img = image(side);
        let mut rng = image_rng(0, 0);
        group.bench_function(name, |b| {
            b.iter(|| t.apply(black_box(img.view()), &mut rng).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
