//! Bad input gives a typed error, never a panic or a NaN.

use cadet_core::Kernel;
use cadet_mmd::{
    CosineKernel, Error, GaussianKernel, LinearKernel, PermutationTest, PooledSample, mmd2_unbiased,
};
use ndarray::{Array2, array};

fn core(e: Error) -> cadet_core::Error {
    match e {
        Error::Core(c) => c,
        other => panic!("expected a core error, got {other:?}"),
    }
}

#[test]
fn fewer_than_two_samples() {
    let one = array![[1.0f32, 2.0]];
    let two = array![[1.0f32, 2.0], [0.5, 1.0]];
    assert!(matches!(
        mmd2_unbiased(one.view(), two.view(), &LinearKernel),
        Err(Error::TooFewSamples {
            set: "X",
            got: 1,
            min: 2
        })
    ));
    assert!(matches!(
        mmd2_unbiased(two.view(), one.view(), &LinearKernel),
        Err(Error::TooFewSamples {
            set: "Y",
            got: 1,
            ..
        })
    ));
}

#[test]
fn empty_input() {
    let empty = Array2::<f32>::zeros((0, 3));
    let no_cols = Array2::<f32>::zeros((4, 0));
    let x = Array2::<f32>::ones((3, 3));
    assert!(matches!(
        core(mmd2_unbiased(empty.view(), x.view(), &LinearKernel).unwrap_err()),
        cadet_core::Error::EmptyInput { .. }
    ));
    assert!(matches!(
        core(mmd2_unbiased(no_cols.view(), x.view(), &LinearKernel).unwrap_err()),
        cadet_core::Error::EmptyInput { .. }
    ));
}

#[test]
fn mismatched_dimensions() {
    let x = Array2::<f32>::ones((3, 3));
    let y = Array2::<f32>::ones((3, 4));
    assert!(matches!(
        core(mmd2_unbiased(x.view(), y.view(), &CosineKernel).unwrap_err()),
        cadet_core::Error::DimensionMismatch {
            expected: 3,
            got: 4,
            ..
        }
    ));
}

#[test]
fn nan_and_infinity() {
    let x = array![[1.0f32, 2.0], [3.0, 4.0]];
    let nan = array![[1.0f32, f32::NAN], [3.0, 4.0]];
    let inf = array![[1.0f32, 2.0], [f32::INFINITY, 4.0]];
    for bad in [&nan, &inf] {
        for r in [
            mmd2_unbiased(x.view(), bad.view(), &CosineKernel),
            mmd2_unbiased(bad.view(), x.view(), &GaussianKernel::median_heuristic()),
        ] {
            assert!(matches!(
                core(r.unwrap_err()),
                cadet_core::Error::NonFinite { .. }
            ));
        }
    }
    let zero_row = array![[0.0f32, 0.0], [3.0, 4.0]];
    // The error names the set and its own row, not a row of the pooled X ∪ Y.
    assert!(matches!(
        core(mmd2_unbiased(x.view(), zero_row.view(), &CosineKernel).unwrap_err()),
        cadet_core::Error::ZeroNorm { what: "Y", row: 0 }
    ));
    assert!(matches!(
        core(mmd2_unbiased(zero_row.view(), x.view(), &CosineKernel).unwrap_err()),
        cadet_core::Error::ZeroNorm { what: "X", row: 0 }
    ));
}

#[test]
fn zero_permutations_and_bad_chunks() {
    assert!(matches!(
        PermutationTest::params().n_perm(0).check(),
        Err(Error::ZeroPermutations)
    ));
    assert!(matches!(
        PermutationTest::params().chunk_size(0).check(),
        Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "chunk_size",
            ..
        }))
    ));
}

#[test]
fn mmd_cc_sizes_and_bad_permutations() {
    let a = Array2::from_shape_fn((5, 2), |(i, j)| (i + j) as f32 + 1.0);
    let b = Array2::from_shape_fn((4, 2), |(i, j)| (i * j) as f32 + 1.0);
    let test = PermutationTest::params().n_perm(10).check().unwrap();
    assert!(matches!(
        test.clean_calibration(a.view(), b.view(), a.view(), &CosineKernel),
        Err(Error::SizeMismatch {
            expected: 5,
            got: 4,
            ..
        })
    ));
    let pooled = PooledSample::new(a.view(), b.view(), &LinearKernel, 0).unwrap();
    assert!(matches!(
        pooled.permuted(&[0, 1, 2]),
        Err(Error::InvalidPermutation {
            expected_len: 9,
            ..
        })
    ));
    assert!(matches!(
        pooled.permuted(&[0, 1, 2, 3, 4, 5, 6, 7, 7]),
        Err(Error::InvalidPermutation { .. })
    ));
    assert!(matches!(
        pooled.permuted_batch(&[vec![0, 1, 2, 3, 4, 5, 6, 7, 9]]),
        Err(Error::InvalidPermutation { .. })
    ));
}

