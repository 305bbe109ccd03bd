//! NT-Xent against the formula worked out independently in f64.

use approx::assert_relative_eq;
use burn::prelude::*;
use cadet_model::nt_xent;

fn tensor(rows: &[[f32; 3]]) -> Tensor<2> {
    let data: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), 3]), &Device::flex())
}

/// The symmetric NT-Xent by explicit loops: for each of the 2N views, −log(e^{s(i,pos)/τ} / Σ_{k≠i} e^{s(i,k)/τ}).
fn reference(z1: &[[f32; 3]], z2: &[[f32; 3]], tau: f64) -> f64 {
    let z: Vec<Vec<f64>> = z1
        .iter()
        .chain(z2)
        .map(|r| {
            let n = r.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
            r.iter().map(|v| f64::from(*v) / n).collect()
        })
        .collect();
    let (m, n) = (z.len(), z1.len());
    let cos = |a: &Vec<f64>, b: &Vec<f64>| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut total = 0.0;
    for i in 0..m {
        let pos = (i + n) % m;
        let denom: f64 = (0..m)
            .filter(|&k| k != i)
            .map(|k| (cos(&z[i], &z[k]) / tau).exp())
            .sum();
        total += -((cos(&z[i], &z[pos]) / tau).exp() / denom).ln();
    }
    total / m as f64
}

#[test]
fn matches_the_formula_on_hand_made_vectors() {
    let z1 = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.5], [0.3, -1.0, 1.0]];
    let z2 = [[0.9, 0.1, 0.0], [0.1, 1.0, 0.2], [-0.5, 0.4, 2.0]];
    for tau in [0.1, 0.5, 1.0] {
        let got: f32 = nt_xent(tensor(&z1), tensor(&z2), tau).into_scalar();
        assert_relative_eq!(
            f64::from(got),
            reference(&z1, &z2, tau),
            max_relative = 1e-4
        );
    }
}

#[test]
fn hand_cases() {
    // One image: each view's only other view is its positive, so the loss is 0.
    let got: f32 =
        nt_xent(tensor(&[[1.0, 2.0, 3.0]]), tensor(&[[-1.0, 0.0, 1.0]]), 0.1).into_scalar();
    assert!(got.abs() < 1e-5);
    // Two images, positives identical and the two images orthogonal, τ = 1: each view sees its positive at
    // cosine 1 and two negatives at 0: loss = −ln(e / (e + 2)).
    let got: f32 = nt_xent(
        tensor(&[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
        tensor(&[[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]]),
        1.0,
    )
    .into_scalar();
    let e = std::f64::consts::E;
    assert_relative_eq!(f64::from(got), -(e / (e + 2.0)).ln(), max_relative = 1e-5);
}
