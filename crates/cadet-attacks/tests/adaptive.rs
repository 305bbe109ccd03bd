//! EOT-PGD and the CADet surrogate on a tiny untrained CIFAR ResNet-8 and 16 × 16 images.

use burn::prelude::*;
use cadet_attacks::{
    Attack, CadetSurrogate, EotPgd, Error, EvalTransform, Goal, Pgd, SurrogateReference,
    SurrogateTerms, TransformDraw, apply_transforms,
};
use cadet_augment::functional::{CropBox, hflip, resize_box};
use cadet_core::NoProgress;
use cadet_detect::method::{Reference, Statistic, ViewLayout, image_statistics};
use cadet_model::{CifarResNet, CifarResNetConfig, Normalization, Normalized};
use ndarray::{Array3, Array4, Axis, s};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};

const SIDE: usize = 16;

fn net() -> Normalized<CifarResNet> {
    let device = Device::flex().autodiff();
    device.seed(3);
    let net = CifarResNetConfig::new(8).init(&device).unwrap();
    Normalized::new(net, Normalization::imagenet(), device)
}

/// Smooth random images (a few low-frequency waves per channel) in `[0.1, 0.9]`.
fn images(n: usize, seed: u64) -> Array4<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let u = Uniform::new(0.0f32, 1.0).unwrap();
    let mut x = Array4::<f32>::zeros((n, 3, SIDE, SIDE));
    for mut image in x.outer_iter_mut() {
        for mut plane in image.outer_iter_mut() {
            let (a, b, c, d) = (
                u.sample(&mut rng),
                u.sample(&mut rng) * 0.6,
                u.sample(&mut rng) * 0.6,
                u.sample(&mut rng) * 6.0,
            );
            plane.indexed_iter_mut().for_each(|((i, j), v)| {
                *v = 0.5
                    + 0.3 * (a * 6.0 + b * i as f32 + c * j as f32 + d).sin() * (0.5 + 0.5 * a)
                    + 0.05 * u.sample(&mut rng);
            });
        }
    }
    x.mapv(|v| v.clamp(0.0, 1.0))
}

fn labels(clf: &Normalized<CifarResNet>, x: &Array4<f32>) -> Vec<u32> {
    cadet_model::predict(clf, x.view(), 64).unwrap()
}

fn small() -> EotPgd {
    EotPgd {
        epsilon: 0.03,
        step: 0.01,
        iterations: 4,
        samples: 3,
        batch_size: 3,
        ..EotPgd::paper()
    }
}

#[test]
fn ball_box_and_seeds() {
    let clf = net();
    let x = images(4, 1);
    let y = labels(&clf, &x);
    let run = |a: &EotPgd| {
        a.attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
            .unwrap()
    };
    let first = run(&small());
    for (s, (a, c)) in first.samples.iter().zip(
        first
            .adversarial
            .axis_iter(Axis(0))
            .zip(x.axis_iter(Axis(0))),
    ) {
        let linf = (&a - &c).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(
            linf <= 0.03 + 1e-6 && (s.linf - linf).abs() < 1e-6,
            "{linf}"
        );
    }
    assert!(first.adversarial.iter().all(|v| (0.0..=1.0).contains(v)));
    // Same seed, another batch size: the same images (transforms are drawn per image).
    let again = run(&EotPgd {
        batch_size: 4,
        ..small()
    });
    assert_eq!(first.adversarial, again.adversarial);
    let other = run(&EotPgd { seed: 1, ..small() });
    assert_ne!(first.adversarial, other.adversarial);
    // Without a random start, only the transforms differ between seeds.
    let fixed = |seed| {
        run(&EotPgd {
            seed,
            random_start: false,
            ..small()
        })
        .adversarial
    };
    assert_ne!(fixed(0), fixed(1));
    // A targeted run: success means predicting the target.
    let targets: Vec<u32> = y.iter().map(|l| (l + 1) % 10).collect();
    let t = small()
        .attack(
            &clf,
            x.view(),
            &y,
            &Goal::Targeted(targets.clone()),
            &NoProgress,
        )
        .unwrap();
    for (s, tg) in t.samples.iter().zip(&targets) {
        assert_eq!(s.success, s.adversarial_prediction == *tg);
    }
}

