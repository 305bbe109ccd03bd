//! Statistical validity and power. Under H0 the rejection rate at α = 0.05 must lie in the 99.9% binomial
//! interval, and p-values must be uniform on {1/(P+1), …, 1}; a mean shift must be rejected.

mod common;

use cadet_mmd::{CosineKernel, GaussianKernel, LinearKernel, PermutationTest};
use common::{gaussian, rng};

const TESTS: usize = 1000;
const ALPHA: f64 = 0.05;

/// The 99.9% two-sided binomial interval for the number of rejections among `TESTS` at rate `ALPHA`, from the
/// exact binomial distribution.
fn binomial_interval() -> (usize, usize) {
    let (n, p) = (TESTS, ALPHA);
    let mut pmf = vec![0.0f64; n + 1];
    // log-space binomial pmf.
    let ln_fact = |k: usize| (1..=k).map(|i| (i as f64).ln()).sum::<f64>();
    for (k, v) in pmf.iter_mut().enumerate() {
        *v = (ln_fact(n) - ln_fact(k) - ln_fact(n - k)
            + k as f64 * p.ln()
            + (n - k) as f64 * (1.0 - p).ln())
        .exp();
    }
    let (mut lo, mut acc) = (0, 0.0);
    while acc + pmf[lo] < 0.0005 {
        acc += pmf[lo];
        lo += 1;
    }
    let (mut hi, mut acc) = (n, 0.0);
    while acc + pmf[hi] < 0.0005 {
        acc += pmf[hi];
        hi -= 1;
    }
    (lo, hi)
}

fn null_p_values(clean_calibration: bool, kernel_name: &str) -> Vec<f64> {
    let mut r = rng(2024);
    (0..TESTS)
        .map(|t| {
            let test = PermutationTest::params()
                .n_perm(99)
                .seed(t as u64)
                .check()
                .unwrap();
            let (x, y, p2) = (
                gaussian(&mut r, 12, 4, 0.0),
                gaussian(&mut r, 12, 4, 0.0),
                gaussian(&mut r, 12, 4, 0.0),
            );
            let result = match (clean_calibration, kernel_name) {
                (false, "cosine") => test.two_sample(x.view(), y.view(), &CosineKernel),
                (false, "gaussian") => {
                    test.two_sample(x.view(), y.view(), &GaussianKernel::median_heuristic())
                }
                (false, _) => test.two_sample(x.view(), y.view(), &LinearKernel),
                (true, _) => test.clean_calibration(x.view(), p2.view(), y.view(), &CosineKernel),
            };
            result.unwrap().p_value
        })
        .collect()
}

fn assert_valid(p: &[f64], what: &str) {
    let (lo, hi) = binomial_interval();
    let rejections = p.iter().filter(|&&v| v <= ALPHA).count();
    assert!(
        (lo..=hi).contains(&rejections),
        "{what}: {rejections} rejections of {TESTS}, interval [{lo}, {hi}]"
    );
    assert!(
        p.iter().all(|&v| v > 0.0 && v <= 1.0),
        "{what}: p-value outside (0, 1]"
    );
    // Uniformity: each decile of p holds 100 ± 4.5σ (σ = 9.5) of the 1000 p-values (P = 99: p = k/100 exactly).
    for d in 0..10 {
        let (a, b) = (d as f64 / 10.0, (d + 1) as f64 / 10.0);
        let count = p.iter().filter(|&&v| v > a + 1e-9 && v <= b + 1e-9).count();
        assert!(
            (57..=143).contains(&count),
            "{what}: decile {d} holds {count}"
        );
    }
}

#[test]
fn mmd_is_valid_under_h0() {
    for kernel in ["cosine", "linear", "gaussian"] {
        assert_valid(&null_p_values(false, kernel), kernel);
    }
}

#[test]
fn mmd_cc_is_valid_under_h0() {
    assert_valid(&null_p_values(true, "cosine"), "MMD-CC");
}

#[test]
fn binomial_interval_is_the_known_one() {
    // Binomial(1000, 0.05): mean 50, sd 6.9; the 99.9% interval is about mean ± 3.29 sd.
    let (lo, hi) = binomial_interval();
    assert!(
        (27..=31).contains(&lo) && (71..=75).contains(&hi),
        "[{lo}, {hi}]"
    );
}

#[test]
fn mean_shift_is_rejected() {
    let mut r = rng(7);
    let test = PermutationTest::params()
        .n_perm(500)
        .seed(1)
        .check()
        .unwrap();
    for trial in 0..5 {
        let (x, y) = (gaussian(&mut r, 60, 8, 0.0), gaussian(&mut r, 60, 8, 1.0));
        let p2 = gaussian(&mut r, 60, 8, 0.0);
        let mmd = test.two_sample(x.view(), y.view(), &CosineKernel).unwrap();
        let cc = test
            .clean_calibration(x.view(), p2.view(), y.view(), &CosineKernel)
            .unwrap();
        let lin = test.two_sample(x.view(), y.view(), &LinearKernel).unwrap();
        assert!(
            mmd.p_value <= 0.01 && cc.p_value <= 0.01 && lin.p_value <= 0.01,
            "trial {trial}: {mmd:?} {cc:?}"
        );
        assert_eq!(
            mmd.p_value,
            1.0 / 501.0,
            "a strong shift beats every permutation"
        );
    }
}
