//! The experiments behind the paper's Tables 1 and 2, on pools of embeddings (rows are samples).
//!
//! - [`RejectionRate`] (Table 1): how often H0 is rejected at level α over `R` random samplings of `n` samples
//!   per set, from two pools (power) or from one pool (size: the rate must stay near α).
//! - [`SmallSetAuroc`] (Table 2): AUROC of telling sets of `n = 3..20` anomalies from sets of `n`
//!   in-distribution samples, each tested against a fresh in-distribution reference.
//!
//! Samplings are drawn without replacement, each from its own seeded stream, and run in parallel; the result
//! does not depend on the number of threads.

mod rejection;
mod small_sets;

pub use rejection::{RejectionRate, RejectionRateParams, RejectionReport};
pub use small_sets::{SmallSetAuroc, SmallSetAurocParams, SmallSetRow};

use cadet_core::Kernel;
use ndarray::{Array2, ArrayView2, Axis};

use crate::{Method, PermutationTest, Result, TestResult};

/// Rows `idx` of `pool`.
fn rows(pool: ArrayView2<'_, f32>, idx: &[usize]) -> Array2<f32> {
    pool.select(Axis(0), idx)
}

/// Runs `method` comparing the reference `p1` with `q`; MMD-CC also takes the second clean set `p2`.
fn run_test<K: Kernel + ?Sized>(
    test: &PermutationTest,
    method: Method,
    p1: &Array2<f32>,
    p2: Option<&Array2<f32>>,
    q: &Array2<f32>,
    kernel: &K,
) -> Result<TestResult> {
    match (method, p2) {
        (Method::MmdCc, Some(p2)) => test.clean_calibration(p1.view(), p2.view(), q.view(), kernel),
        _ => test.two_sample(p1.view(), q.view(), kernel),
    }
}

/// The same test with the permutation seed shifted by `offset`, so that repeats use independent permutations.
fn reseeded(test: &PermutationTest, offset: u64) -> PermutationTest {
    let mut t = test.clone();
    t.params.seed = t
        .params
        .seed
        .wrapping_add(offset.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    t
}
