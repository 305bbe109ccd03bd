//! The estimator and every permuted statistic against explicit loops over i ≠ j and explicit shuffles.

mod common;

use approx::assert_relative_eq;
use cadet_core::Kernel;
use cadet_mmd::{
    CosineKernel, GaussianKernel, LinearKernel, PermutationTest, PooledSample, Representation,
    mmd2_unbiased,
};
use common::{brute_mmd2, gaussian, rng, shuffle_split};
use ndarray::{Axis, concatenate};

fn check_kernel<K: Kernel>(kernel: &K, sizes: &[(usize, usize, usize)]) {
    let mut r = rng(42);
    for &(m, n, d) in sizes {
        let x = gaussian(&mut r, m, d, 0.0);
        let y = gaussian(&mut r, n, d, 0.7);
        let expected = brute_mmd2(x.view(), y.view(), kernel);
        let got = mmd2_unbiased(x.view(), y.view(), kernel).unwrap();
        assert_relative_eq!(got, expected, epsilon = 1e-6, max_relative = 1e-5);

        // The statistic after explicit shuffles of the pooled rows, three ways: brute force, f64, f32 batch.
        let z = concatenate![Axis(0), x, y];
        let test = PermutationTest::params()
            .n_perm(25)
            .seed(9)
            .keep_null(true)
            .check()
            .unwrap();
        for repr in [Representation::Features, Representation::Gram] {
            let pooled =
                PooledSample::with_representation(x.view(), y.view(), kernel, repr).unwrap();
            let perms: Vec<Vec<usize>> = (0..25).map(|k| test.permutation(k, m + n)).collect();
            let batch = pooled.permuted_batch(&perms).unwrap();
            let null = test.null_distribution(&pooled).unwrap();
            for (k, perm) in perms.iter().enumerate() {
                let (xs, ys) = shuffle_split(z.view(), perm, m);
                let expected = brute_mmd2(xs.view(), ys.view(), kernel);
                assert_relative_eq!(
                    pooled.permuted(perm).unwrap(),
                    expected,
                    epsilon = 1e-6,
                    max_relative = 1e-5
                );
                assert_relative_eq!(batch[k], expected, epsilon = 1e-5, max_relative = 1e-4);
                assert_eq!(
                    null[k], batch[k],
                    "null_distribution uses the test's own permutations"
                );
            }
        }
    }
}

#[test]
fn cosine_matches_brute_force() {
    check_kernel(
        &CosineKernel,
        &[(7, 7, 3), (9, 5, 4), (2, 2, 6), (6, 11, 40)],
    );
}

#[test]
fn linear_matches_brute_force() {
    check_kernel(&LinearKernel, &[(8, 8, 5), (3, 10, 2), (5, 5, 30)]);
}

#[test]
fn gaussian_matches_brute_force() {
    check_kernel(&GaussianKernel::median_heuristic(), &[(8, 8, 5), (4, 9, 3)]);
    check_kernel(&GaussianKernel::fixed(2.0), &[(6, 6, 4)]);
}

#[test]
fn eq4_by_hand() {
    // Linear kernel, 1-d: X = (1, 2), Y = (3, 5). Σ_{i≠j}: XX 2·(1·2) = 4, YY 2·15 = 30,
    // cross terms with i ≠ j: x1y2 + x2y1 + y1x2 + y2x1 = 5 + 6 + 6 + 5 = 22 → (4 + 30 − 22) / 2 = 6.
    let x = ndarray::array![[1.0f32], [2.0]];
    let y = ndarray::array![[3.0f32], [5.0]];
    assert_relative_eq!(
        mmd2_unbiased(x.view(), y.view(), &LinearKernel).unwrap(),
        6.0,
        epsilon = 1e-9
    );
    // Unequal sizes, Gretton: X = (1, 2), Y = (3, 5, 4): XX 4/2, YY 2·(15 + 12 + 20)/6, XY 2·(1+2)·12/6.
    let y3 = ndarray::array![[3.0f32], [5.0], [4.0]];
    let expected = 4.0 / 2.0 + 94.0 / 6.0 - 2.0 * 36.0 / 6.0;
    assert_relative_eq!(
        mmd2_unbiased(x.view(), y3.view(), &LinearKernel).unwrap(),
        expected,
        epsilon = 1e-9
    );
}
