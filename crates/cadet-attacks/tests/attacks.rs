//! Attacks against a small classifier trained in the test.

use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use cadet_attacks::{Attack, CarliniWagner, Classifier, Error, Fgsm, Goal, Norm, Pgd};
use cadet_core::NoProgress;
use ndarray::{Array4, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// A linear classifier on flattened 3 × 4 × 4 images.
#[derive(Module, Debug)]
struct Tiny {
    linear: Linear,
}

struct TinyClassifier {
    model: Tiny,
    device: Device,
}

impl Classifier for TinyClassifier {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.model.linear.forward(images.flatten(1, 3))
    }
    fn device(&self) -> Device {
        self.device.clone()
    }
}

/// Two classes: images around 0.35 and 0.65 with per-pixel noise; 3 × 4 × 4.
fn data(n: usize, seed: u64) -> (Array4<f32>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0f32, 0.08).unwrap();
    let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let x = Array4::from_shape_fn((n, 3, 4, 4), |(i, _, _, _)| {
        (if labels[i] == 0 { 0.35 } else { 0.65 } + noise.sample(&mut rng)).clamp(0.0, 1.0)
    });
    (x, labels)
}

fn trained() -> TinyClassifier {
    let device = Device::flex().autodiff();
    device.seed(0);
    let mut model = Tiny {
        linear: LinearConfig::new(48, 2).init(&device),
    };
    let mut optim = AdamConfig::new().init();
    let (x, y) = data(200, 1);
    let xt = Tensor::<4>::from_data(
        TensorData::new(x.iter().copied().collect::<Vec<f32>>(), [200, 3, 4, 4]),
        &device,
    );
    let yt = Tensor::<1, Int>::from_data(
        TensorData::new(y.iter().map(|&v| i64::from(v)).collect::<Vec<i64>>(), [200]),
        &device,
    )
    .reshape([200, 1]);
    for _ in 0..150 {
        let logits = model.linear.forward(xt.clone().flatten(1, 3));
        let loss = log_softmax(logits, 1).gather(1, yt.clone()).mean().neg();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.05, model, grads);
    }
    TinyClassifier { model, device }
}

fn mean_ce(clf: &TinyClassifier, x: &Array4<f32>, y: &[u32]) -> f64 {
    let n = y.len();
    let xt = Tensor::<4>::from_data(
        TensorData::new(x.iter().copied().collect::<Vec<f32>>(), [n, 3, 4, 4]),
        &clf.device,
    );
    let yt = Tensor::<1, Int>::from_data(
        TensorData::new(y.iter().map(|&v| i64::from(v)).collect::<Vec<i64>>(), [n]),
        &clf.device,
    )
    .reshape([n, 1]);
    let v: f32 = log_softmax(clf.logits(xt), 1)
        .gather(1, yt)
        .mean()
        .neg()
        .into_scalar();
    f64::from(v)
}

