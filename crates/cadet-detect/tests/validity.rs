//! Under the null (a test image exchangeable with X⁽²⁾), P(p ≤ α) ≤ α for every method: over 1000 independent
//! calibrations, each scoring one fresh in-distribution image, the count of p ≤ α lies in the 99.9% binomial
//! interval at α = 0.05, 0.2 and 0.5 — for the paper's sum, the local sum, Fisher and the minimum p-value, with
//! and without the un-augmented view.

mod common;

use cadet_core::NoProgress;
use cadet_detect::{Cadet, DetectionMethod, Statistic, Tail, ViewLayout};
use ndarray::{Array3, s};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const D: usize = 16;
const N_TRS: usize = 10;

/// Features of `n` in-distribution images, `1 + N_TRS` views each (the first the un-augmented view, with half
/// the noise): a class centre, an image offset, per-view noise.
fn features(rng: &mut ChaCha8Rng, centres: &[Vec<f32>], n: usize) -> Array3<f32> {
    let mut out = Array3::<f32>::zeros((n, 1 + N_TRS, D));
    for mut image in out.outer_iter_mut() {
        let c = &centres[rng.random_range(0..centres.len())];
        let offset: Vec<f32> = (0..D)
            .map(|_| 0.4 * Distribution::<f32>::sample(&StandardNormal, &mut *rng))
            .collect();
        let spread: f32 = rng.random_range(0.1..0.6);
        image.indexed_iter_mut().for_each(|((view, k), v)| {
            let z: f32 = StandardNormal.sample(&mut *rng);
            let noise = if view == 0 { 0.5 * spread } else { spread };
            *v = c[k] + offset[k] + noise * z;
        });
    }
    out
}

#[test]
fn p_values_are_valid_for_every_method() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let centres: Vec<Vec<f32>> = (0..5)
        .map(|_| (0..D).map(|_| StandardNormal.sample(&mut rng)).collect())
        .collect();
    let x1 = features(&mut rng, &centres, 100);
    let methods = [
        DetectionMethod::paper(),
        DetectionMethod::local_sum(5),
        DetectionMethod::fisher_local(5),
        DetectionMethod::min_p_local(5),
        DetectionMethod::min_p_cosine(1),
        DetectionMethod::fisher_cosine(5),
        DetectionMethod::min_p_local_m_in_cosine(10, 1),
        DetectionMethod::min_p_two_scale(50, 1, 10),
        DetectionMethod::single(Statistic::LocalMOut { k: 5 }),
        DetectionMethod::fisher_views(50, 1, 10),
        DetectionMethod {
            statistics: vec![Statistic::ViewAgreement, Statistic::IdentityCosine { k: 3 }],
            combination: cadet_detect::Combination::MinP {
                tails: vec![Tail::TwoSided, Tail::Lower],
            },
        },
    ];
    let detectors: Vec<Cadet> = methods
        .iter()
        .map(|m| {
            Cadet::params(8)
                .n_trs(N_TRS)
                .identity_view(m.needs_identity_view())
                .method(m.clone())
                .check()
                .unwrap()
        })
        .collect();
    let (trials, x2_size) = (1000, 200);
    let alphas = [0.05, 0.2, 0.5];
    let mut rejections = vec![[0usize; 3]; methods.len()];
    for _ in 0..trials {
        // X(2) and one fresh test image, drawn together: exchangeable.
        let all = features(&mut rng, &centres, x2_size + 1);
        let (x2, test) = (
            all.slice(s![..x2_size, .., ..]),
            all.slice(s![x2_size.., .., ..]),
        );
        for (cadet, counts) in detectors.iter().zip(&mut rejections) {
            // The paper's layout drops the un-augmented view.
            let first = match cadet.settings().layout() {
                ViewLayout::IdentityFirst => 0,
                ViewLayout::Transforms => 1,
            };
            let cal = cadet
                .calibrate_features(
                    None,
                    x1.slice(s![.., first.., ..]),
                    x2.slice(s![.., first.., ..]),
                    &NoProgress,
                )
                .unwrap();
            let p = cal.score_features(test.slice(s![.., first.., ..])).unwrap()[0].p_value;
            assert!(p > 0.0 && p <= 1.0);
            for (count, alpha) in counts.iter_mut().zip(alphas) {
                *count += usize::from(p <= alpha);
            }
        }
    }
    for (method, counts) in methods.iter().zip(&rejections) {
        for (&count, alpha) in counts.iter().zip(alphas) {
            // P(p ≤ α) = ⌊α · 201⌋ / 201; the 99.9% interval of Binomial(1000, that) is mean ± 3.29 sd.
            let q = (alpha * 201.0).floor() / 201.0;
            let (mean, sd) = (1000.0 * q, (1000.0 * q * (1.0 - q)).sqrt());
            assert!(
                (count as f64 - mean).abs() <= 3.29 * sd + 0.5,
                "{}: {count} of {trials} with p ≤ {alpha} (expected {mean:.1} ± {sd:.1})",
                method.label()
            );
        }
    }
}
