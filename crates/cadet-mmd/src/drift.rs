//! Drift monitoring: one fixed reference set, many incoming batches, each tested against it by a permutation MMD
//! test, with the reference's share of the work done once.
//!
//! [`DriftMonitor::new`] maps the reference through the kernel's feature map once (cosine: unit rows; linear:
//! the rows) and keeps its feature sum and squared norms. For a batch of `n` rows,
//! `MMD²_u` of a split into sets `A` (size `m`) and `B` (size `n`) of the pooled rows is
//! `(‖S_A‖² − N_A)/(m(m−1)) + (‖S_B‖² − N_B)/(n(n−1)) − 2⟨S_A, S_B⟩/(mn)` with `S` the feature sums and `N` the
//! sums of squared norms; `S_A = S − S_B`, so each of the `n_perm` random splits costs `O(n · D)` (drawing the
//! `n` rows of `B`), not `O((m + n) · D)`, and nothing of the reference is recomputed per batch.
//!
//! The null is the permutation null of [`PermutationTest::two_sample`](crate::PermutationTest::two_sample)
//! (uniformly random splits of the pooled rows, `B` a uniformly random `n`-subset) and the p-value the same
//! `(1 + #{null ≥ statistic}) / (n_perm + 1)`, valid for each batch. Over a stream, each batch's p-value is
//! valid on its own; to bound false alarms over many batches, correct them (Bonferroni over a window, or
//! Benjamini–Hochberg with `cadet_detect::decision`), and to test a sliding window, pass the window's rows as
//! the batch. Kernels without a finite feature map (Gaussian) are refused: use
//! [`PermutationTest`](crate::PermutationTest) for them.
//!
//! ```
//! use cadet_mmd::{CosineKernel, DriftMonitor};
//! use ndarray::Array2;
//!
//! let reference = Array2::from_shape_fn((400, 8), |(i, j)| ((i * 7 + j * 3) % 11) as f32 + 1.0);
//! let monitor = DriftMonitor::new(reference.view(), CosineKernel, 500, 0)?;
//! let same = reference.slice(ndarray::s![..40, ..]).to_owned();
//! let mut shifted = same.clone();
//! shifted.column_mut(0).mapv_inplace(|v| v + 20.0); // another direction: cosine drift
//! assert!(!monitor.test(same.view(), 0.01)?.is_drift);
//! assert!(monitor.test(shifted.view(), 0.01)?.is_drift);
//! # Ok::<(), cadet_mmd::Error>(())
//! ```

use cadet_core::{Kernel, validate};
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::{Error, MAX_PERMUTATIONS, Result};

/// A batch's test against the monitor's reference.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftResult {
    /// `MMD²_u` of the reference and the batch.
    pub statistic: f64,
    /// `(1 + #{null ≥ statistic}) / (n_perm + 1)`.
    pub p_value: f64,
    /// The level the decision used.
    pub alpha: f64,
    /// `p_value ≤ alpha`.
    pub is_drift: bool,
}

/// A fixed reference set with its kernel features precomputed, testing batches against it (see the module
/// documentation).
#[derive(Debug, Clone)]
pub struct DriftMonitor<K> {
    kernel: K,
    /// The reference's features, centred on their mean (MMD is shift-invariant in feature space; centring
    /// keeps the sums small and the `f64` differences exact enough).
    reference: Array2<f64>,
    mean: Vec<f64>,
    /// Squared norms of the centred reference rows.
    norms: Vec<f64>,
    /// The centred reference's feature sum (zero up to rounding, kept exact) and the sum of `norms`.
    sum: Vec<f64>,
    norm_total: f64,
    n_perm: usize,
    seed: u64,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A set needs two rows for the unbiased MMD².
fn at_least_two(name: &'static str, rows: usize) -> Result<()> {
    if rows < 2 {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name,
            reason: format!("at least 2 rows, got {rows}"),
        }));
    }
    Ok(())
}

/// Subtracts `mean` from every row of `features`; returns the rows' squared norms.
fn centre(features: &mut Array2<f64>, mean: &[f64]) -> Vec<f64> {
    features
        .rows_mut()
        .into_iter()
        .map(|mut row| {
            row.iter_mut().zip(mean).for_each(|(v, m)| *v -= m);
            row.iter().map(|v| v * v).sum()
        })
        .collect()
}

