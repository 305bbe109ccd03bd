//! Baselines on constructed data whose answer is known.

use approx::assert_relative_eq;
use cadet_detect::baselines::{Energy, Knn, Mahalanobis, MaxLogit, Msp, Vim};
use cadet_detect::evaluation::{NamedScores, evaluate};
use cadet_detect::{Calibrated, ClassifierOutputs, Detector, Error};
use ndarray::{Array2, array};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn logits_only(l: &Array2<f32>) -> ClassifierOutputs<'_> {
    ClassifierOutputs {
        logits: l.view(),
        features: None,
    }
}

#[test]
fn logit_detectors_by_hand() {
    let l = array![[2.0f32, 1.0, 0.0], [0.0, 0.0, 0.0]];
    let z = 2f64.exp() + 1f64.exp() + 1.0;
    let msp = Msp.anomaly_scores(logits_only(&l)).unwrap();
    assert_relative_eq!(msp[0], -(2f64.exp() / z), epsilon = 1e-12);
    assert_relative_eq!(msp[1], -1.0 / 3.0, epsilon = 1e-12);
    assert_eq!(
        MaxLogit.anomaly_scores(logits_only(&l)).unwrap(),
        vec![-2.0, 0.0]
    );
    let e = Energy::default().anomaly_scores(logits_only(&l)).unwrap();
    assert_relative_eq!(e[0], -z.ln(), epsilon = 1e-12);
    let e2 = Energy { temperature: 2.0 }
        .anomaly_scores(logits_only(&l))
        .unwrap();
    assert_relative_eq!(e2[1], -2.0 * 3f64.ln(), epsilon = 1e-12);
    assert!(
        Energy { temperature: 0.0 }
            .anomaly_scores(logits_only(&l))
            .is_err()
    );
    // Large logits stay finite (log-sum-exp).
    let big = array![[1000.0f32, 999.0]];
    assert!(Energy::default().anomaly_scores(logits_only(&big)).unwrap()[0].is_finite());
}

#[test]
fn mahalanobis_with_a_known_covariance() {
    // Offsets (±1, 0), (0, ±2) around means (0, 0) and (10, 10): Σ = diag(0.5, 2).
    let offsets = [(1.0, 0.0), (-1.0, 0.0), (0.0, 2.0), (0.0, -2.0)];
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for (c, (mx, my)) in [(0.0f32, 0.0f32), (10.0, 10.0)].iter().enumerate() {
        for (dx, dy) in offsets {
            rows.extend([mx + dx, my + dy]);
            labels.push(c as u32);
        }
    }
    let f = Array2::from_shape_vec((8, 2), rows).unwrap();
    let m = Mahalanobis::fit(f.view(), &labels, 2).unwrap();
    let test = array![[1.0f32, 1.0], [10.0, 12.0], [5.0, 5.0]];
    let l = Array2::<f32>::zeros((3, 2));
    let s = m
        .anomaly_scores(ClassifierOutputs {
            logits: l.view(),
            features: Some(test.view()),
        })
        .unwrap();
    // (1, 1) from (0, 0): 1/0.5 + 1/2 = 2.5; (10, 12) from (10, 10): 4/2 = 2; (5, 5): 25/0.5 + 25/2 = 62.5.
    for (got, want) in s.iter().zip([2.5, 2.0, 62.5]) {
        assert_relative_eq!(*got, want, max_relative = 1e-5);
    }
    assert!(matches!(
        Mahalanobis::fit(f.view(), &labels, 3),
        Err(Error::Degenerate(_))
    ));
    assert!(m.anomaly_scores(logits_only(&l)).is_err());
}

