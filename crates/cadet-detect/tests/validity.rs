//! Under the null (a test image exchangeable with X⁽²⁾), P(p ≤ α) ≤ α: over 1000 independent calibrations, each
//! scoring one fresh in-distribution image, the count of p ≤ 0.05 lies in the 99.9% binomial interval.

mod common;

use cadet_detect::stats::{ViewStats, view_stats};
use cadet_detect::{Cadet, Calibration, EmbedderIdentity};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const D: usize = 16;
const N_TRS: usize = 10;

/// Transform features of one in-distribution image: a class centre, an image offset, per-transform noise.
fn image_features(rng: &mut ChaCha8Rng, centres: &[Vec<f32>]) -> Array2<f32> {
    let c = &centres[rng.random_range(0..centres.len())];
    let offset: Vec<f32> = (0..D)
        .map(|_| 0.4 * Distribution::<f32>::sample(&StandardNormal, &mut *rng))
        .collect();
    let spread: f32 = rng.random_range(0.1..0.6);
    Array2::from_shape_fn((N_TRS, D), |(_, k)| {
        let z: f32 = StandardNormal.sample(&mut *rng);
        c[k] + offset[k] + spread * z
    })
}

#[test]
fn false_positive_rate_at_alpha_is_alpha() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let centres: Vec<Vec<f32>> = (0..5)
        .map(|_| (0..D).map(|_| StandardNormal.sample(&mut rng)).collect())
        .collect();
    // μ from a fixed X(1) of 100 images.
    let x1: Vec<Array2<f32>> = (0..100)
        .map(|_| image_features(&mut rng, &centres))
        .collect();
    let mut mu = vec![0.0f64; D];
    for f in &x1 {
        for r in f.rows() {
            let n = r.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
            mu.iter_mut()
                .zip(r)
                .for_each(|(m, v)| *m += f64::from(*v) / n / (100 * N_TRS) as f64);
        }
    }
    let identity = EmbedderIdentity {
        name: "simulated".into(),
        dim: D,
        image_shape: [3, 8, 8],
        probe: vec![0.0; D],
    };
    let params = Cadet::params(8)
        .n_trs(N_TRS)
        .check()
        .unwrap()
        .settings()
        .clone();
    let (trials, x2_size, alpha) = (1000, 200, 0.05);
    let mut rejections = 0;
    for _ in 0..trials {
        let x2: Vec<ViewStats> = (0..x2_size)
            .map(|_| view_stats(image_features(&mut rng, &centres).view(), &mu).unwrap())
            .collect();
        let cal = Calibration::fit(params.clone(), identity.clone(), mu.clone(), &x2, 100).unwrap();
        let test = view_stats(image_features(&mut rng, &centres).view(), &mu).unwrap();
        let p = cal.score_stats(&[test])[0].p_value;
        assert!(p > 0.0 && p <= 1.0);
        rejections += usize::from(p <= alpha);
    }
    // P(p ≤ 0.05) = ⌊0.05 · 201⌋ / 201 = 10/201; Binomial(1000, 0.0498): mean 49.8, sd 6.9; 99.9% ≈ [28, 73].
    assert!(
        (28..=73).contains(&rejections),
        "{rejections} rejections of {trials}"
    );
}