#[test]
fn pgd_stays_in_its_ball_raises_the_loss_and_beats_noise() {
    let clf = trained();
    let (x, y) = data(100, 2);
    let clean = Pgd {
        iterations: 1,
        epsilon: 0.0,
        ..Pgd::paper()
    }
    .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
    .unwrap();
    assert!(
        clean.clean_accuracy(&y) > 0.95,
        "the tiny classifier should have learned: {}",
        clean.clean_accuracy(&y)
    );
    let eps = 0.2;
    let mut losses = Vec::new();
    for its in [1, 5, 20] {
        let pgd = Pgd {
            epsilon: eps,
            step: 0.02,
            iterations: its,
            random_start: false,
            ..Pgd::paper()
        };
        let out = pgd
            .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
            .unwrap();
        assert!(out.adversarial.iter().all(|v| (0.0..=1.0).contains(v)));
        for (s, (a, c)) in out
            .samples
            .iter()
            .zip(out.adversarial.axis_iter(Axis(0)).zip(x.axis_iter(Axis(0))))
        {
            let linf = (&a - &c).iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(linf <= eps + 1e-6 && (s.linf - linf).abs() < 1e-6);
        }
        losses.push(mean_ce(&clf, &out.adversarial, &y));
    }
    assert!(
        losses[0] < losses[1] && losses[1] < losses[2],
        "loss over iterations {losses:?}"
    );
    let pgd = Pgd {
        epsilon: eps,
        step: 0.02,
        iterations: 20,
        ..Pgd::paper()
    }
    .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
    .unwrap();
    // Random sign noise of the same L∞ norm.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let noisy = x.mapv(|v| {
        (v + if rand::RngExt::random_bool(&mut rng, 0.5) {
            eps
        } else {
            -eps
        })
        .clamp(0.0, 1.0)
    });
    let noise = Pgd {
        epsilon: 0.0,
        iterations: 1,
        ..Pgd::paper()
    }
    .attack(&clf, noisy.view(), &y, &Goal::Untargeted, &NoProgress)
    .unwrap();
    assert!(
        pgd.adversarial_accuracy(&y) + 0.5 < noise.adversarial_accuracy(&y),
        "PGD {} vs noise {}",
        pgd.adversarial_accuracy(&y),
        noise.adversarial_accuracy(&y)
    );
}

#[test]
fn l2_pgd_and_targeted_goals() {
    let clf = trained();
    let (x, y) = data(40, 3);
    let pgd = Pgd {
        norm: Norm::L2,
        epsilon: 1.5,
        step: 0.3,
        iterations: 20,
        ..Pgd::paper()
    };
    let out = pgd
        .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
        .unwrap();
    assert!(out.samples.iter().all(|s| s.l2 <= 1.5 + 1e-4));
    assert!(out.success_rate() > 0.5);
    // Targeted at the other class: success means predicting the target.
    let targets: Vec<u32> = y.iter().map(|l| 1 - l).collect();
    let t = Pgd {
        epsilon: 0.3,
        step: 0.03,
        iterations: 20,
        ..Pgd::paper()
    }
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
fn fgsm_is_one_pgd_step_of_size_epsilon() {
    let clf = trained();
    let (x, y) = data(30, 4);
    let f = Fgsm {
        epsilon: 0.05,
        batch_size: 7,
    }
    .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
    .unwrap();
    let p = Pgd {
        epsilon: 0.05,
        step: 0.05,
        iterations: 1,
        random_start: false,
        batch_size: 11,
        ..Pgd::paper()
    }
    .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
    .unwrap();
    let worst = f
        .adversarial
        .iter()
        .zip(p.adversarial.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "{worst}");
}

#[test]
fn cw_reports_true_norms_and_respects_its_bound() {
    let clf = trained();
    let (x, y) = data(20, 5);
    let cw = CarliniWagner {
        c: 5.0,
        steps: 30,
        learning_rate: 0.05,
        max_l2: Some(0.8),
        binary_search_steps: 2,
        ..CarliniWagner::paper()
    };
    let out = cw
        .attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress)
        .unwrap();
    for (i, s) in out.samples.iter().enumerate() {
        let d = &out.adversarial.index_axis(Axis(0), i) - &x.index_axis(Axis(0), i);
        let l2 = d.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((s.l2 - l2).abs() < 1e-5 && l2 <= 0.8 + 1e-4, "{s:?} {l2}");
        assert_eq!(s.success, s.adversarial_prediction != y[i]);
    }
    assert!(out.success_rate() > 0.0);
}

