//! Transforms against values worked out by hand for a fixed parameter draw, and the pipelines' invariants.

use approx::assert_relative_eq;
use cadet_augment::functional::{self, CropBox};
use cadet_augment::transforms::JitterParams;
use cadet_augment::{
    CenterCrop, ColorJitter, Compose, HorizontalFlip, Normalize, RandomApply, RandomResizedCrop,
    Resize, Transform, cadet_eval, image_rng, simclr_train,
};
use ndarray::Array3;

fn ramp(c: usize, h: usize, w: usize) -> Array3<f32> {
    Array3::from_shape_fn((c, h, w), |(ch, y, x)| {
        ((ch * 7 + y * w + x) % 23) as f32 / 22.0
    })
}

#[test]
fn resized_crop_with_a_known_box_is_crop_then_resize() {
    let img = ramp(3, 8, 8);
    // Box 4 × 4 at (2, 2) to 2 × 2: each output is the antialiased mean of a 3-tap window (weights .75 .75 .25
    // normalised, per axis), starting one pixel into the box (centre 1 within the box).
    let b = CropBox {
        top: 2,
        left: 2,
        height: 4,
        width: 4,
    };
    let out = functional::resize_box(img.view(), b, 2, 2).unwrap();
    let w = [0.75f32 / 1.75, 0.75 / 1.75, 0.25 / 1.75];
    let mut expected = 0.0;
    for (dy, wy) in w.iter().enumerate() {
        for (dx, wx) in w.iter().enumerate() {
            expected += wy * wx * img[[1, 2 + dy, 2 + dx]];
        }
    }
    assert_relative_eq!(out[[1, 0, 0]], expected, epsilon = 1e-6);
    // The same box drawn by RandomResizedCrop's fallback: scale 1 with an impossible aspect range → centre box.
    let t = RandomResizedCrop {
        size: 2,
        scale: (1.0, 1.0),
        ratio: (3.0, 4.0),
    };
    let b = t.sample(8, 8, &mut image_rng(0, 0));
    // in_ratio 1 < 3: w = 8, h = round(8 / 3) = 3, centred.
    assert_eq!(
        b,
        CropBox {
            top: 2,
            left: 0,
            height: 3,
            width: 8
        }
    );
}

#[test]
fn jitter_with_known_factors_is_the_composition_of_adjustments() {
    let img = ramp(3, 4, 5);
    let p = JitterParams {
        order: [3, 0, 2, 1],
        brightness: 1.3,
        contrast: 0.7,
        saturation: 1.6,
        hue: -0.1,
    };
    let got = ColorJitter::apply_params(img.view(), &p).unwrap();
    let step = functional::adjust_hue(img.view(), -0.1).unwrap();
    let step = functional::adjust_brightness(step.view(), 1.3);
    let step = functional::adjust_saturation(step.view(), 1.6).unwrap();
    let expected = functional::adjust_contrast(step.view(), 0.7).unwrap();
    assert_eq!(got, expected);
    // A pixel by hand: brightness 1.3 of 0.5 is 0.65; of 0.9 clamps to 1.
    let px = Array3::from_shape_vec((3, 1, 1), vec![0.5, 0.9, 0.0]).unwrap();
    let only_b = JitterParams {
        order: [0, 1, 2, 3],
        brightness: 1.3,
        contrast: 1.0,
        saturation: 1.0,
        hue: 0.0,
    };
    let out = ColorJitter::apply_params(px.view(), &only_b).unwrap();
    assert_relative_eq!(out[[0, 0, 0]], 0.65, epsilon = 1e-6);
    assert_eq!(out[[1, 0, 0]], 1.0);
}

#[test]
fn jitter_factors_stay_in_their_ranges() {
    let j = ColorJitter::simclr(1.0);
    let mut rng = image_rng(1, 0);
    for _ in 0..2000 {
        let p = j.sample(&mut rng);
        for f in [p.brightness, p.contrast, p.saturation] {
            assert!((0.2..=1.8).contains(&f), "{p:?}");
        }
        assert!((-0.2..=0.2).contains(&p.hue));
        let mut o = p.order;
        o.sort_unstable();
        assert_eq!(o, [0, 1, 2, 3]);
    }
}

#[test]
fn resize_center_crop_normalize() {
    let img = ramp(3, 10, 20);
    let r = Resize { size: 5 }
        .apply(img.view(), &mut image_rng(0, 0))
        .unwrap();
    assert_eq!(r.dim(), (3, 5, 10));
    let c = CenterCrop { size: 4 }
        .apply(img.view(), &mut image_rng(0, 0))
        .unwrap();
    // (10 − 4)/2 = 3, (20 − 4)/2 = 8.
    assert_eq!(c[[2, 0, 0]], img[[2, 3, 8]]);
    assert!(
        CenterCrop { size: 11 }
            .apply(img.view(), &mut image_rng(0, 0))
            .is_err()
    );
    let n = Normalize::imagenet()
        .apply(img.view(), &mut image_rng(0, 0))
        .unwrap();
    assert_relative_eq!(
        n[[0, 1, 1]],
        (img[[0, 1, 1]] - 0.485) / 0.229,
        epsilon = 1e-6
    );
    assert!(
        Normalize::imagenet()
            .apply(ramp(1, 2, 2).view(), &mut image_rng(0, 0))
            .is_err()
    );
}

