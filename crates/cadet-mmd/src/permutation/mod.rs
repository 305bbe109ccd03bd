//! Permutation tests: MMD (pooled permutations) and MMD-CC (clean calibration).

mod hyperparams;

pub use hyperparams::{MAX_PERMUTATIONS, PermutationTestParams};

use cadet_core::Kernel;
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::pooled::PooledSample;
use crate::sampling::permutation;
use crate::{Error, Result};

/// Which two-sample test produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// MMD²_u with the null from random splits of `X ∪ Y`.
    Mmd,
    /// MMD-CC: MMD²_u(S_P⁽¹⁾, S_Q) with the null from random splits of the clean pool `S_P⁽¹⁾ ∪ S_P⁽²⁾`.
    MmdCc,
}

/// Outcome of a two-sample test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    /// The test.
    pub method: Method,
    /// MMD²_u of the two sets compared.
    pub statistic: f64,
    /// `(1 + #{null ≥ statistic}) / (n_perm + 1)`, in `(0, 1]`.
    pub p_value: f64,
    /// Number of permutations.
    pub n_perm: usize,
    /// The null samples, in permutation order, when asked for.
    pub null: Option<Vec<f64>>,
}

/// A seeded permutation test on MMD²_u, computed as matrix products over chunks of permutations in parallel.
///
/// **p-value.** `p = (1 + #{i : null_i ≥ est}) / (n_perm + 1)`: never 0, and valid (`P(p ≤ α) ≤ α` under the
/// null) because the observed split counts as one of the `n_perm + 1` equally likely splits.
///
/// **Ties.** The null samples are computed in `f32` products, the estimate in `f64`. A null sample within
/// `1e-5 ×` the statistic's scale (centred trace over `n(n−1)`) below the estimate counts as a tie, i.e. as
/// `≥`: rounding can only make the test more conservative, never anti-conservative.
///
/// ```
/// use cadet_mmd::{CosineKernel, PermutationTest};
/// use ndarray::Array2;
///
/// let x = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j) % 5) as f32 + 1.0);
/// let y = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 3 + j * 2) % 5) as f32 + 1.0);
/// let test = PermutationTest::params().n_perm(99).seed(7).check()?;
/// let r = test.two_sample(x.view(), y.view(), &CosineKernel)?;
/// assert!(r.p_value >= 0.01 && r.p_value <= 1.0);
/// # Ok::<(), cadet_mmd::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermutationTest {
    pub(crate) params: PermutationTestParams,
}

/// Relative tolerance under which a null sample counts as a tie with the estimate.
const TIE_TOLERANCE: f64 = 1e-5;

impl PermutationTest {
    /// Default settings, to adjust and [`check`](PermutationTestParams::check).
    pub fn params() -> PermutationTestParams {
        PermutationTestParams::default()
    }

    /// The validated settings.
    pub fn settings(&self) -> &PermutationTestParams {
        &self.params
    }

    /// Tests `H0: X and Y come from one distribution` with MMD²_u and random splits of `X ∪ Y`.
    pub fn two_sample<K: Kernel + ?Sized>(
        &self,
        x: ArrayView2<'_, f32>,
        y: ArrayView2<'_, f32>,
        kernel: &K,
    ) -> Result<TestResult> {
        let pooled = PooledSample::new(x, y, kernel, self.params.n_perm)?;
        let est = pooled.statistic();
        self.finish(Method::Mmd, est, &pooled)
    }

    /// MMD-CC: compares `p1 = S_P⁽¹⁾` with `q = S_Q`, and draws the null from random splits of the clean pool
    /// `S_P⁽¹⁾ ∪ S_P⁽²⁾` into sets of sizes `|S_P⁽¹⁾|` and `|S_Q|`; hence `|S_P⁽²⁾|` must equal `|S_Q|`.
    /// `S_P⁽¹⁾` and `S_P⁽²⁾` are two disjoint in-distribution samples. The null no longer contains the tested
    /// samples, which lowers its variance for small sets (paper §4).
    pub fn clean_calibration<K: Kernel + ?Sized>(
        &self,
        p1: ArrayView2<'_, f32>,
        p2: ArrayView2<'_, f32>,
        q: ArrayView2<'_, f32>,
        kernel: &K,
    ) -> Result<TestResult> {
        if p2.nrows() != q.nrows() {
            return Err(Error::SizeMismatch {
                what: "MMD-CC: |S_P2| must equal |S_Q|",
                expected: q.nrows(),
                got: p2.nrows(),
            });
        }
        let est = PooledSample::new(p1, q, kernel, 0)
            .map_err(|e| name_sets(e, "p1", "q"))?
            .statistic();
        let clean = PooledSample::new(p1, p2, kernel, self.params.n_perm)
            .map_err(|e| name_sets(e, "p1", "p2"))?;
        self.finish(Method::MmdCc, est, &clean)
    }