#[test]
fn bad_parameters_and_inputs_are_errors() {
    let clf = trained();
    let (x, y) = data(4, 6);
    let run = |a: &dyn Attack, labels: &[u32]| {
        a.attack(&clf, x.view(), labels, &Goal::Untargeted, &NoProgress)
    };
    assert!(matches!(
        run(
            &Fgsm {
                epsilon: -1.0,
                batch_size: 4
            },
            &y
        ),
        Err(Error::Core(cadet_core::Error::InvalidParameter { .. }))
    ));
    assert!(matches!(
        run(
            &Pgd {
                iterations: 0,
                ..Pgd::paper()
            },
            &y
        ),
        Err(Error::Core(cadet_core::Error::InvalidParameter { .. }))
    ));
    assert!(matches!(
        run(
            &CarliniWagner {
                steps: 0,
                ..CarliniWagner::paper()
            },
            &y
        ),
        Err(Error::Core(cadet_core::Error::InvalidParameter { .. }))
    ));
    assert!(matches!(
        run(&Pgd::paper(), &y[..3]),
        Err(Error::Input { .. })
    ));
    let bright = x.mapv(|v| v + 2.0);
    assert!(matches!(
        Pgd::paper().attack(&clf, bright.view(), &y, &Goal::Untargeted, &NoProgress),
        Err(Error::Input { .. })
    ));
    assert!(matches!(
        Pgd::paper().attack(&clf, x.view(), &y, &Goal::Targeted(vec![0]), &NoProgress),
        Err(Error::Input { .. })
    ));
}

/// A label or target past the classifier's last class is a typed error naming the image, for every attack: the
/// loss gathered the logit at the label, and the backend aborted the process (an extra CIFAR-10 class folder).
#[test]
fn labels_beyond_the_classifiers_classes_are_refused() {
    let clf = trained();
    let (x, mut y) = data(4, 7);
    y[2] = 2; // the classifier has classes 0 and 1
    let attacks: [Box<dyn Attack>; 3] = [
        Box::new(Fgsm::paper()),
        Box::new(Pgd::paper()),
        Box::new(CarliniWagner::paper()),
    ];
    for attack in &attacks {
        match attack.attack(&clf, x.view(), &y, &Goal::Untargeted, &NoProgress) {
            Err(Error::Input {
                what: "labels",
                reason,
            }) => {
                assert!(
                    reason.contains("image 2") && reason.contains("2 classes"),
                    "{reason}"
                )
            }
            other => panic!("{}: expected a labels error, got {other:?}", attack.name()),
        }
    }
    y[2] = 0;
    let targets = vec![0, 1, 5, 0];
    assert!(matches!(
        Pgd::paper().attack(&clf, x.view(), &y, &Goal::Targeted(targets), &NoProgress),
        Err(Error::Input {
            what: "targets",
            ..
        })
    ));
}

/// Images in any memory layout (column-major, permuted axes, sliced with an offset) are attacked exactly as
/// the standard-layout array: the conversion to the device reads the logical order.
#[test]
fn inputs_in_any_layout_give_the_same_result() {
    use ndarray::{ShapeBuilder, s};
    let clf = trained();
    let (x, y) = data(12, 6);
    let fgsm = Fgsm {
        epsilon: 0.05,
        batch_size: 5,
    };
    let run = |images: ndarray::ArrayView4<'_, f32>| {
        fgsm.attack(&clf, images, &y, &Goal::Untargeted, &NoProgress)
            .unwrap()
            .adversarial
    };
    let expected = run(x.view());
    let mut column_major = Array4::<f32>::zeros((12, 3, 4, 4).f());
    column_major.assign(&x);
    let permuted = x
        .view()
        .permuted_axes([0, 2, 3, 1])
        .as_standard_layout()
        .into_owned();
    let permuted = permuted.view().permuted_axes([0, 3, 1, 2]);
    let mut big = Array4::<f32>::from_elem((14, 3, 4, 4), 0.5);
    big.slice_mut(s![1..13, .., .., ..]).assign(&x);
    let offset = big.slice(s![1..13, .., .., ..]);
    for (name, view) in [
        ("column-major", column_major.view()),
        ("permuted", permuted),
        ("offset", offset),
    ] {
        let got = run(view);
        assert!(got.is_standard_layout(), "{name}");
        assert_eq!(got, expected, "{name}");
    }
}
