//! Bad input gives a typed error, never a panic or a NaN.

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
    assert!(matches!(
        core(mmd2_unbiased(x.view(), zero_row.view(), &CosineKernel).unwrap_err()),
        cadet_core::Error::ZeroNorm { .. }
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
        Err(Error::InvalidParameter {
            name: "chunk_size",
            ..
        })
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