/// Large values overflow the linear kernel's `f32` products. Today the statistic came out NaN (JSON `null`)
/// and the p-value 1/(P+1), i.e. "reject" for two identical samples: it must be a typed error instead.
#[test]
fn kernel_overflow_is_an_error_not_a_p_value() {
    let test = PermutationTest::params().n_perm(99).check().unwrap();
    let overflow = |r: Result<cadet_mmd::TestResult, Error>| match r {
        Err(Error::NonFiniteIntermediate { .. }) => {}
        Err(Error::Core(cadet_core::Error::NonFinite { .. })) => {}
        other => panic!("expected an overflow error, got {other:?}"),
    };
    // Few samples in high dimension (the Gram-matrix route): entries ≈ 2048 · (1e20)² overflow f32.
    let x = Array2::from_shape_fn((20, 2048), |(i, j)| 1e20 * (1.0 + ((i * 7 + j) % 5) as f32));
    overflow(test.two_sample(x.view(), x.view(), &LinearKernel));
    let p2 = x.clone();
    overflow(test.clean_calibration(x.view(), p2.view(), x.view(), &LinearKernel));
    assert!(LinearKernel.gram(x.view(), x.view()).is_err());
    // Many samples in low dimension (the feature route): sums of 1e37 overflow in the null's products.
    let y = Array2::from_shape_fn((300, 4), |(i, j)| {
        3e37 * if (i + j) % 2 == 0 { 1.0 } else { -1.0 }
    });
    overflow(test.two_sample(y.view(), y.view(), &LinearKernel));
    // The Gaussian kernel's distances overflow as well.
    overflow(test.two_sample(x.view(), x.view(), &GaussianKernel::median_heuristic()));
    // Moderate values are fine: identical samples are not rejected.
    let small = x.mapv(|v| v * 1e-20);
    let r = test
        .two_sample(small.view(), small.view(), &LinearKernel)
        .unwrap();
    assert!(r.statistic.is_finite() && r.p_value > 0.05, "{r:?}");
}

/// A permutation count whose null samples could not be allocated is refused up front (it aborted).
#[test]
fn absurd_permutation_counts_are_refused() {
    for n in [usize::MAX, cadet_mmd::MAX_PERMUTATIONS + 1] {
        let out = PermutationTest::params().n_perm(n).check();
        assert!(
            matches!(
                out,
                Err(Error::Core(cadet_core::Error::InvalidParameter {
                    name: "n_perm",
                    ..
                }))
            ),
            "{out:?}"
        );
    }
    assert!(
        PermutationTest::params()
            .n_perm(cadet_mmd::MAX_PERMUTATIONS)
            .check()
            .is_ok()
    );
}

/// MMD-CC's errors name the argument at fault (`p1`, `p2`, `q`), not the "X"/"Y" of the pooled samples it
/// builds inside (a zero row of `p2` used to be reported as "Y", the tested set).
#[test]
fn mmd_cc_errors_name_the_argument_at_fault() {
    let test = PermutationTest::params()
        .n_perm(20)
        .seed(0)
        .check()
        .unwrap();
    let good = Array2::from_shape_fn((6, 3), |(i, j)| (i + j) as f32 + 1.0);
    let mut zero_row = good.clone();
    zero_row.row_mut(2).fill(0.0);
    let mut nan = good.clone();
    nan[[1, 1]] = f32::NAN;
    let cases = [
        (zero_row.view(), good.view(), good.view(), "p1: row 2"),
        (good.view(), zero_row.view(), good.view(), "p2: row 2"),
        (good.view(), good.view(), zero_row.view(), "q: row 2"),
        (good.view(), nan.view(), good.view(), "p2: non-finite"),
        (good.view(), good.view(), nan.view(), "q: non-finite"),
    ];
    for (p1, p2, q, expected) in cases {
        let message = test
            .clean_calibration(p1, p2, q, &CosineKernel)
            .unwrap_err()
            .to_string();
        assert!(message.starts_with(expected), "{message}");
    }
    let narrow = Array2::from_shape_fn((6, 2), |(i, j)| (i + j) as f32 + 1.0);
    let message = test
        .clean_calibration(good.view(), narrow.view(), good.view(), &CosineKernel)
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("p2:"), "{message}");
}
