//! ODIN and Hu et al.'s scores against hand computations on linear classifiers with fixed weights.

use burn::prelude::*;
use cadet_attacks::{BoundaryGoal, BoundarySteps, Classifier, Error, NoiseRobustness, Odin};
use ndarray::{Array2, Array4};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `logits = flatten(x) · W + b`, fixed weights `W` `(d, k)`, on the autodiff device.
struct Linear {
    w: Array2<f32>,
    b: Vec<f32>,
    wt: Tensor<2>,
    bt: Tensor<2>,
    device: Device,
}

impl Linear {
    fn new(w: Array2<f32>, b: Vec<f32>) -> Self {
        let device = Device::flex().autodiff();
        let (d, k) = w.dim();
        let wt = Tensor::<2>::from_data(
            TensorData::new(w.iter().copied().collect::<Vec<f32>>(), [d, k]),
            &device,
        );
        let bt = Tensor::<2>::from_data(TensorData::new(b.clone(), [1, k]), &device);
        Self {
            w,
            b,
            wt,
            bt,
            device,
        }
    }

    /// Logits of one flattened image, by hand in f64.
    fn logits(&self, x: &[f64]) -> Vec<f64> {
        (0..self.w.ncols())
            .map(|c| {
                f64::from(self.b[c])
                    + x.iter()
                        .enumerate()
                        .map(|(i, v)| v * f64::from(self.w[[i, c]]))
                        .sum::<f64>()
            })
            .collect()
    }
}

impl Classifier for Linear {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        images.flatten(1, 3).matmul(self.wt.clone()) + self.bt.clone()
    }
    fn device(&self) -> Device {
        self.device.clone()
    }
}

fn softmax(l: &[f64], t: f64) -> Vec<f64> {
    let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = l.iter().map(|v| ((v - m) / t).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn argmax(l: &[f64]) -> usize {
    (0..l.len()).fold(0, |b, i| if l[i] > l[b] { i } else { b })
}

const SHAPE: (usize, usize, usize, usize) = (6, 3, 4, 4);
const D: usize = 48;

/// Three classes, random weights; images in `[0, 1]` with some pixels exactly at 0 and 1 (the clamp).
fn three_classes() -> (Linear, Array4<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let w = Array2::from_shape_fn((D, 3), |_| rng.random_range(-1.0f32..1.0));
    let b = vec![0.1, -0.2, 0.05];
    let images = Array4::from_shape_fn(SHAPE, |(i, c, h, x)| {
        let v: f32 = rng.random_range(0.0..1.0);
        if (i + c + h + x) % 7 == 0 {
            v.round()
        } else {
            v
        }
    });
    (Linear::new(w, b), images)
}

fn flat(images: &Array4<f32>, i: usize) -> Vec<f64> {
    images
        .index_axis(ndarray::Axis(0), i)
        .iter()
        .map(|&v| f64::from(v))
        .collect()
}

/// ODIN by hand: the gradient of `log softmax(l/T)_ŷ` of a linear model is `(1/T) Σ_c (δ_cŷ − p_c) W[:, c]`.
fn odin_by_hand(model: &Linear, x: &[f64], t: f64, eps: f64) -> f64 {
    let l = model.logits(x);
    let p = softmax(&l, t);
    let y = argmax(&l);
    let perturbed: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let g: f64 = (0..p.len())
                .map(|c| (f64::from(u8::from(c == y)) - p[c]) * f64::from(model.w[[i, c]]))
                .sum::<f64>()
                / t;
            // The test is meaningful only where f32 agrees on the sign.
            assert!(g.abs() > 1e-7, "gradient component {g} too close to 0");
            (v + eps * g.signum()).clamp(0.0, 1.0)
        })
        .collect();
    softmax(&model.logits(&perturbed), t)
        .into_iter()
        .fold(0.0, f64::max)
}

#[test]
fn odin_matches_the_hand_computation() {
    let (model, images) = three_classes();
    for (t, eps) in [(1000.0, 0.0014f32), (2.0, 0.05), (1.0, 0.2)] {
        let odin = Odin {
            temperature: t,
            epsilon: eps,
            batch_size: 4,
        };
        let scores = odin.scores(&model, images.view()).unwrap();
        assert_eq!(scores.len(), SHAPE.0);
        for (i, s) in scores.iter().enumerate() {
            let want = odin_by_hand(&model, &flat(&images, i), t, f64::from(eps));
            assert!(
                (s - want).abs() < 1e-6,
                "T = {t}, ε = {eps}, image {i}: {s} vs {want}"
            );
        }
    }
    // The perturbation raises the predicted class's tempered softmax here (small ε on a linear model).
    let plain = Odin {
        epsilon: 0.0,
        ..Odin::paper()
    }
    .scores(&model, images.view())
    .unwrap();
    let odin = Odin::paper().scores(&model, images.view()).unwrap();
    assert!(odin.iter().zip(&plain).all(|(o, p)| o > p));
    assert_eq!(Odin::paper().name(), "ODIN (T = 1000, ε = 0.0014)");
}

