//! Table 1: rejection rate of H0 at level α over repeated samplings.

use cadet_core::{Kernel, Progress};
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{reseeded, rows, run_test};
use crate::sampling::{stream, subset};
use crate::{Error, Method, PermutationTest, PermutationTestParams, Result};

/// Unchecked settings of a [`RejectionRate`] experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectionRateParams {
    sample_size: usize,
    repeats: usize,
    alpha: f64,
    method: Method,
    seed: u64,
    test: PermutationTestParams,
}

impl RejectionRateParams {
    /// Samplings (the paper: 100).
    pub fn repeats(mut self, repeats: usize) -> Self {
        self.repeats = repeats;
        self
    }
    /// Level α of each test (the paper: 0.05).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
    /// MMD or MMD-CC.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }
    /// Seed of the samplings.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Settings of each permutation test (the paper: 500 permutations).
    pub fn test(mut self, test: PermutationTestParams) -> Self {
        self.test = test;
        self
    }
    /// Checks every setting without consuming them (see [`ParamGuard`](cadet_core::params::ParamGuard)).
    pub fn validate(&self) -> Result<()> {
        if self.sample_size < 2 {
            return Err(Error::TooFewSamples {
                set: "sample_size",
                got: self.sample_size,
                min: 2,
            });
        }
        if self.repeats == 0 {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "repeats",
                reason: "must be at least 1".into(),
            }));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "alpha",
                reason: format!("must lie in (0, 1), got {}", self.alpha),
            }));
        }
        self.test.validate()
    }

    /// Validates the settings and makes the experiment (the [`ParamGuard`](cadet_core::params::ParamGuard) way in, without importing the
    /// trait).
    pub fn check(self) -> Result<RejectionRate> {
        self.validate()?;
        let test = self.test.clone().check()?;
        Ok(RejectionRate { params: self, test })
    }
}

cadet_core::param_guard!(RejectionRateParams => RejectionRate, Error);

/// Rejection rate of H0 over repeated samplings of `n` samples per set (the paper's Table 1).
///
/// ```
/// use cadet_mmd::experiments::RejectionRate;
/// use cadet_mmd::{CosineKernel, Method, PermutationTest};
/// use ndarray::Array2;
///
/// let pool = Array2::from_shape_fn((200, 3), |(i, j)| ((i * 37 + j * 11) % 29) as f32 + 1.0);
/// let experiment = RejectionRate::params(20)
///     .repeats(10)
///     .method(Method::MmdCc)
///     .test(PermutationTest::params().n_perm(99))
///     .check()?;
/// let report = experiment.run_same_pool(pool.view(), &CosineKernel, &cadet_core::NoProgress)?;
/// assert_eq!(report.p_values.len(), 10);
/// # Ok::<(), cadet_mmd::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RejectionRate {
    params: RejectionRateParams,
    test: PermutationTest,
}

/// Outcome of a [`RejectionRate`] experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectionReport {
    /// The test.
    pub method: Method,
    /// Samples per set.
    pub sample_size: usize,
    /// Level α.
    pub alpha: f64,
    /// Tests with `p ≤ α`.
    pub rejections: usize,
    /// `rejections / repeats`.
    pub rate: f64,
    /// 95% Wilson score interval of the rate.
    pub interval: (f64, f64),
    /// The p-value of each repeat, in order.
    pub p_values: Vec<f64>,
}

impl RejectionRate {
    /// Defaults for sets of `sample_size`: 100 repeats, α = 0.05, MMD, seed 0, 500 permutations.
    pub fn params(sample_size: usize) -> RejectionRateParams {
        RejectionRateParams {
            sample_size,
            repeats: 100,
            alpha: 0.05,
            method: Method::Mmd,
            seed: 0,
            test: PermutationTest::params(),
        }
    }