    /// The `index`-th permutation of `0..len` this test draws (each from its own seeded stream), for audits and
    /// for replaying a test elsewhere.
    pub fn permutation(&self, index: usize, len: usize) -> Vec<usize> {
        permutation(self.params.seed, index as u64, len)
            .into_iter()
            .map(|i| i as usize)
            .collect()
    }

    /// The null samples of a pooled sample: the statistic under `n_perm` seeded random permutations. A
    /// non-finite sample (the kernel's values overflow `f32` in the batched products) is an
    /// [`Error::NonFiniteIntermediate`].
    pub fn null_distribution(&self, pooled: &PooledSample) -> Result<Vec<f64>> {
        let (m, n) = pooled.sizes();
        let (total, n_perm, seed) = (m + n, self.params.n_perm, self.params.seed);
        let chunk = self
            .params
            .chunk_size
            .unwrap_or_else(|| default_chunk(n_perm, total, pooled));
        // Permutations are held a batch at a time (at most 64 MiB of indices), so memory stays bounded.
        let batch = ((64 << 20) / (4 * total)).clamp(chunk, 4096);
        let mut null = Vec::with_capacity(n_perm);
        for start in (0..n_perm).step_by(batch) {
            let end = (start + batch).min(n_perm);
            let perms: Vec<Vec<u32>> = (start..end)
                .into_par_iter()
                .map(|k| permutation(seed, k as u64, total))
                .collect();
            null.extend(pooled.evaluate_many(&perms, chunk));
        }
        crate::pooled::finite_values("null sample", &null)?;
        Ok(null)
    }

    /// The p-value of `est` against the null of `pooled`: only from finite numbers.
    fn finish(&self, method: Method, est: f64, pooled: &PooledSample) -> Result<TestResult> {
        crate::pooled::finite_values("MMD statistic", &[est])?;
        let null = self.null_distribution(pooled)?;
        let tolerance = TIE_TOLERANCE * pooled.magnitude();
        crate::pooled::finite_values("tie tolerance (kernel trace)", &[tolerance])?;
        let p_value = p_value(est, &null, tolerance);
        Ok(TestResult {
            method,
            statistic: est,
            p_value,
            n_perm: null.len(),
            null: self.params.keep_null.then_some(null),
        })
    }
}

/// `(1 + #{null ≥ est − tol}) / (|null| + 1)`. The inputs must be finite (the tests check them first): a NaN
/// compares as never exceeded.
pub fn p_value(est: f64, null: &[f64], tol: f64) -> f64 {
    let exceed = null.iter().filter(|&&v| v >= est - tol).count();
    (1 + exceed) as f64 / (null.len() + 1) as f64
}

/// About four chunks per thread, each at most 8 MiB of indicator and product matrices.
fn default_chunk(n_perm: usize, total: usize, pooled: &PooledSample) -> usize {
    let width = total + pooled.operand_cols();
    let by_memory = (8 << 20) / (4 * width.max(1));
    let by_threads = n_perm.div_ceil(4 * rayon::current_num_threads());
    by_memory.min(by_threads).clamp(1, 256)
}

/// An error a [`PooledSample`] reports about its "X" or "Y", told with the names the caller's arguments have
/// (MMD-CC pools `p1` with `q`, then `p1` with `p2`: neither is "Y" to the caller).
fn name_sets(e: Error, x: &'static str, y: &'static str) -> Error {
    let name = |what: &'static str| match what {
        "X" => x,
        "Y" => y,
        other => other,
    };
    match e {
        Error::Core(core) => Error::Core(match core {
            cadet_core::Error::EmptyInput { what } => {
                cadet_core::Error::EmptyInput { what: name(what) }
            }
            cadet_core::Error::DimensionMismatch {
                what,
                expected,
                got,
            } => cadet_core::Error::DimensionMismatch {
                what: name(what),
                expected,
                got,
            },
            cadet_core::Error::NonFinite { what, index, value } => cadet_core::Error::NonFinite {
                what: name(what),
                index,
                value,
            },
            cadet_core::Error::ZeroNorm { what, row } => cadet_core::Error::ZeroNorm {
                what: name(what),
                row,
            },
            other => other,
        }),
        Error::TooFewSamples { set, got, min } => Error::TooFewSamples {
            set: name(set),
            got,
            min,
        },
        other => other,
    }
}