#[test]
fn odin_without_perturbation_is_the_tempered_max_softmax() {
    let (model, images) = three_classes();
    for t in [1.0, 10.0, 1000.0] {
        let odin = Odin {
            temperature: t,
            epsilon: 0.0,
            batch_size: 128,
        };
        let scores = odin.scores(&model, images.view()).unwrap();
        for (i, s) in scores.iter().enumerate() {
            let want = softmax(&model.logits(&flat(&images, i)), t)
                .into_iter()
                .fold(0.0, f64::max);
            assert!((s - want).abs() < 1e-6, "T = {t}: {s} vs {want}");
        }
    }
}

#[test]
fn noise_robustness_is_seeded_and_exact_without_noise() {
    let (model, images) = three_classes();
    let none = NoiseRobustness {
        sigma: 0.0,
        n_noise: 5,
        seed: 1,
        batch_size: 4,
    }
    .scores(&model, images.view())
    .unwrap();
    assert_eq!(none.kept, vec![1.0; SHAPE.0]);
    assert!(none.l1_change.iter().all(|&v| v.abs() < 1e-12));

    let noisy = NoiseRobustness {
        sigma: 0.3,
        n_noise: 20,
        seed: 3,
        batch_size: 4,
    };
    let a = noisy.scores(&model, images.view()).unwrap();
    // Same seed, another batch size: the same scores.
    let b = NoiseRobustness {
        batch_size: 5,
        ..noisy.clone()
    }
    .scores(&model, images.view())
    .unwrap();
    assert_eq!(a, b);
    let c = NoiseRobustness { seed: 4, ..noisy }
        .scores(&model, images.view())
        .unwrap();
    assert_ne!(a.l1_change, c.l1_change);
    // Shares are multiples of 1/20; L1 distances of two distributions lie in [0, 2].
    for (k, l) in a.kept.iter().zip(&a.l1_change) {
        assert!((k * 20.0 - (k * 20.0).round()).abs() < 1e-9 && (0.0..=1.0).contains(k));
        assert!(*l > 0.0 && *l <= 2.0);
    }
    // This much noise moves some prediction.
    assert!(a.kept.iter().any(|&k| k < 1.0));
}

/// Two classes, `logit₁ − logit₀ = d·x + c`; images `0.5 + 0.2·a_i·sign(d)` plus a little noise, so margins
/// `≈ 0.1 + 0.2·a_i·‖d‖₁`.
fn two_classes() -> (Linear, Array4<f32>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let d: Vec<f32> = (0..D)
        .map(|_| {
            let m: f32 = rng.random_range(0.5..1.5);
            if rng.random_range(0.0..1.0f32) < 0.5 {
                -m
            } else {
                m
            }
        })
        .collect();
    let w = Array2::from_shape_fn((D, 2), |(i, c)| if c == 1 { d[i] } else { 0.0 });
    // The margin at x = 0.5 (every pixel) is 0.1.
    let c = 0.1 - 0.5 * d.iter().sum::<f32>();
    let a = [-0.9f32, -0.5, -0.12, 0.07, 0.33, 0.8, 0.95, -0.02];
    let images = Array4::from_shape_fn((a.len(), 3, 4, 4), |(i, ch, h, x)| {
        let j = ch * 16 + h * 4 + x;
        let jitter: f32 = rng.random_range(-0.02..0.02);
        0.5 + 0.2 * a[i] * d[j].signum() + jitter
    });
    let d64: Vec<f64> = d.iter().map(|&v| f64::from(v)).collect();
    (Linear::new(w, vec![0.0, c]), images, d64)
}

