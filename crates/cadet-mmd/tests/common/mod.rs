//! Shared helpers of the integration tests: seeded Gaussian samples and the brute-force estimator.
#![allow(dead_code)]

use cadet_core::Kernel;
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `n × d` standard normal samples shifted by `shift` along the first coordinate.
pub fn gaussian(rng: &mut ChaCha8Rng, n: usize, d: usize, shift: f32) -> Array2<f32> {
    Array2::from_shape_fn((n, d), |(_, j)| {
        let v: f32 = StandardNormal.sample(rng);
        if j == 0 { v + shift } else { v }
    })
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Eq. 4 (m = n) or Gretton's U-statistic (m ≠ n) by explicit loops over the Gram matrix, in f64.
pub fn brute_mmd2<K: Kernel>(x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>, kernel: &K) -> f64 {
    let z = ndarray::concatenate![ndarray::Axis(0), x, y];
    let k = kernel.pooled_gram(z.view()).unwrap();
    let (m, n) = (x.nrows(), y.nrows());
    let kk = |i: usize, j: usize| f64::from(k[[i, j]]);
    if m == n {
        let mut s = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    s += kk(i, j) + kk(m + i, m + j) - kk(i, m + j) - kk(m + i, j);
                }
            }
        }
        s / (n * (n - 1)) as f64
    } else {
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    sxx += kk(i, j);
                }
            }
            for j in 0..n {
                sxy += kk(i, m + j);
            }
        }
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    syy += kk(m + i, m + j);
                }
            }
        }
        let (m, n) = (m as f64, n as f64);
        sxx / (m * (m - 1.0)) + syy / (n * (n - 1.0)) - 2.0 * sxy / (m * n)
    }
}

/// Rows of `z` in the order `perm`, split into the first `m` and the rest.
pub fn shuffle_split(
    z: ArrayView2<'_, f32>,
    perm: &[usize],
    m: usize,
) -> (Array2<f32>, Array2<f32>) {
    let rows = z.select(ndarray::Axis(0), perm);
    (
        rows.slice(ndarray::s![..m, ..]).to_owned(),
        rows.slice(ndarray::s![m.., ..]).to_owned(),
    )
}
