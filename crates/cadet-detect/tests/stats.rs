//! The O(n_trs · d) statistics against the naive pairwise sums (brute force here, NumPy on a fixture).

mod common;

use cadet_detect::method::image_statistics;
use cadet_detect::stats::{mean_unit_feature, view_stats};
use cadet_detect::{Error, Reference, Statistic, ViewLayout, stats_from_features};
use ndarray::{Array3, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::Value;

fn cos(a: ArrayView2<'_, f32>, i: usize, b: ArrayView2<'_, f32>, j: usize) -> f64 {
    let (x, y) = (a.row(i), b.row(j));
    let dot: f64 = x
        .iter()
        .zip(y.iter())
        .map(|(p, q)| f64::from(*p) * f64::from(*q))
        .sum();
    let nx = x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    let ny = y.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    dot / (nx * ny)
}

#[test]
fn factorised_statistics_equal_naive_pairwise_sums() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut normal = |shape: (usize, usize, usize), shift: f32| {
        Array3::from_shape_fn(shape, |(_, _, k)| {
            let v: f32 = StandardNormal.sample(&mut rng);
            v + if k == 0 { shift } else { 0.0 }
        })
    };
    let (test, x1) = (normal((4, 9, 7), 0.3), normal((6, 9, 7), 1.0));
    let got = stats_from_features(test.view(), x1.view()).unwrap();
    for (t, s) in got.iter().enumerate() {
        let img = test.index_axis(ndarray::Axis(0), t);
        let n = img.nrows();
        // m_in: mean over ordered pairs i ≠ j.
        let mut m_in = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    m_in += cos(img, i, img, j);
                }
            }
        }
        m_in /= (n * (n - 1)) as f64;
        // m_out: mean over every X(1) image k and all pairs (i, j).
        let mut m_out = 0.0;
        for k in 0..x1.dim().0 {
            let other = x1.index_axis(ndarray::Axis(0), k);
            for i in 0..n {
                for j in 0..other.nrows() {
                    m_out += cos(img, i, other, j);
                }
            }
        }
        m_out /= (n * x1.dim().0 * x1.dim().1) as f64;
        assert!(
            (s.m_in - m_in).abs() < 1e-9 && (s.m_out - m_out).abs() < 1e-9,
            "{s:?} vs {m_in} {m_out}"
        );
    }
    assert_eq!(mean_unit_feature(x1.view()).unwrap().len(), 7);
}

#[test]
fn statistics_equal_numpy_reference_fixture() {
    let fx: Value = serde_json::from_str(include_str!("fixtures/reference_cadet.json")).unwrap();
    let arr = |v: &Value| {
        let a: Vec<Vec<Vec<f32>>> = serde_json::from_value(v.clone()).unwrap();
        Array3::from_shape_fn((a.len(), a[0].len(), a[0][0].len()), |(i, j, k)| a[i][j][k])
    };
    let (test, x1) = (arr(&fx["test"]), arr(&fx["x1"]));
    let m_in: Vec<f64> = serde_json::from_value(fx["m_in"].clone()).unwrap();
    let m_out: Vec<f64> = serde_json::from_value(fx["m_out"].clone()).unwrap();
    let got = stats_from_features(test.view(), x1.view()).unwrap();
    for ((s, a), b) in got.iter().zip(&m_in).zip(&m_out) {
        assert!(
            (s.m_in - a).abs() < 1e-5 && (s.m_out - b).abs() < 1e-5,
            "{s:?} vs {a} {b}"
        );
    }
    let mu = mean_unit_feature(x1.view()).unwrap();
    assert!(view_stats(test.index_axis(ndarray::Axis(0), 0), &mu[..3]).is_err());
    // Local m_out (k = 3) and k = |X(1)| against the oracle's m_out_local and m_out.
    let local: Vec<f64> = serde_json::from_value(fx["m_out_local_k3"].clone()).unwrap();
    let reference = Reference::from_features(x1.view(), ViewLayout::Transforms, true).unwrap();
    let all = x1.dim().0;
    let got = image_statistics(
        test.view(),
        ViewLayout::Transforms,
        &reference,
        &[
            Statistic::LocalMOut { k: 3 },
            Statistic::LocalMOut { k: all },
        ],
    )
    .unwrap();
    for ((s, want), m_out) in got.iter().zip(&local).zip(&m_out) {
        assert!((s.values[0] - want).abs() < 1e-5, "{s:?} vs {want}");
        assert!((s.values[1] - m_out).abs() < 1e-5, "{s:?} vs {m_out}");
    }
}

