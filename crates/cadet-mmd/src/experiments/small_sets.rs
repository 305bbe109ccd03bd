//! Table 2: AUROC of detecting small sets of anomalies against in-distribution resamplings.

use cadet_core::{Kernel, Progress, metrics};
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{reseeded, rows, run_test};
use crate::sampling::{stream, subset};
use crate::{Error, Method, PermutationTest, PermutationTestParams, Result};

/// Unchecked settings of a [`SmallSetAuroc`] experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmallSetAurocParams {
    set_sizes: Vec<usize>,
    reference_size: usize,
    trials: usize,
    method: Method,
    seed: u64,
    test: PermutationTestParams,
}

impl SmallSetAurocParams {
    /// Sizes `n` of the tested sets (the paper: 3, 5, 10, 20).
    pub fn set_sizes(mut self, set_sizes: Vec<usize>) -> Self {
        self.set_sizes = set_sizes;
        self
    }
    /// Size of the in-distribution reference S_P⁽¹⁾ each set is compared with.
    pub fn reference_size(mut self, reference_size: usize) -> Self {
        self.reference_size = reference_size;
        self
    }
    /// Trials per class and size: this many in-distribution sets and as many anomalous sets.
    pub fn trials(mut self, trials: usize) -> Self {
        self.trials = trials;
        self
    }
    /// MMD or MMD-CC (the paper's Table 2 uses MMD-CC).
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }
    /// Seed of the samplings.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Settings of each permutation test.
    pub fn test(mut self, test: PermutationTestParams) -> Self {
        self.test = test;
        self
    }
    /// Checks every setting without consuming them (see [`ParamGuard`](cadet_core::params::ParamGuard)).
    pub fn validate(&self) -> Result<()> {
        if self.set_sizes.is_empty() {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "set_sizes",
                reason: "no set size".into(),
            }));
        }
        if let Some(&n) = self.set_sizes.iter().find(|&&n| n < 2) {
            return Err(Error::TooFewSamples {
                set: "set_sizes",
                got: n,
                min: 2,
            });
        }
        if self.reference_size < 2 {
            return Err(Error::TooFewSamples {
                set: "reference_size",
                got: self.reference_size,
                min: 2,
            });
        }
        if self.trials == 0 {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "trials",
                reason: "must be at least 1".into(),
            }));
        }
        self.test.validate()
    }

    /// Validates the settings and makes the experiment (the [`ParamGuard`](cadet_core::params::ParamGuard) way in, without importing the
    /// trait).
    pub fn check(self) -> Result<SmallSetAuroc> {
        self.validate()?;
        let test = self.test.clone().check()?;
        Ok(SmallSetAuroc { params: self, test })
    }
}

cadet_core::param_guard!(SmallSetAurocParams => SmallSetAuroc, Error);

/// AUROC of telling sets of `n` anomalies from sets of `n` in-distribution samples (the paper's Table 2).
///
/// Each trial draws, without replacement, a fresh reference S_P⁽¹⁾ of `reference_size` in-distribution samples
/// (and for MMD-CC a second clean set S_P⁽²⁾ of `n`), then a tested set of `n` samples: from the in-distribution
/// pool (disjoint from the references) for negative trials, from the anomaly pool for positive trials. The
/// score of a trial is its p-value (small = anomalous); [`SmallSetRow::auroc`] is the AUROC of `1 − p` and
/// [`SmallSetRow::auroc_statistic`] that of the MMD² estimate itself.
#[derive(Debug, Clone)]
pub struct SmallSetAuroc {
    params: SmallSetAurocParams,
    test: PermutationTest,
}

/// One row of a [`SmallSetAuroc`] experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmallSetRow {
    /// Size `n` of the tested sets.
    pub set_size: usize,
    /// AUROC with the p-value as score (ties count one half).
    pub auroc: f64,
    /// AUROC with the MMD² estimate as score.
    pub auroc_statistic: f64,
    /// Trials per class.
    pub trials: usize,
}

impl SmallSetAuroc {
    /// Defaults: sizes 3, 5, 10, 20; reference of 100; 500 trials per class; MMD-CC; seed 0; 500 permutations.
    pub fn params() -> SmallSetAurocParams {
        SmallSetAurocParams {
            set_sizes: vec![3, 5, 10, 20],
            reference_size: 100,
            trials: 500,
            method: Method::MmdCc,
            seed: 0,
            test: PermutationTest::params(),
        }
    }

    /// Runs every set size; `in_pool` holds in-distribution embeddings, `out_pool` anomalies.
    pub fn run<K: Kernel + ?Sized>(
        &self,
        in_pool: ArrayView2<'_, f32>,
        out_pool: ArrayView2<'_, f32>,
        kernel: &K,
        progress: &dyn Progress,
    ) -> Result<Vec<SmallSetRow>> {
        let p = &self.params;
        let clean = if p.method == Method::MmdCc { 1 } else { 0 };
        let max_n = *p.set_sizes.iter().max().expect("checked non-empty");
        let in_needed = p.reference_size + max_n * (clean + 1);
        if in_pool.nrows() < in_needed {
            return Err(Error::PoolTooSmall {
                pool: "in-distribution",
                has: in_pool.nrows(),
                needs: in_needed,
            });
        }
        if out_pool.nrows() < max_n {
            return Err(Error::PoolTooSmall {
                pool: "anomalies",
                has: out_pool.nrows(),
                needs: max_n,
            });
        }
        progress.start("small-set AUROC", (2 * p.trials * p.set_sizes.len()) as u64);
        let rows_out = p
            .set_sizes
            .iter()
            .enumerate()
            .map(|(size_index, &n)| {
                let trial = |t: usize| -> Result<(f64, f64)> {
                    // Stream per (size, class, trial); class 0 = in-distribution, 1 = anomalies.
                    let id = ((size_index * 2 + usize::from(t >= p.trials)) * p.trials
                        + t % p.trials) as u64;
                    let mut rng = stream(p.seed, id);
                    let idx = subset(
                        &mut rng,
                        in_pool.nrows(),
                        p.reference_size + n * (clean + 1),
                    );
                    let (p1, rest) = idx.split_at(p.reference_size);
                    let p2 = (clean == 1).then(|| rows(in_pool, &rest[..n]));
                    let tested = if t < p.trials {
                        rows(in_pool, &rest[clean * n..])
                    } else {
                        rows(out_pool, &subset(&mut rng, out_pool.nrows(), n))
                    };
                    let r = run_test(
                        &reseeded(&self.test, id),
                        p.method,
                        &rows(in_pool, p1),
                        p2.as_ref(),
                        &tested,
                        kernel,
                    )?;
                    progress.advance(1);
                    Ok((r.p_value, r.statistic))
                };
                let results = (0..2 * p.trials)
                    .into_par_iter()
                    .map(trial)
                    .collect::<Result<Vec<_>>>()?;
                let (inl, outl) = results.split_at(p.trials);
                let score = |rs: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| {
                    rs.iter().map(f).collect::<Vec<f64>>()
                };
                Ok(SmallSetRow {
                    set_size: n,
                    auroc: metrics::auroc(&score(inl, |r| 1.0 - r.0), &score(outl, |r| 1.0 - r.0))?,
                    auroc_statistic: metrics::auroc(&score(inl, |r| r.1), &score(outl, |r| r.1))?,
                    trials: p.trials,
                })
            })
            .collect();
        progress.finish();
        rows_out
    }
}
