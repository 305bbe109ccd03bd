//! The error type of `cadet-mmd`.

/// Errors of the MMD estimators, tests and experiments.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hyperparameter outside its valid range (`InvalidParameter`), empty input, NaN or infinity, a zero
    /// row under the cosine kernel, mismatched feature dimensions, or a failing kernel or embedder: the checks
    /// shared with `cadet-core`.
    #[error(transparent)]
    Core(#[from] cadet_core::Error),
    /// A set with fewer samples than the unbiased estimator needs (two: it averages over pairs `i ≠ j`).
    #[error("{set}: {got} sample(s), at least {min} needed")]
    TooFewSamples {
        /// Which set.
        set: &'static str,
        /// Its size.
        got: usize,
        /// The least size accepted.
        min: usize,
    },
    /// Two sets whose sizes must be equal are not (MMD-CC needs `|S_P⁽²⁾| = |S_Q|`).
    #[error("{what}: expected {expected} samples, got {got}")]
    SizeMismatch {
        /// Which sizes.
        what: &'static str,
        /// The size required.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// A permutation test asked with no permutation.
    #[error("n_perm must be at least 1 (with 0 permutations there is no null distribution)")]
    ZeroPermutations,
    /// An explicit permutation that is not a permutation of the pooled indices.
    #[error("not a permutation of 0..{expected_len}: {reason}")]
    InvalidPermutation {
        /// Size of the pooled sample.
        expected_len: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A pool with fewer samples than the samplings asked of it (drawn without replacement).
    #[error("pool `{pool}` has {has} samples, the samplings asked need {needs}")]
    PoolTooSmall {
        /// Which pool.
        pool: &'static str,
        /// Its size.
        has: usize,
        /// The size needed.
        needs: usize,
    },
    /// An intermediate result (a Gram matrix, the statistic, a null sample) that is NaN or infinite although the
    /// inputs are finite: the kernel's values overflow `f32`. No p-value is computed from it.
    #[error(
        "{what}: non-finite value {value} at index {index:?}: the kernel values overflow f32 \
         (inputs too large for this kernel; rescale or normalise them)"
    )]
    NonFiniteIntermediate {
        /// Which intermediate.
        what: &'static str,
        /// Index of the first offending element.
        index: Vec<usize>,
        /// The offending value.
        value: f64,
    },
}

/// `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