#[test]
fn steps_to_the_boundary_match_the_hand_count() {
    let (model, images, d) = two_classes();
    let step = 0.01f32;
    let max_steps = 15;
    let d1: f64 = d.iter().map(|v| v.abs()).sum();
    let by_hand: Vec<f64> = (0..images.dim().0)
        .map(|i| {
            let x = flat(&images, i);
            let margin = model.logits(&x)[1] - model.logits(&x)[0];
            let ratio = margin.abs() / (f64::from(step) * d1);
            assert!(
                (ratio - ratio.round()).abs() > 1e-3,
                "ratio {ratio} too close to an integer"
            );
            // No clipping happens on these images within the steps counted.
            let k = ratio.floor() + 1.0;
            if k > max_steps as f64 {
                (max_steps + 1) as f64
            } else {
                k
            }
        })
        .collect();
    // The set covers both classes, one step, several steps, and images the cap stops.
    assert!(
        by_hand.contains(&1.0) && by_hand.contains(&16.0),
        "{by_hand:?}"
    );
    for goal in [
        BoundaryGoal::Untargeted,
        BoundaryGoal::RandomTarget { seed: 5 },
    ] {
        for batch_size in [3, 128] {
            let steps = BoundarySteps {
                step,
                max_steps,
                goal,
                batch_size,
            }
            .scores(&model, images.view())
            .unwrap();
            // With two classes the random target is the other class: the same direction.
            assert_eq!(steps, by_hand, "{goal:?}, batch {batch_size}");
        }
    }
}

#[test]
fn random_targets_are_seeded() {
    let (model, images) = three_classes();
    let run = |seed| {
        BoundarySteps {
            step: 0.02,
            max_steps: 20,
            goal: BoundaryGoal::RandomTarget { seed },
            batch_size: 4,
        }
        .scores(&model, images.view())
        .unwrap()
    };
    let a = run(1);
    assert_eq!(a, run(1));
    assert!(
        a.iter()
            .all(|&k| (1.0..=21.0).contains(&k) && k.fract() == 0.0)
    );
    let untargeted = BoundarySteps {
        step: 0.02,
        max_steps: 20,
        ..BoundarySteps::new()
    }
    .scores(&model, images.view())
    .unwrap();
    assert!(untargeted.iter().all(|&k| (1.0..=21.0).contains(&k)));
}

#[test]
fn bad_parameters_and_inputs_are_errors() {
    let (model, images) = three_classes();
    let param = |r: Result<_, Error>| match r {
        Err(Error::Core(cadet_core::Error::InvalidParameter { name, .. })) => name,
        other => panic!("expected an invalid parameter, got {other:?}"),
    };
    for (t, eps, name) in [
        (0.0, 0.1, "temperature"),
        (-1.0, 0.1, "temperature"),
        (f64::NAN, 0.1, "temperature"),
        (f64::INFINITY, 0.1, "temperature"),
        (1.0, -0.1, "epsilon"),
        (1.0, f32::NAN, "epsilon"),
    ] {
        let odin = Odin {
            temperature: t,
            epsilon: eps,
            batch_size: 8,
        };
        assert_eq!(param(odin.scores(&model, images.view()).map(|_| ())), name);
    }
    let zero_batch = Odin {
        batch_size: 0,
        ..Odin::paper()
    };
    assert_eq!(param(zero_batch.validate()), "batch_size");
    for (sigma, n_noise, name) in [
        (-0.1, 3, "sigma"),
        (f32::NAN, 3, "sigma"),
        (0.1, 0, "n_noise"),
    ] {
        let noise = NoiseRobustness {
            sigma,
            n_noise,
            ..NoiseRobustness::hu()
        };
        assert_eq!(param(noise.scores(&model, images.view()).map(|_| ())), name);
    }
    for (step, max_steps, name) in [
        (0.0, 5, "step"),
        (-0.01, 5, "step"),
        (f32::INFINITY, 5, "step"),
        (0.01, 0, "max_steps"),
    ] {
        let steps = BoundarySteps {
            step,
            max_steps,
            ..BoundarySteps::new()
        };
        assert_eq!(param(steps.scores(&model, images.view()).map(|_| ())), name);
    }
    let mut outside = images.clone();
    outside[[1, 0, 0, 0]] = 1.5;
    assert!(matches!(
        Odin::paper().scores(&model, outside.view()),
        Err(Error::Input { .. })
    ));
    assert!(matches!(
        NoiseRobustness::hu().scores(&model, images.slice(ndarray::s![..0, .., .., ..])),
        Err(Error::Input { .. })
    ));
    assert!(matches!(
        BoundarySteps::new().scores(&model, outside.view()),
        Err(Error::Input { .. })
    ));
}