#[test]
fn knn_equals_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut normal = |n: usize, d: usize| {
        Array2::from_shape_fn((n, d), |_| {
            Distribution::<f32>::sample(&StandardNormal, &mut rng)
        })
    };
    let (train, test) = (normal(300, 8), normal(20, 8));
    let k = 5;
    let knn = Knn::fit(train.view(), k).unwrap();
    let l = Array2::<f32>::zeros((20, 2));
    let got = knn
        .anomaly_scores(ClassifierOutputs {
            logits: l.view(),
            features: Some(test.view()),
        })
        .unwrap();
    let unit = |r: ndarray::ArrayView1<'_, f32>| {
        let n = r.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        r.iter().map(|v| f64::from(*v) / n).collect::<Vec<f64>>()
    };
    for (i, g) in got.iter().enumerate() {
        let t = unit(test.row(i));
        let mut d: Vec<f64> = train
            .rows()
            .into_iter()
            .map(|r| {
                unit(r)
                    .iter()
                    .zip(&t)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        d.sort_by(f64::total_cmp);
        assert_relative_eq!(*g, d[k - 1], epsilon = 1e-4);
    }
    assert!(Knn::fit(train.view(), 0).is_err() && Knn::fit(train.view(), 301).is_err());
}

#[test]
fn vim_flags_features_outside_the_principal_subspace() {
    // In-distribution features span the first two of four dimensions (plus tiny noise); W reads those two.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let train = Array2::from_shape_fn((400, 4), |(_, j)| {
        let v: f32 = StandardNormal.sample(&mut rng);
        if j < 2 { 3.0 * v } else { 0.05 * v }
    });
    let w = array![[1.0f32, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]];
    let b = [1.0f32, -2.0];
    let vim = Vim::fit(train.view(), w.view(), &b, 2).unwrap();
    // o = −W⁺b = (−1, 2, 0, 0).
    for (o, e) in vim.origin().iter().zip([-1.0, 2.0, 0.0, 0.0]) {
        assert_relative_eq!(*o, e, epsilon = 1e-9);
    }
    let feats = array![[1.0f32, 1.0, 0.0, 0.0], [1.0, 1.0, 3.0, 0.0]];
    let logits = feats.dot(&w.t()) + ndarray::aview1(&b);
    let s = vim
        .anomaly_scores(ClassifierOutputs {
            logits: logits.view(),
            features: Some(feats.view()),
        })
        .unwrap();
    // Same logits; the second has a residual of norm 3 (the residual space is the last two dimensions).
    // The sample covariance tilts the residual space slightly off the last two axes: 1% tolerance.
    assert_relative_eq!(s[1] - s[0], 3.0 * vim.alpha(), max_relative = 1e-2);
    assert!(s[1] > s[0]);
    assert!(Vim::fit(train.view(), w.view(), &b, 4).is_err());
}

#[test]
fn calibrated_baselines_and_the_evaluation_table() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    // Logits of confident (in-distribution) and flat (anomalous) predictions.
    let mut logits = |n: usize, margin: f32| {
        Array2::from_shape_fn((n, 4), |(_, c)| {
            let v: f32 = StandardNormal.sample(&mut rng);
            v + if c == 0 { margin } else { 0.0 }
        })
    };
    let (held_out, test_in, test_out) = (logits(500, 4.0), logits(300, 4.0), logits(300, 0.0));
    let msp = Calibrated::fit(Msp, logits_only(&held_out)).unwrap();
    let p_in = msp.p_values(logits_only(&test_in)).unwrap();
    let p_out = msp.p_values(logits_only(&test_out)).unwrap();
    let named = |name: &str, l: &Array2<f32>, p: Vec<f64>| NamedScores {
        name: name.into(),
        anomaly: Msp.anomaly_scores(logits_only(l)).unwrap(),
        p_values: Some(p),
    };
    let table = evaluate(
        &named("in", &test_in, p_in),
        &[named("flat", &test_out, p_out)],
        0.05,
    )
    .unwrap();
    assert_eq!(table[0].auroc, 0.5);
    // 300 in-distribution p-values at α = 0.05: about 15 rejected.
    assert!(table[0].rejected_at_alpha.unwrap() < 0.12);
    assert!(
        table[1].auroc > 0.9 && table[1].rejected_at_alpha.unwrap() > 0.5,
        "{table:?}"
    );
    assert_eq!(
        table[1].auroc,
        cadet_core::metrics::auroc(
            &named("in", &test_in, vec![]).anomaly,
            &named("o", &test_out, vec![]).anomaly
        )
        .unwrap()
    );
    assert!(evaluate(&table_input(), &[], 1.5).is_err());
}

fn table_input() -> NamedScores {
    NamedScores {
        name: "x".into(),
        anomaly: vec![0.0, 1.0],
        p_values: None,
    }
}