/// Local m_out by brute force (each reference image's mean cosine over all transform pairs, the k largest
/// averaged), and k = |X(1)| equal to m_out bit for bit.
#[test]
fn local_m_out_equals_brute_force_and_m_out_at_full_k() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut normal = |shape: (usize, usize, usize), shift: f32| {
        Array3::from_shape_fn(shape, |(_, _, k)| {
            let v: f32 = StandardNormal.sample(&mut rng);
            v + if k % 3 == 0 { shift } else { 0.0 }
        })
    };
    // 300 test images: more than one block of the blocked product.
    let (test, x1) = (normal((300, 5, 8), 0.4), normal((40, 5, 8), 0.9));
    let reference = Reference::from_features(x1.view(), ViewLayout::Transforms, true).unwrap();
    let stats = [
        Statistic::LocalMOut { k: 1 },
        Statistic::LocalMOut { k: 7 },
        Statistic::LocalMOut { k: 40 },
        Statistic::MOut,
        Statistic::LocalCosine { k: 3 },
        Statistic::LocalMIn { k: 4 },
    ];
    let got = image_statistics(test.view(), ViewLayout::Transforms, &reference, &stats).unwrap();
    for (t, s) in got.iter().enumerate().step_by(37) {
        let img = test.index_axis(ndarray::Axis(0), t);
        let mut per_ref: Vec<f64> = (0..40)
            .map(|j| {
                let other = x1.index_axis(ndarray::Axis(0), j);
                let mut sum = 0.0;
                for a in 0..5 {
                    for b in 0..5 {
                        sum += cos(img, a, other, b);
                    }
                }
                sum / 25.0
            })
            .collect();
        per_ref.sort_by(|a, b| b.total_cmp(a));
        for (i, k) in [1usize, 7].into_iter().enumerate() {
            let want = per_ref[..k].iter().sum::<f64>() / k as f64;
            assert!(
                (s.values[i] - want).abs() < 1e-5,
                "k = {k}: {} vs {want}",
                s.values[i]
            );
        }
        assert_eq!(
            s.values[2].to_bits(),
            s.values[3].to_bits(),
            "k = |X(1)| is m_out exactly"
        );
        assert_eq!(s.values[3], s.paper.m_out);
        // Local cos: the cosine between the mean unit features ū and ū_j, the 3 largest averaged.
        let mean_unit = |f: ndarray::ArrayView2<'_, f32>| -> Vec<f64> {
            let mut m = vec![0.0; f.ncols()];
            for r in f.rows() {
                let norm = r.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
                m.iter_mut()
                    .zip(r)
                    .for_each(|(a, v)| *a += f64::from(*v) / norm / f.nrows() as f64);
            }
            m
        };
        let u = mean_unit(img);
        let cos_to = |j: usize| {
            let v = mean_unit(x1.index_axis(ndarray::Axis(0), j));
            let dot: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
            let norm = |w: &[f64]| w.iter().map(|a| a * a).sum::<f64>().sqrt();
            dot / (norm(&u) * norm(&v))
        };
        let mut by_cos: Vec<usize> = (0..40).collect();
        by_cos.sort_by(|&a, &b| cos_to(b).total_cmp(&cos_to(a)));
        let want = by_cos[..3].iter().map(|&j| cos_to(j)).sum::<f64>() / 3.0;
        assert!(
            (s.values[4] - want).abs() < 1e-5,
            "local cos: {} vs {want}",
            s.values[4]
        );
        // Local m_in: the image's m_in (pairwise) minus the mean m_in of its 4 nearest reference images.
        let pairwise_m_in = |f: ndarray::ArrayView2<'_, f32>| {
            let n = f.nrows();
            let mut sum = 0.0;
            for a in 0..n {
                for b in 0..n {
                    if a != b {
                        sum += cos(f, a, f, b);
                    }
                }
            }
            sum / (n * (n - 1)) as f64
        };
        let neighbours = by_cos[..4]
            .iter()
            .map(|&j| pairwise_m_in(x1.index_axis(ndarray::Axis(0), j)))
            .sum::<f64>()
            / 4.0;
        let want = pairwise_m_in(img) - neighbours;
        assert!(
            (s.values[5] - want).abs() < 1e-5,
            "local m_in: {} vs {want}",
            s.values[5]
        );
    }
}

