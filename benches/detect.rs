//! CADet's statistics from given features (n_trs = 50, d = 2048): the factorised O(n_trs · d) computation
//! against the naive pairwise sums over X⁽¹⁾ (|X⁽¹⁾| = 300), per image; and the local statistics (local m_out
//! and local cos, one blocked product against the reference) for a batch of 64 images at |X⁽¹⁾| = 300, 5,000
//! and 50,000. Results in docs/performance.md.

use std::hint::black_box;

use cadet::detect::method::image_statistics;
use cadet::detect::stats::{mean_unit_feature, view_stats};
use cadet::detect::{Reference, Statistic, ViewLayout};
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const N_TRS: usize = 50;
const D: usize = 2048;
const X1: usize = 300;

/// The definition: mean cosine over ordered pairs of the image's transforms, and over all pairs with every
/// transform of every X⁽¹⁾ image (features normalised once up front, as a NumPy user would).
fn naive(img: ArrayView2<'_, f32>, x1: ArrayView3<'_, f32>) -> (f64, f64) {
    let unit = |r: ndarray::ArrayView1<'_, f32>| {
        let n = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        r.mapv(|v| v / n)
    };
    let z: Vec<_> = img.rows().into_iter().map(unit).collect();
    let mut m_in = 0.0f64;
    for i in 0..z.len() {
        for j in 0..z.len() {
            if i != j {
                m_in += f64::from(z[i].dot(&z[j]));
            }
        }
    }
    let mut m_out = 0.0f64;
    for other in x1.axis_iter(Axis(0)) {
        for r in other.rows() {
            let u = unit(r);
            for zi in &z {
                m_out += f64::from(zi.dot(&u));
            }
        }
    }
    let n = z.len() as f64;
    (m_in / (n * (n - 1.0)), m_out / (n * n * x1.dim().0 as f64))
}

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut normal = |shape: (usize, usize, usize)| {
        Array3::from_shape_fn(shape, |_| {
            Distribution::<f32>::sample(&StandardNormal, &mut rng).abs()
        })
    };
    let (x1, img) = (normal((X1, N_TRS, D)), normal((1, N_TRS, D)));
    let img: Array2<f32> = img.index_axis(Axis(0), 0).to_owned();
    let mu = mean_unit_feature(x1.view()).unwrap();
    let mut group = c.benchmark_group("cadet_stats_per_image_ntrs50_d2048");
    group.sample_size(10);
    group.bench_function("factorised", |b| {
        b.iter(|| view_stats(black_box(img.view()), black_box(&mu)).unwrap())
    });
    group.bench_function("naive_x1_300", |b| {
        b.iter(|| naive(black_box(img.view()), black_box(x1.view())))
    });
    group.finish();

    // Local statistics: 64 images scored together (one product of 64 × d by d × |X1|), per call.
    let batch = normal((64, N_TRS, D));
    let mut group = c.benchmark_group("cadet_local_stats_64_images_ntrs50_d2048");
    group.sample_size(10);
    let paper = [Statistic::MIn, Statistic::MOut];
    let local = [
        Statistic::MIn,
        Statistic::LocalMOut { k: 5 },
        Statistic::LocalCosine { k: 1 },
    ];
    for size in [300usize, 5_000, 50_000] {
        let means = Array2::from_shape_fn((size, D), |(i, j)| {
            (((i * 31 + j * 7) % 97) as f32 / 97.0 + 0.01) / (D as f32).sqrt()
        });
        let reference = Reference::from_image_means(means.view()).unwrap();
        group.bench_function(format!("paper_x1_{size}"), |b| {
            b.iter(|| {
                image_statistics(
                    black_box(batch.view()),
                    ViewLayout::Transforms,
                    &reference,
                    &paper,
                )
                .unwrap()
            })
        });
        group.bench_function(format!("local_x1_{size}"), |b| {
            b.iter(|| {
                image_statistics(
                    black_box(batch.view()),
                    ViewLayout::Transforms,
                    &reference,
                    &local,
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
