//! Equality with `../shared/reference/stats_ref.py` (NumPy, f64) on a committed fixture: the statistic, the
//! statistic under each permutation the reference drew, and its p-value. Regenerate the fixture with
//! `tests/fixtures/make_reference_fixture.py`; this test needs no Python.

use approx::assert_relative_eq;
use cadet_mmd::{CosineKernel, PooledSample, Representation, mmd2_unbiased, p_value};
use ndarray::Array2;
use serde_json::Value;

fn matrix(v: &Value) -> Array2<f32> {
    let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).unwrap();
    Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/reference_mmd.json")).unwrap()
}

fn check(pooled: &PooledSample, est: f64, expected: &Value) {
    let perms: Vec<Vec<usize>> = serde_json::from_value(expected["permutations"].clone()).unwrap();
    let ref_null: Vec<f64> = serde_json::from_value(expected["null"].clone()).unwrap();
    let batch = pooled.permuted_batch(&perms).unwrap();
    for ((perm, &want), &got_batch) in perms.iter().zip(&ref_null).zip(&batch) {
        assert_relative_eq!(
            pooled.permuted(perm).unwrap(),
            want,
            epsilon = 1e-7,
            max_relative = 1e-6
        );
        assert_relative_eq!(got_batch, want, epsilon = 1e-6, max_relative = 1e-5);
    }
    // Same permutations, same count of null ≥ est: the reference's p-value exactly.
    assert_eq!(
        p_value(est, &batch, 1e-9),
        expected["p_value"].as_f64().unwrap()
    );
}

#[test]
fn mmd_matches_numpy_reference() {
    let fx = fixture();
    let (x, y) = (matrix(&fx["x"]), matrix(&fx["y"]));
    let est = mmd2_unbiased(x.view(), y.view(), &CosineKernel).unwrap();
    assert_relative_eq!(
        est,
        fx["mmd"]["statistic"].as_f64().unwrap(),
        max_relative = 1e-6
    );
    for repr in [Representation::Features, Representation::Gram] {
        let pooled =
            PooledSample::with_representation(x.view(), y.view(), &CosineKernel, repr).unwrap();
        assert_eq!(pooled.uses_features(), repr == Representation::Features);
        check(&pooled, est, &fx["mmd"]);
    }
}

#[test]
fn mmd_cc_matches_numpy_reference() {
    let fx = fixture();
    let (p1, q, p2) = (matrix(&fx["x"]), matrix(&fx["y"]), matrix(&fx["p2"]));
    let est = mmd2_unbiased(p1.view(), q.view(), &CosineKernel).unwrap();
    assert_relative_eq!(
        est,
        fx["mmdcc"]["statistic"].as_f64().unwrap(),
        max_relative = 1e-6
    );
    let clean = PooledSample::new(p1.view(), p2.view(), &CosineKernel, 0).unwrap();
    check(&clean, est, &fx["mmdcc"]);
}
