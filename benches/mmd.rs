//! Permutation MMD at the sizes of the paper's Table 1 (d = 2048, 500 permutations), and the machine's GEMM
//! rate as the yardstick for the GFLOP/s the test reaches.
//!
//! `cargo bench --bench mmd`; results and the side-by-side run against the NumPy reference are in
//! docs/performance.md.

use std::hint::black_box;

use cadet::core::linalg::{Threads, matmul};
use cadet::mmd::{
    CosineKernel, DriftMonitor, PermutationTest, PooledSample, Representation, mmd2_unbiased,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const DIM: usize = 2048;
const PERMS: usize = 500;

/// Non-negative features (like pooled ReLU activations) with a small shift between the sets.
fn features(rng: &mut ChaCha8Rng, n: usize, shift: f32) -> Array2<f32> {
    Array2::from_shape_fn((n, DIM), |_| {
        let v: f32 = StandardNormal.sample(rng);
        (v + shift).abs()
    })
}

fn permutation_test(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let test = PermutationTest::params()
        .n_perm(PERMS)
        .seed(0)
        .check()
        .unwrap();
    let mut group = c.benchmark_group("permutation_mmd_d2048_500perms");
    group.sample_size(10);
    for n in [200, 2000] {
        let (x, y) = (features(&mut rng, n, 0.0), features(&mut rng, n, 0.02));
        // Multiply-adds of the null's matrix products: P · N · D.
        group.throughput(Throughput::Elements((PERMS * 2 * n * DIM) as u64));
        group.bench_function(format!("n={n}"), |b| {
            b.iter(|| {
                test.two_sample(black_box(x.view()), black_box(y.view()), &CosineKernel)
                    .unwrap()
            })
        });
        group.bench_function(format!("statistic_only/n={n}"), |b| {
            b.iter(|| {
                mmd2_unbiased(black_box(x.view()), black_box(y.view()), &CosineKernel).unwrap()
            })
        });
        for (name, repr) in [
            ("features", Representation::Features),
            ("gram", Representation::Gram),
        ] {
            let pooled =
                PooledSample::with_representation(x.view(), y.view(), &CosineKernel, repr).unwrap();
            group.bench_function(format!("null_only/{name}/n={n}"), |b| {
                b.iter(|| test.null_distribution(black_box(&pooled)))
            });
        }
    }
    group.finish();
}

fn gemm_rate(c: &mut Criterion) {
    // The same product shape as the null at n = 2000: (P × N) · (N × D).
    let a = Array2::from_shape_fn((PERMS, 4000), |(i, j)| ((i * 7 + j * 13) % 2) as f32);
    let b = Array2::from_shape_fn((4000, DIM), |(i, j)| {
        ((i * 31 + j * 17) % 101) as f32 / 101.0
    });
    let mut group = c.benchmark_group("gemm_f32");
    group.sample_size(10);
    group.throughput(Throughput::Elements((PERMS * 4000 * DIM) as u64));
    group.bench_function("500x4000x2048", |bench| {
        bench.iter(|| matmul(black_box(a.view()), black_box(b.view()), Threads::Rayon).unwrap())
    });
    group.finish();
}

/// Drift monitoring: one batch of 100 against a reference of 5000 (d = 2048, 500 permutations), with the
/// reference's features precomputed once (`DriftMonitor`) against `two_sample` from scratch on every batch.
fn drift_monitor(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (reference, batch) = (features(&mut rng, 5000, 0.0), features(&mut rng, 100, 0.02));
    let test = PermutationTest::params()
        .n_perm(PERMS)
        .seed(0)
        .check()
        .unwrap();
    let monitor = DriftMonitor::new(reference.view(), CosineKernel, PERMS, 0).unwrap();
    let mut group = c.benchmark_group("drift_ref5000_batch100_d2048_500perms");
    group.sample_size(10);
    group.bench_function("monitor_per_batch", |b| {
        b.iter(|| monitor.test(black_box(batch.view()), 0.05).unwrap())
    });
    group.bench_function("two_sample_from_scratch", |b| {
        b.iter(|| {
            test.two_sample(
                black_box(reference.view()),
                black_box(batch.view()),
                &CosineKernel,
            )
            .unwrap()
        })
    });
    group.bench_function("monitor_build_once", |b| {
        b.iter(|| DriftMonitor::new(black_box(reference.view()), CosineKernel, PERMS, 0).unwrap())
    });
    group.finish();
}

criterion_group!(benches, permutation_test, gemm_rate, drift_monitor);
criterion_main!(benches);
