//! Hyperparameters of the permutation test, validated once (unchecked → checked).

use serde::{Deserialize, Serialize};

use super::PermutationTest;
use crate::{Error, Result};

/// The most permutations a test accepts: 10⁷ (80 MB of null samples; p-values down to 10⁻⁷).
pub const MAX_PERMUTATIONS: usize = 10_000_000;

/// Unchecked settings of a [`PermutationTest`]; [`check`](Self::check) validates them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermutationTestParams {
    pub(crate) n_perm: usize,
    pub(crate) seed: u64,
    pub(crate) keep_null: bool,
    pub(crate) chunk_size: Option<usize>,
}

impl Default for PermutationTestParams {
    /// 500 permutations (the paper's setting), seed 0, null samples not kept, automatic chunking.
    fn default() -> Self {
        Self {
            n_perm: 500,
            seed: 0,
            keep_null: false,
            chunk_size: None,
        }
    }
}

impl PermutationTestParams {
    /// Number of random permutations (1 to [`MAX_PERMUTATIONS`]). The smallest attainable p-value is `1 / (n_perm + 1)`.
    pub fn n_perm(mut self, n_perm: usize) -> Self {
        self.n_perm = n_perm;
        self
    }

    /// Seed of the permutations: the same seed gives the same p-value, whatever the number of threads.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether results carry the null samples.
    pub fn keep_null(mut self, keep_null: bool) -> Self {
        self.keep_null = keep_null;
        self
    }

    /// Permutations evaluated per matrix product (≥ 1). Memory per thread is about
    /// `chunk_size · (N + D) · 4` bytes; by default chunks hold at most 8 MiB and give every thread work.
    pub fn chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = Some(chunk_size);
        self
    }

    /// Checks every setting without consuming them (see [`ParamGuard`](cadet_core::params::ParamGuard)).
    pub fn validate(&self) -> Result<()> {
        if self.n_perm == 0 {
            return Err(Error::ZeroPermutations);
        }
        if self.n_perm > MAX_PERMUTATIONS {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "n_perm",
                reason: format!(
                    "at most {MAX_PERMUTATIONS} (the null samples alone take 8 bytes each), got {}",
                    self.n_perm
                ),
            }));
        }
        if self.chunk_size == Some(0) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "chunk_size",
                reason: "must be at least 1".into(),
            }));
        }
        Ok(())
    }

    /// Validates the settings and makes the test (the [`ParamGuard`](cadet_core::params::ParamGuard) way in, without importing the trait).
    pub fn check(self) -> Result<PermutationTest> {
        self.validate()?;
        Ok(PermutationTest { params: self })
    }
}

cadet_core::param_guard!(PermutationTestParams => PermutationTest, Error);