#[test]
fn one_identity_transform_is_plain_pgd() {
    let clf = net();
    let x = images(4, 2);
    let y = labels(&clf, &x);
    let eot = EotPgd {
        samples: 1,
        transform: EvalTransform::identity(),
        ..small()
    };
    let pgd = Pgd {
        epsilon: eot.epsilon,
        step: eot.step,
        iterations: eot.iterations,
        random_start: true,
        seed: eot.seed,
        batch_size: 2,
        ..Pgd::paper()
    };
    let a = eot
        .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
        .unwrap();
    let b = pgd
        .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
        .unwrap();
    assert_eq!(a.adversarial, b.adversarial);
    // The identity transform draws the whole image, never flipped.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for _ in 0..20 {
        assert_eq!(
            EvalTransform::identity().sample(SIDE, SIDE, &mut rng),
            TransformDraw::full(SIDE, SIDE)
        );
    }
}

/// The differentiable crop + resize + flip against cadet-augment's `resize_box` (+ `hflip`) for fixed boxes and
/// for sampled CADet boxes. Both use the same weights (Pillow's bilinear filter, half-pixel centres); only the
/// order of the `f32` sums differs (two matrix products against two 1-D passes): 1e-5 on values in [0, 1].
#[test]
fn differentiable_transform_matches_cadet_augment() {
    let x = images(1, 3);
    let image = x.index_axis(Axis(0), 0);
    let device = Device::flex();
    let mut cases = vec![
        (
            TransformDraw {
                top: 2,
                left: 1,
                height: 13,
                width: 15,
                flip: false,
            },
            [SIDE, SIDE],
        ),
        (
            TransformDraw {
                top: 0,
                left: 3,
                height: 14,
                width: 12,
                flip: true,
            },
            [SIDE, SIDE],
        ),
        // Downscaling (antialiased, wider taps) and a non-square output.
        (
            TransformDraw {
                top: 1,
                left: 2,
                height: 15,
                width: 14,
                flip: true,
            },
            [7, 9],
        ),
        (TransformDraw::full(SIDE, SIDE), [SIDE, SIDE]),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..8 {
        cases.push((
            EvalTransform::cadet().sample(SIDE, SIDE, &mut rng),
            [SIDE, SIDE],
        ));
    }
    // CADet's boxes: area 0.75 of the image, aspect within [3/4, 4/3], some flipped.
    assert!(cases[4..].iter().any(|(d, _)| d.flip) && cases[4..].iter().any(|(d, _)| !d.flip));
    for (d, _) in &cases[4..] {
        let area = (d.height * d.width) as f64 / (SIDE * SIDE) as f64;
        assert!((area - 0.75).abs() < 0.12, "{d:?}");
    }
    for (d, out) in cases {
        let b = CropBox {
            top: d.top,
            left: d.left,
            height: d.height,
            width: d.width,
        };
        let mut expected = resize_box(image, b, out[0], out[1]).unwrap();
        if d.flip {
            expected = hflip(expected.view());
        }
        let t = cadet_model::view_to_tensor(&x.view(), &device);
        let got = cadet_model::tensor_to_array(apply_transforms(t, &[d], out).unwrap()).unwrap();
        let worst = got
            .index_axis(Axis(0), 0)
            .iter()
            .zip(expected.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{d:?} → {out:?}: {worst}");
    }
    // A box outside the image and a count mismatch are errors.
    let t = cadet_model::view_to_tensor(&x.view(), &device);
    let outside = TransformDraw {
        top: 4,
        ..TransformDraw::full(SIDE, SIDE)
    };
    assert!(matches!(
        apply_transforms(t.clone(), &[outside], [SIDE, SIDE]),
        Err(Error::Input { .. })
    ));
    assert!(matches!(
        apply_transforms(t, &[], [SIDE, SIDE]),
        Err(Error::Input { .. })
    ));
}

/// Features `(N, 1 + n, D)` of images: the image itself first, then `n` CADet transforms.
fn view_features(
    clf: &Normalized<CifarResNet>,
    x: &Array4<f32>,
    n: usize,
    seed: u64,
) -> Array3<f32> {
    use cadet_attacks::ImageEncoder;
    let (b, c, h, w) = x.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut views = Array4::<f32>::zeros((b * (1 + n), c, h, w));
    let device = Device::flex();
    for i in 0..b {
        let image = x.slice(s![i..i + 1, .., .., ..]);
        views
            .slice_mut(s![i * (1 + n), .., .., ..])
            .assign(&image.index_axis(Axis(0), 0));
        for k in 0..n {
            let d = EvalTransform::cadet().sample(h, w, &mut rng);
            let t = apply_transforms(cadet_model::view_to_tensor(&image, &device), &[d], [h, w])
                .unwrap();
            views.slice_mut(s![i * (1 + n) + 1 + k, .., .., ..]).assign(
                &cadet_model::tensor_to_array(t)
                    .unwrap()
                    .index_axis(Axis(0), 0),
            );
        }
    }
    let f = clf.features(cadet_model::view_to_tensor(&views.view(), &clf.device_of()));
    let f = cadet_model::tensor_to_array(f).unwrap();
    let d = f.dim().1;
    f.into_shape_with_order((b, 1 + n, d)).unwrap()
}

trait DeviceOf {
    fn device_of(&self) -> Device;
}
impl DeviceOf for Normalized<CifarResNet> {
    fn device_of(&self) -> Device {
        cadet_attacks::Classifier::device(self)
    }
}

#[test]
fn surrogate_statistics_equal_cadet_detect() {
    let clf = net();
    let x1 = view_features(&clf, &images(12, 4), 6, 1);
    let test = view_features(&clf, &images(5, 5), 5, 2);
    let statistics = [
        Statistic::LocalCosine { k: 1 },
        Statistic::LocalCosine { k: 4 },
        Statistic::IdentityCosine { k: 1 },
        Statistic::IdentityCosine { k: 4 },
        Statistic::ViewAgreement,
        Statistic::LocalMIn { k: 3 },
        Statistic::MIn,
    ];
    let reference = Reference::from_features(x1.view(), ViewLayout::IdentityFirst, true).unwrap();
    let detect = image_statistics(
        test.view(),
        ViewLayout::IdentityFirst,
        &reference,
        &statistics,
    )
    .unwrap();
    let terms = SurrogateTerms {
        local_cosine_k: vec![1, 4],
        identity_cosine_k: vec![1, 4],
        view_agreement: true,
        local_m_in_k: Some(3),
        lambda: 1.0,
    };
    let surrogate = CadetSurrogate::new(
        &clf,
        SurrogateReference::from_features(x1.view()).unwrap(),
        terms,
    )
    .unwrap();
    // The reference's m_in_j as cadet-detect computes them (its local m_in at k = 1 of each reference image).
    let device = Device::flex();
    let identity = cadet_model::view_to_tensor(&test.index_axis(Axis(1), 0), &device);
    let transforms = cadet_model::view_to_tensor(&test.slice(s![.., 1.., ..]), &device);
    let got = surrogate
        .statistics_of_features(identity, transforms)
        .unwrap();
    let local_m_in = got.local_m_in.as_ref().unwrap();
    for (i, d) in detect.iter().enumerate() {
        let mine = [
            got.local_cosine[0][i],
            got.local_cosine[1][i],
            got.identity_cosine[0][i],
            got.identity_cosine[1][i],
            got.view_agreement[i],
            local_m_in[i],
            got.m_in[i],
        ];
        for ((s, a), b) in statistics.iter().zip(mine).zip(&d.values) {
            assert!((a - b).abs() < 1e-5, "image {i}, {}: {a} vs {b}", s.label());
        }
    }
}

#[test]
fn the_detector_term_raises_view_agreement() {
    let clf = net();
    let x1 = view_features(&clf, &images(10, 6), 4, 3);
    let x = images(4, 7);
    let y = labels(&clf, &x);
    let terms = SurrogateTerms {
        local_cosine_k: vec![1, 3],
        identity_cosine_k: vec![1, 3],
        view_agreement: true,
        local_m_in_k: Some(3),
        lambda: 1.0,
    };
    let surrogate = CadetSurrogate::new(
        &clf,
        SurrogateReference::from_features(x1.view()).unwrap(),
        terms,
    )
    .unwrap();
    let eot = EotPgd {
        epsilon: 0.05,
        step: 0.01,
        iterations: 8,
        samples: 4,
        batch_size: 4,
        ..EotPgd::paper()
    };
    let a = eot
        .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
        .unwrap();
    let adaptive = eot.clone().with_detector(surrogate);
    let b = adaptive
        .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
        .unwrap();
    assert!(b.samples.iter().all(|s| s.linf <= 0.05 + 1e-6));
    // Judged on fresh transforms (another seed than the attack's).
    let device = clf.device_of();
    let stats = |images: &Array4<f32>| {
        adaptive
            .surrogate
            .statistics(images.view(), 8, &EvalTransform::cadet(), 99, &device)
            .unwrap()
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (sa, sb) = (stats(&a.adversarial), stats(&b.adversarial));
    assert!(
        mean(&sb.view_agreement) > mean(&sa.view_agreement),
        "view agreement: (b) {:?} vs (a) {:?}",
        sb.view_agreement,
        sa.view_agreement
    );
    assert!(
        mean(&sb.identity_cosine[0]) > mean(&sa.identity_cosine[0]),
        "identity cos: (b) {:?} vs (a) {:?}",
        sb.identity_cosine[0],
        sa.identity_cosine[0]
    );
}

#[test]
fn bad_parameters_are_errors() {
    let clf = net();
    let x = images(2, 8);
    let y = labels(&clf, &x);
    let run = |a: &dyn Attack| a.attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress);
    for bad in [
        EotPgd {
            samples: 0,
            ..small()
        },
        EotPgd {
            epsilon: 0.0,
            ..small()
        },
        EotPgd {
            iterations: 0,
            ..small()
        },
        EotPgd {
            transform: EvalTransform {
                scale: 1.5,
                ..EvalTransform::cadet()
            },
            ..small()
        },
        EotPgd {
            transform: EvalTransform {
                flip_probability: f64::NAN,
                ..EvalTransform::cadet()
            },
            ..small()
        },
    ] {
        assert!(
            matches!(
                run(&bad),
                Err(Error::Core(cadet_core::Error::InvalidParameter { .. }))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(run(&small()).map(|_| ()), Ok(())));
    let x1 = view_features(&clf, &images(3, 9), 3, 4);
    let reference = || SurrogateReference::from_features(x1.view()).unwrap();
    let with = |terms: SurrogateTerms| CadetSurrogate::new(&clf, reference(), terms);
    for terms in [
        SurrogateTerms {
            lambda: f32::NAN,
            ..SurrogateTerms::headline()
        },
        SurrogateTerms {
            lambda: -1.0,
            ..SurrogateTerms::headline()
        },
        // k = 50 > |X1| = 3.
        SurrogateTerms::headline(),
    ] {
        assert!(matches!(
            with(terms),
            Err(Error::Core(cadet_core::Error::InvalidParameter { .. }))
        ));
    }
    let ok = SurrogateTerms {
        local_cosine_k: vec![1],
        identity_cosine_k: vec![2],
        view_agreement: true,
        local_m_in_k: Some(3),
        lambda: 0.5,
    };
    // Local m_in needs two transforms per step.
    let one = EotPgd {
        samples: 1,
        ..small()
    }
    .with_detector(with(ok.clone()).unwrap());
    assert!(matches!(
        run(&one),
        Err(Error::Core(cadet_core::Error::InvalidParameter { .. }))
    ));
    let fine = small().with_detector(with(ok).unwrap());
    assert!(run(&fine).is_ok());
    // Reference features without two transforms after the un-augmented view.
    assert!(SurrogateReference::from_features(x1.slice(s![.., ..2, ..])).is_err());
}