/// Cosines do not depend on scale: rows of 1e-30 (whose f32 squares underflow) and of 1e30 (whose squares
/// overflow) give the statistics of the unscaled rows. A NaN is reported with its image, transform and component.
#[test]
fn statistics_are_scale_invariant_and_errors_name_the_element() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let test = Array3::from_shape_fn((4, 5, 6), |_| {
        let v: f32 = StandardNormal.sample(&mut rng);
        v + 0.5
    });
    let x1 = test.mapv(|v| v * 0.7 + 0.1);
    let reference = Reference::from_features(x1.view(), ViewLayout::Transforms, true).unwrap();
    let stats = [
        Statistic::MIn,
        Statistic::MOut,
        Statistic::LocalCosine { k: 2 },
    ];
    let base = image_statistics(test.view(), ViewLayout::Transforms, &reference, &stats).unwrap();
    for scale in [1e-30f32, 1e30] {
        let scaled = test.mapv(|v| v * scale);
        let got =
            image_statistics(scaled.view(), ViewLayout::Transforms, &reference, &stats).unwrap();
        for (a, b) in got.iter().zip(&base) {
            for (u, v) in a.values.iter().zip(&b.values) {
                assert!((u - v).abs() < 1e-5, "scale {scale}: {u} vs {v}");
            }
        }
    }
    let mut nan = test.clone();
    nan[[3, 2, 5]] = f32::NAN;
    let e = image_statistics(nan.view(), ViewLayout::Transforms, &reference, &stats)
        .unwrap_err()
        .to_string();
    assert!(e.contains("image 3") && e.contains("[2, 5]"), "{e}");
}