    /// Samples S_P (and S_P⁽²⁾ for MMD-CC) from `p_pool` and S_Q from `q_pool`, disjointly within each pool.
    pub fn run_two_pools<K: Kernel + ?Sized>(
        &self,
        p_pool: ArrayView2<'_, f32>,
        q_pool: ArrayView2<'_, f32>,
        kernel: &K,
        progress: &dyn Progress,
    ) -> Result<RejectionReport> {
        let n = self.params.sample_size;
        let p_needed = n * self.clean_sets();
        check_pool("P", p_pool.nrows(), p_needed)?;
        check_pool("Q", q_pool.nrows(), n)?;
        self.run(progress, |r| {
            let mut rng = stream(self.params.seed, r as u64);
            let p_idx = subset(&mut rng, p_pool.nrows(), p_needed);
            let q_idx = subset(&mut rng, q_pool.nrows(), n);
            self.one(r, rows(p_pool, &p_idx), rows(q_pool, &q_idx), kernel)
        })
    }

    /// Samples every set disjointly from one pool: the rejection rate estimates the test's size (≈ α).
    pub fn run_same_pool<K: Kernel + ?Sized>(
        &self,
        pool: ArrayView2<'_, f32>,
        kernel: &K,
        progress: &dyn Progress,
    ) -> Result<RejectionReport> {
        let n = self.params.sample_size;
        let needed = n * (self.clean_sets() + 1);
        check_pool("pool", pool.nrows(), needed)?;
        self.run(progress, |r| {
            let mut rng = stream(self.params.seed, r as u64);
            let idx = subset(&mut rng, pool.nrows(), needed);
            let (p_idx, q_idx) = idx.split_at(needed - n);
            self.one(r, rows(pool, p_idx), rows(pool, q_idx), kernel)
        })
    }

    /// Clean sets drawn from P per repeat: S_P, plus S_P⁽²⁾ for MMD-CC.
    fn clean_sets(&self) -> usize {
        if self.params.method == Method::MmdCc {
            2
        } else {
            1
        }
    }

    /// One repeat: `p` holds S_P (then S_P⁽²⁾ for MMD-CC), `q` holds S_Q.
    fn one<K: Kernel + ?Sized>(
        &self,
        r: usize,
        p: ndarray::Array2<f32>,
        q: ndarray::Array2<f32>,
        kernel: &K,
    ) -> Result<f64> {
        let n = self.params.sample_size;
        let test = reseeded(&self.test, r as u64);
        let p1 = p.slice(ndarray::s![..n, ..]).to_owned();
        let p2 = (p.nrows() > n).then(|| p.slice(ndarray::s![n.., ..]).to_owned());
        Ok(run_test(&test, self.params.method, &p1, p2.as_ref(), &q, kernel)?.p_value)
    }

    fn run(
        &self,
        progress: &dyn Progress,
        repeat: impl Fn(usize) -> Result<f64> + Sync,
    ) -> Result<RejectionReport> {
        let repeats = self.params.repeats;
        progress.start(
            &format!("{:?} n={}", self.params.method, self.params.sample_size),
            repeats as u64,
        );
        let p_values = (0..repeats)
            .into_par_iter()
            .map(|r| {
                let p = repeat(r);
                progress.advance(1);
                p
            })
            .collect::<Result<Vec<f64>>>()?;
        progress.finish();
        let rejections = p_values.iter().filter(|&&p| p <= self.params.alpha).count();
        Ok(RejectionReport {
            method: self.params.method,
            sample_size: self.params.sample_size,
            alpha: self.params.alpha,
            rejections,
            rate: rejections as f64 / repeats as f64,
            interval: wilson(rejections, repeats),
            p_values,
        })
    }
}

fn check_pool(pool: &'static str, has: usize, needs: usize) -> Result<()> {
    if has < needs {
        Err(Error::PoolTooSmall { pool, has, needs })
    } else {
        Ok(())
    }
}

/// 95% Wilson score interval for `k` successes in `n` trials.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    let (k, n, z) = (k as f64, n as f64, 1.959_963_984_540_054);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_by_hand() {
        // k = 0, n = 10: upper bound z²/(n + z²) = 3.8415 / 13.8415.
        let (lo, hi) = wilson(0, 10);
        assert_eq!(lo, 0.0);
        assert!((hi - 3.841_458_820_694_124 / 13.841_458_820_694_124).abs() < 1e-12);
        let (lo, hi) = wilson(50, 100);
        assert!((lo + hi - 1.0).abs() < 1e-12 && (hi - 0.596_2).abs() < 1e-3);
    }
}
