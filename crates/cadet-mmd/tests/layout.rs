//! Memory layout never changes a result: a Fortran-order (column-major) array — what `np.asfortranarray`
//! saves, and a valid `.npy` — gives exactly what the same values in C order give, for the drift monitor,
//! the permutation test and the estimator, under every kernel with and without a feature map.

mod common;

use cadet_core::Kernel;
use cadet_mmd::{
    CosineKernel, DriftMonitor, GaussianKernel, LinearKernel, PermutationTest, mmd2_unbiased,
};
use common::{gaussian, rng};
use ndarray::{Array2, ShapeBuilder};

/// The same values as `a`, stored column-major.
fn fortran(a: &Array2<f32>) -> Array2<f32> {
    let mut f = Array2::zeros(a.dim().f());
    f.assign(a);
    assert!(!f.is_standard_layout() && f == *a);
    f
}

#[test]
fn drift_monitor_is_layout_blind() {
    let mut r = rng(7);
    let (reference, batch) = (gaussian(&mut r, 120, 6, 0.0), gaussian(&mut r, 30, 6, 0.3));
    let (fr, fb) = (fortran(&reference), fortran(&batch));
    fn run<K: Kernel>(k: K, x: &Array2<f32>, y: &Array2<f32>) -> (f64, f64) {
        let r = DriftMonitor::new(x.view(), k, 499, 3)
            .unwrap()
            .test(y.view(), 0.05)
            .unwrap();
        (r.statistic, r.p_value)
    }
    for (c, f) in [
        (
            run(CosineKernel, &reference, &batch),
            run(CosineKernel, &fr, &batch),
        ),
        (
            run(CosineKernel, &reference, &batch),
            run(CosineKernel, &reference, &fb),
        ),
        (
            run(LinearKernel, &reference, &batch),
            run(LinearKernel, &fr, &fb),
        ),
    ] {
        // Bit for bit: the p-value drifted to 1/(n_perm + 1) when rows of a column-major array read as empty.
        assert_eq!(c, f);
    }
}

#[test]
fn permutation_test_and_estimator_are_layout_blind() {
    let mut r = rng(8);
    let (x, y) = (gaussian(&mut r, 40, 5, 0.0), gaussian(&mut r, 35, 5, 0.4));
    let (fx, fy) = (fortran(&x), fortran(&y));
    let test = PermutationTest::params()
        .n_perm(199)
        .seed(4)
        .check()
        .unwrap();
    fn both<K: Kernel>(
        t: &PermutationTest,
        k: &K,
        x: &Array2<f32>,
        y: &Array2<f32>,
    ) -> (f64, f64, f64) {
        let r = t.two_sample(x.view(), y.view(), k).unwrap();
        (
            r.statistic,
            r.p_value,
            mmd2_unbiased(x.view(), y.view(), k).unwrap(),
        )
    }
    let gaussian_kernel = GaussianKernel::median_heuristic();
    assert_eq!(
        both(&test, &CosineKernel, &x, &y),
        both(&test, &CosineKernel, &fx, &fy)
    );
    assert_eq!(
        both(&test, &LinearKernel, &x, &y),
        both(&test, &LinearKernel, &fx, &y)
    );
    assert_eq!(
        both(&test, &gaussian_kernel, &x, &y),
        both(&test, &gaussian_kernel, &x, &fy)
    );
}