/// The statistics of the un-augmented view by brute force: view agreement is the cosine between the view and
/// the mean of the transforms' unit features; identity cos (k) the mean of the k largest cosines between the
/// view and the reference images' un-augmented views. The transform statistics do not see the view (the same
/// values as the transforms alone), and the view's statistics need the layout and the reference's views.
#[test]
fn statistics_of_the_un_augmented_view_equal_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut normal = |shape: (usize, usize, usize), shift: f32| {
        Array3::from_shape_fn(shape, |(_, _, k)| {
            let v: f32 = StandardNormal.sample(&mut rng);
            v + if k % 2 == 0 { shift } else { 0.0 }
        })
    };
    // 1 + 4 views; 300 test images (more than one block), 25 reference images.
    let (test, x1) = (normal((300, 5, 6), 0.3), normal((25, 5, 6), 0.8));
    let layout = ViewLayout::IdentityFirst;
    let reference = Reference::from_features(x1.view(), layout, true).unwrap();
    let stats = [
        Statistic::ViewAgreement,
        Statistic::LocalMIn { k: 4 },
        Statistic::IdentityCosine { k: 1 },
        Statistic::IdentityCosine { k: 6 },
        Statistic::LocalCosine { k: 3 },
    ];
    let got = image_statistics(test.view(), layout, &reference, &stats).unwrap();
    let transforms_only = Reference::from_features(
        x1.slice(ndarray::s![.., 1.., ..]),
        ViewLayout::Transforms,
        true,
    )
    .unwrap();
    let plain = image_statistics(
        test.slice(ndarray::s![.., 1.., ..]),
        ViewLayout::Transforms,
        &transforms_only,
        &[
            Statistic::LocalMIn { k: 4 },
            Statistic::LocalCosine { k: 3 },
        ],
    )
    .unwrap();
    let unit = |v: ndarray::ArrayView1<'_, f32>| -> Vec<f64> {
        let n = v.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt();
        v.iter().map(|&a| f64::from(a) / n).collect()
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for (t, s) in got.iter().enumerate().step_by(29) {
        let img = test.index_axis(ndarray::Axis(0), t);
        let view = unit(img.row(0));
        let mut mean = vec![0.0; 6];
        for i in 1..5 {
            for (m, v) in mean.iter_mut().zip(unit(img.row(i))) {
                *m += v / 4.0;
            }
        }
        let agreement = dot(&view, &mean) / dot(&mean, &mean).sqrt();
        assert!(
            (s.values[0] - agreement).abs() < 1e-5,
            "{} vs {agreement}",
            s.values[0]
        );
        let mut cosines: Vec<f64> = (0..25)
            .map(|j| dot(&view, &unit(x1.index_axis(ndarray::Axis(0), j).row(0))))
            .collect();
        cosines.sort_by(|a, b| b.total_cmp(a));
        assert!((s.values[2] - cosines[0]).abs() < 1e-5);
        let top6 = cosines[..6].iter().sum::<f64>() / 6.0;
        assert!(
            (s.values[3] - top6).abs() < 1e-5,
            "{} vs {top6}",
            s.values[3]
        );
        // The transforms' statistics ignore the un-augmented view.
        assert_eq!(s.paper, plain[t].paper);
        assert_eq!([s.values[1], s.values[4]], plain[t].values[..]);
    }
    // The paper's layout has no view to use; a reference without views cannot give identity cos.
    assert!(matches!(
        image_statistics(test.view(), ViewLayout::Transforms, &reference, &stats[..1]),
        Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "layout",
            ..
        }))
    ));
    assert!(matches!(
        image_statistics(test.view(), layout, &transforms_only, &stats[2..3]),
        Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "reference",
            ..
        }))
    ));
    assert!(
        image_statistics(
            test.view(),
            layout,
            &reference,
            &[Statistic::IdentityCosine { k: 26 }]
        )
        .is_err()
    );
    // A zero un-augmented view is an error naming its image, not a NaN.
    let mut zero = test.slice(ndarray::s![..3, .., ..]).to_owned();
    zero.slice_mut(ndarray::s![2, 0, ..]).fill(0.0);
    let e = image_statistics(zero.view(), layout, &reference, &stats[..1]).unwrap_err();
    assert!(
        matches!(e, Error::Core(cadet_core::Error::ZeroNorm { row: 2, .. })),
        "{e}"
    );
    zero.slice_mut(ndarray::s![2, 0, ..]).fill(1.0);
    zero[[1, 0, 3]] = f32::NAN;
    let e = image_statistics(zero.view(), layout, &reference, &stats[..1]).unwrap_err();
    assert!(
        matches!(&e, Error::Core(cadet_core::Error::NonFinite { index, .. }) if index == &[1, 3]),
        "{e}"
    );
    // Tiny and huge views are directions like any other.
    let mut scaled = test.slice(ndarray::s![..3, .., ..]).to_owned();
    let base = image_statistics(scaled.view(), layout, &reference, &stats).unwrap();
    scaled
        .slice_mut(ndarray::s![.., 0, ..])
        .mapv_inplace(|v| v * 1e-30);
    let tiny = image_statistics(scaled.view(), layout, &reference, &stats).unwrap();
    for (a, b) in base.iter().zip(&tiny) {
        for (x, y) in a.values.iter().zip(&b.values) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
}