#[test]
fn pipelines_keep_values_in_unit_range_and_shapes() {
    let img = ramp(3, 40, 48);
    let train = simclr_train(32, 1.0);
    let eval = cadet_eval(32);
    let eval_resized = cadet_eval(24).with_resize(28);
    for seed in 0..30 {
        let mut rng = image_rng(seed, 3);
        for out in [
            train.apply(img.view(), &mut rng).unwrap(),
            eval.apply(img.view(), &mut rng).unwrap(),
            eval_resized.apply(img.view(), &mut rng).unwrap(),
        ] {
            assert!(out.iter().all(|&v| (0.0..=1.0).contains(&v)));
            assert_eq!(out.dim().0, 3);
        }
    }
    assert_eq!(
        eval_resized
            .apply(img.view(), &mut image_rng(0, 0))
            .unwrap()
            .dim(),
        (3, 24, 24)
    );
}

#[test]
fn eval_crop_area_is_fixed_at_three_quarters() {
    let t = cadet_eval(32).crop;
    let mut rng = image_rng(5, 0);
    for _ in 0..500 {
        let b = t.sample(200, 200, &mut rng);
        let area = (b.height * b.width) as f64 / 40_000.0;
        // Rounding of the sides to whole pixels moves the area by < 1.5%.
        assert!((area - 0.75).abs() < 0.015, "{b:?}");
    }
}

#[test]
fn bad_parameters_are_typed_errors() {
    let img = ramp(3, 8, 8);
    let mut rng = image_rng(0, 0);
    assert!(
        RandomResizedCrop::new(8)
            .with_scale(0.5, 0.2)
            .apply(img.view(), &mut rng)
            .is_err()
    );
    assert!(
        HorizontalFlip { p: 1.5 }
            .apply(img.view(), &mut rng)
            .is_err()
    );
    assert!(
        RandomApply::new(HorizontalFlip::default(), -0.1)
            .apply(img.view(), &mut rng)
            .is_err()
    );
    assert!(
        ColorJitter {
            hue: 0.7,
            ..ColorJitter::simclr(1.0)
        }
        .apply(img.view(), &mut rng)
        .is_err()
    );
    assert!(
        ColorJitter::simclr(1.0)
            .apply(ramp(1, 8, 8).view(), &mut rng)
            .is_err()
    );
    let identity = Compose::new();
    assert_eq!(identity.apply(img.view(), &mut rng).unwrap(), img);
}

#[test]
fn owned_and_borrowed_application_agree_draw_for_draw() {
    use cadet_augment::{ColorJitter, RandomGrayscale};
    let img = ramp(3, 12, 14);
    let steps: Vec<Box<dyn Transform>> = vec![
        Box::new(HorizontalFlip::default()),
        Box::new(RandomGrayscale { p: 0.5 }),
        Box::new(RandomApply::new(ColorJitter::simclr(1.0), 0.5)),
        Box::new(simclr_train(10, 1.0)),
    ];
    for step in &steps {
        let (mut a, mut b) = (image_rng(4, 0), image_rng(4, 0));
        for _ in 0..20 {
            let borrowed = step.apply(img.view(), &mut a).unwrap();
            let owned = step.apply_owned(img.clone(), &mut b).unwrap();
            assert_eq!(borrowed, owned, "{step:?}");
        }
    }
}

#[test]
fn identity_view_is_the_image_or_its_deterministic_evaluation_crop() {
    // CIFAR scale: an image already at the output size is returned unchanged.
    let img = ramp(3, 8, 8);
    assert_eq!(cadet_eval(8).identity_view(img.view()).unwrap(), img);
    // Another size, no resize step: the whole image resized (box = the whole image).
    let wide = ramp(3, 6, 12);
    let expected =
        functional::resize_box(wide.view(), functional::full_box(wide.view()), 4, 4).unwrap();
    assert_eq!(cadet_eval(4).identity_view(wide.view()).unwrap(), expected);
    // ImageNet style: Resize(shorter side 10) then the central 8 × 8 crop, as torchvision's evaluation.
    let big = ramp(3, 20, 30);
    let pipeline = cadet_eval(8).with_resize(10);
    let mut rng = image_rng(0, 0);
    let resized = Resize { size: 10 }.apply(big.view(), &mut rng).unwrap();
    let expected = CenterCrop { size: 8 }
        .apply(resized.view(), &mut rng)
        .unwrap();
    let got = pipeline.identity_view(big.view()).unwrap();
    assert_eq!(got.dim(), (3, 8, 8));
    assert_eq!(got, expected);
    // Deterministic, unlike the pipeline's views.
    assert_eq!(pipeline.identity_view(big.view()).unwrap(), got);
    // Too small for the crop after resizing: a typed error, not a panic.
    assert!(
        cadet_eval(8)
            .with_resize(4)
            .identity_view(big.view())
            .is_err()
    );
}