impl<K: Kernel> DriftMonitor<K> {
    /// A monitor of `reference` (`(m, d)`, `m ≥ 2`) under `kernel` (which must have a feature map: cosine or
    /// linear), with `n_perm` permutations per test (1 to [`MAX_PERMUTATIONS`]) drawn from `seed`.
    pub fn new(
        reference: ArrayView2<'_, f32>,
        kernel: K,
        n_perm: usize,
        seed: u64,
    ) -> Result<Self> {
        if !(1..=MAX_PERMUTATIONS).contains(&n_perm) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "n_perm",
                reason: format!("1 to {MAX_PERMUTATIONS}, got {n_perm}"),
            }));
        }
        validate::samples("reference", reference, None)?;
        at_least_two("reference", reference.nrows())?;
        let mut reference = Self::features(&kernel, "reference", reference)?;
        let mean: Vec<f64> = reference
            .mean_axis(Axis(0))
            .map(|m| m.to_vec())
            .unwrap_or_default();
        let norms = centre(&mut reference, &mean);
        let sum = reference.sum_axis(Axis(0)).to_vec();
        let norm_total = norms.iter().sum();
        Ok(Self {
            kernel,
            reference,
            mean,
            norms,
            sum,
            norm_total,
            n_perm,
            seed,
        })
    }

    fn features(kernel: &K, what: &'static str, x: ArrayView2<'_, f32>) -> Result<Array2<f64>> {
        // The kernel's f32 features and their f64 copy (and a row-major copy of the input): bounded by what this
        // process can still have (3,000 rows of 12,000 aborted under a 450 MB ulimit, hostile pass 21).
        cadet_core::limits::check_memory(
            &format!("the {what}'s kernel features"),
            (x.nrows() as u128) * (x.ncols() as u128) * (4 + 4 + 8),
            cadet_core::limits::Limits::default().max_alloc_bytes,
            "test fewer rows or fewer features",
        )?;
        let phi = kernel
            .feature_map(x)
            .map_err(|e| match e {
                cadet_core::Error::ZeroNorm { row, .. } => {
                    cadet_core::Error::ZeroNorm { what, row }
                }
                other => other,
            })?
            .ok_or_else(|| {
                Error::Core(cadet_core::Error::InvalidParameter {
                    name: "kernel",
                    reason: format!(
                        "the {} kernel has no finite feature map: use PermutationTest::two_sample",
                        kernel.name()
                    ),
                })
            })?;
        // Row-major whatever the input's layout (a Fortran-order `.npy` is a valid input): the permutation
        // loop below reads rows as slices.
        Ok(Array2::from_shape_fn(phi.dim(), |ij| f64::from(phi[ij])))
    }

    /// Reference rows.
    pub fn reference_size(&self) -> usize {
        self.reference.nrows()
    }

    /// Tests `batch` (`(n, d)`, `n ≥ 2`, the reference's `d`) against the reference at level `alpha`.
    pub fn test(&self, batch: ArrayView2<'_, f32>, alpha: f64) -> Result<DriftResult> {
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "alpha",
                reason: format!("a level in (0, 1), got {alpha}"),
            }));
        }
        validate::samples("batch", batch, None)?;
        at_least_two("batch", batch.nrows())?;
        let mut y = Self::features(&self.kernel, "batch", batch)?;
        if y.ncols() != self.mean.len() {
            return Err(Error::Core(cadet_core::Error::DimensionMismatch {
                what: "batch: features per row, the reference's",
                expected: self.mean.len(),
                got: y.ncols(),
            }));
        }
        let y_norms = centre(&mut y, &self.mean);
        let (m, n) = (self.reference.nrows(), y.nrows());
        let d = self.mean.len();
        let y_sum: Vec<f64> = y.sum_axis(Axis(0)).to_vec();
        let total: Vec<f64> = self.sum.iter().zip(&y_sum).map(|(a, b)| a + b).collect();
        let total_sq = dot(&total, &total);
        let norm_total = self.norm_total + y_norms.iter().sum::<f64>();
        // With `S_A = S − S_B`: ‖S_A‖² = ‖S‖² − 2⟨S, S_B⟩ + ‖S_B‖² and ⟨S_A, S_B⟩ = ⟨S, S_B⟩ − ‖S_B‖², so a split
        // costs two dot products and no allocation.
        let statistic_of = |s_b: &[f64], n_b: f64| -> f64 {
            let (tb, bb) = (dot(&total, s_b), dot(s_b, s_b));
            let (aa, ab) = (total_sq - 2.0 * tb + bb, tb - bb);
            let n_a = norm_total - n_b;
            let (mf, nf) = (m as f64, n as f64);
            (aa - n_a) / (mf * (mf - 1.0)) + (bb - n_b) / (nf * (nf - 1.0)) - 2.0 * ab / (mf * nf)
        };
        let statistic = statistic_of(&y_sum, y_norms.iter().sum());
        // Rows as views, not slices: a view reads any layout (a slice of a non-contiguous row would be empty).
        let row = |i: usize| -> (ArrayView1<'_, f64>, f64) {
            if i < m {
                (self.reference.row(i), self.norms[i])
            } else {
                (y.row(i - m), y_norms[i - m])
            }
        };
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut s_b = vec![0.0; d];
        let scale = (norm_total / (m + n) as f64).max(f64::MIN_POSITIVE);
        let mut at_least = 0usize;
        for _ in 0..self.n_perm {
            s_b.iter_mut().for_each(|v| *v = 0.0);
            let mut n_b = 0.0;
            for i in sample(&mut rng, m + n, n) {
                let (r, norm) = row(i);
                s_b.iter_mut().zip(r).for_each(|(s, v)| *s += v);
                n_b += norm;
            }
            // Rounding can only count against the batch (a tie is `≥`), never for it.
            if statistic_of(&s_b, n_b) >= statistic - 1e-12 * scale {
                at_least += 1;
            }
        }
        let p_value = (1 + at_least) as f64 / (self.n_perm + 1) as f64;
        Ok(DriftResult {
            statistic,
            p_value,
            alpha,
            is_drift: p_value <= alpha,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CosineKernel, GaussianKernel, LinearKernel, mmd2_unbiased};
    use rand_distr::{Distribution, StandardNormal};

    fn normal(rng: &mut ChaCha8Rng, n: usize, d: usize, shift: f32) -> Array2<f32> {
        Array2::from_shape_fn((n, d), |(_, j)| {
            let v: f32 = StandardNormal.sample(rng);
            v + 1.0 + if j == 0 { shift } else { 0.0 }
        })
    }

    #[test]
    fn the_statistic_is_mmd2_unbiased() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (x, y) = (normal(&mut rng, 60, 5, 0.0), normal(&mut rng, 9, 5, 0.7));
        for (monitor_stat, reference) in [
            (
                DriftMonitor::new(x.view(), CosineKernel, 10, 0)
                    .unwrap()
                    .test(y.view(), 0.05)
                    .unwrap()
                    .statistic,
                mmd2_unbiased(x.view(), y.view(), &CosineKernel).unwrap(),
            ),
            (
                DriftMonitor::new(x.view(), LinearKernel, 10, 0)
                    .unwrap()
                    .test(y.view(), 0.05)
                    .unwrap()
                    .statistic,
                mmd2_unbiased(x.view(), y.view(), &LinearKernel).unwrap(),
            ),
        ] {
            assert!(
                (monitor_stat - reference).abs() < 1e-6 * reference.abs().max(1e-3),
                "{monitor_stat} vs {reference}"
            );
        }
    }

    /// Under the null (batches from the reference's law) the p-values are uniform: at α = 0.1 about 10% of 400
    /// batches are flagged; a shifted batch is flagged; the same seed gives the same p-value.
    #[test]
    fn valid_under_the_null_and_powerful_under_a_shift() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let reference = normal(&mut rng, 300, 6, 0.0);
        let monitor = DriftMonitor::new(reference.view(), CosineKernel, 199, 5).unwrap();
        let trials = 400;
        let flagged = (0..trials)
            .filter(|_| {
                let batch = normal(&mut rng, 20, 6, 0.0);
                monitor.test(batch.view(), 0.1).unwrap().is_drift
            })
            .count();
        let rate = flagged as f64 / trials as f64;
        assert!(
            (rate - 0.1).abs() < 3.5 * (0.1f64 * 0.9 / trials as f64).sqrt(),
            "{rate}"
        );
        let shifted = normal(&mut rng, 20, 6, 1.5);
        let r = monitor.test(shifted.view(), 0.05).unwrap();
        assert!(r.is_drift && r.p_value <= 0.02, "{r:?}");
        assert_eq!(r, monitor.test(shifted.view(), 0.05).unwrap());
    }

    #[test]
    fn typed_errors() {
        let x = Array2::from_elem((10, 3), 1.0f32);
        assert!(DriftMonitor::new(x.view(), GaussianKernel::median_heuristic(), 10, 0).is_err());
        assert!(DriftMonitor::new(x.view(), CosineKernel, 0, 0).is_err());
        assert!(DriftMonitor::new(x.slice(ndarray::s![..1, ..]), CosineKernel, 10, 0).is_err());
        let m = DriftMonitor::new(x.view(), CosineKernel, 10, 0).unwrap();
        assert!(
            m.test(Array2::from_elem((4, 2), 1.0f32).view(), 0.05)
                .is_err()
        );
        assert!(m.test(x.view(), 1.5).is_err());
        let mut zero = Array2::from_elem((4, 3), 1.0f32);
        zero.row_mut(2).fill(0.0);
        let e = m.test(zero.view(), 0.05).unwrap_err().to_string();
        assert!(e.contains("batch") && e.contains("row 2"), "{e}");
    }
}
