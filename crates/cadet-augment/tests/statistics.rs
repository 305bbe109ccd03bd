//! The random parameters have the distributions torchvision draws them from.

use cadet_augment::{
    HorizontalFlip, RandomApply, RandomGrayscale, RandomResizedCrop, Transform, image_rng,
};
use ndarray::Array3;

/// Kolmogorov–Smirnov distance between a sample and the uniform distribution on [lo, hi].
fn ks_uniform(mut v: Vec<f64>, lo: f64, hi: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max)
}

#[test]
fn crop_area_and_log_aspect_are_uniform() {
    // Up to area 0.5 every draw fits at any aspect in 3/4..4/3, so no retry biases the distribution; a large
    // image keeps the rounding of sides to pixels small.
    let t = RandomResizedCrop::new(8).with_scale(0.1, 0.5);
    let mut rng = image_rng(42, 0);
    let (side, draws) = (2000usize, 4000usize);
    let (mut areas, mut logs) = (Vec::new(), Vec::new());
    for _ in 0..draws {
        let b = t.sample(side, side, &mut rng);
        areas.push((b.height * b.width) as f64 / (side * side) as f64);
        logs.push((b.width as f64 / b.height as f64).ln());
        assert!(b.top + b.height <= side && b.left + b.width <= side);
    }
    // KS critical value at 99.9% for n = 4000: 1.95 / √n = 0.031.
    let crit = 1.95 / (draws as f64).sqrt();
    assert!(ks_uniform(areas, 0.1, 0.5) < crit);
    assert!(ks_uniform(logs, (0.75f64).ln(), (4.0f64 / 3.0).ln()) < crit);
}

#[test]
fn flip_grayscale_and_random_apply_rates() {
    let img = Array3::from_shape_fn((3, 2, 2), |(c, y, x)| (c + 2 * y + x) as f32 / 8.0);
    let flipped = cadet_augment::functional::hflip(img.view());
    let trials = 10_000;
    let mut rng = image_rng(9, 0);
    let count = |t: &dyn Transform, changed: &dyn Fn(&Array3<f32>) -> bool, rng: &mut _| {
        (0..trials)
            .filter(|_| changed(&t.apply(img.view(), rng).unwrap()))
            .count()
    };
    // Binomial(10 000, p) ± 4.5 σ.
    let within = |k: usize, p: f64| {
        let (mean, sd) = (trials as f64 * p, (trials as f64 * p * (1.0 - p)).sqrt());
        (k as f64 - mean).abs() < 4.5 * sd
    };
    let k = count(&HorizontalFlip::default(), &|o| o == flipped, &mut rng);
    assert!(within(k, 0.5), "flips {k}");
    let k = count(
        &RandomGrayscale { p: 0.2 },
        &|o| o[[0, 1, 1]] == o[[2, 1, 1]],
        &mut rng,
    );
    assert!(within(k, 0.2), "grayscale {k}");
    let k = count(
        &RandomApply::new(HorizontalFlip { p: 1.0 }, 0.8),
        &|o| o == flipped,
        &mut rng,
    );
    assert!(within(k, 0.8), "random apply {k}");
}
