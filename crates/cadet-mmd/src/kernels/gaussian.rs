//! Gaussian (RBF) kernel with a fixed or median-heuristic bandwidth.

use cadet_core::{Error, Kernel, Result, validate};
use ndarray::{Array2, ArrayView2, concatenate, s};

use super::{check_pair, squared_distances};

/// How the Gaussian kernel's bandwidth `σ` is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bandwidth {
    /// A fixed `σ > 0`.
    Fixed(f64),
    /// The median heuristic: `σ` = median Euclidean distance over all pairs `i < j` of the pooled rows (for
    /// [`Kernel::pooled_gram`], the rows of `z`; for [`Kernel::gram`], the rows of `x` and `y` together). It
    /// depends on the pooled set only, never on how it is split, so permutation tests stay valid.
    MedianHeuristic,
}

/// Gaussian kernel `exp(−‖x − y‖² / (2σ²))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianKernel {
    /// Bandwidth rule.
    pub bandwidth: Bandwidth,
}

impl GaussianKernel {
    /// With a fixed bandwidth `σ` (checked when the kernel is used).
    pub fn fixed(sigma: f64) -> Self {
        Self {
            bandwidth: Bandwidth::Fixed(sigma),
        }
    }

    /// With the median heuristic.
    pub fn median_heuristic() -> Self {
        Self {
            bandwidth: Bandwidth::MedianHeuristic,
        }
    }

    /// The median pairwise Euclidean distance among the rows of `z` (mean of the two middle values when the
    /// number of pairs is even). Errors when `z` has fewer than two rows or all its rows coincide.
    pub fn median_distance(z: ArrayView2<'_, f32>) -> Result<f64> {
        validate::samples("median heuristic input", z, None)?;
        if z.nrows() < 2 {
            return Err(Error::InvalidParameter {
                name: "bandwidth",
                reason: "the median heuristic needs at least two samples".into(),
            });
        }
        // The n × n distances and the n(n − 1)/2 kept: bounded by what this process can still have.
        let n = z.nrows() as u128;
        cadet_core::limits::check_memory(
            "the median heuristic's pairwise distances",
            n * n * 4 * 3 / 2,
            cadet_core::limits::Limits::default().max_alloc_bytes,
            "use fewer rows or a fixed bandwidth",
        )?;
        let d2 = squared_distances(z, z)?;
        let mut dist: Vec<f32> = (0..z.nrows())
            .flat_map(|i| d2.slice(s![i, i + 1..]).to_vec())
            .collect();
        let mid = dist.len() / 2;
        let (_, upper, _) = dist.select_nth_unstable_by(mid, f32::total_cmp);
        let upper = f64::from(*upper).sqrt();
        let median = if dist.len() % 2 == 1 {
            upper
        } else {
            let lower = dist[..mid].iter().copied().fold(f32::MIN, f32::max);
            (f64::from(lower).sqrt() + upper) / 2.0
        };
        if median <= 0.0 {
            return Err(Error::InvalidParameter {
                name: "bandwidth",
                reason: "median pairwise distance is 0 (the samples coincide)".into(),
            });
        }
        Ok(median)
    }

    fn sigma(&self, pooled: ArrayView2<'_, f32>) -> Result<f64> {
        match self.bandwidth {
            Bandwidth::Fixed(s) if s > 0.0 && s.is_finite() => Ok(s),
            Bandwidth::Fixed(s) => Err(Error::InvalidParameter {
                name: "bandwidth",
                reason: format!("σ must be finite and > 0, got {s}"),
            }),
            Bandwidth::MedianHeuristic => Self::median_distance(pooled),
        }
    }

    fn gram_with(
        &self,
        x: ArrayView2<'_, f32>,
        y: ArrayView2<'_, f32>,
        sigma: f64,
    ) -> Result<Array2<f32>> {
        let scale = -1.0 / (2.0 * sigma * sigma);
        Ok(squared_distances(x, y)?.mapv(|d| (f64::from(d) * scale).exp() as f32))
    }
}

impl Kernel for GaussianKernel {
    fn name(&self) -> &str {
        "gaussian"
    }
    fn gram(&self, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        check_pair(x, y)?;
        let sigma = match self.bandwidth {
            Bandwidth::MedianHeuristic => {
                self.sigma(concatenate![ndarray::Axis(0), x, y].view())?
            }
            Bandwidth::Fixed(_) => self.sigma(x)?,
        };
        self.gram_with(x, y, sigma)
    }
    fn pooled_gram(&self, z: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        validate::samples("kernel input", z, None)?;
        let sigma = self.sigma(z)?;
        self.gram_with(z, z, sigma)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::array;

    #[test]
    fn median_distance_by_hand() {
        // Points 0, 1, 3 on a line: distances 1, 3, 2 → median 2.
        let z = array![[0.0f32], [1.0], [3.0]];
        assert_relative_eq!(
            GaussianKernel::median_distance(z.view()).unwrap(),
            2.0,
            epsilon = 1e-6
        );
        // Four points 0, 1, 2, 4: distances 1, 2, 4, 1, 3, 2 → sorted 1 1 2 2 3 4 → median 2.
        let z = array![[0.0f32], [1.0], [2.0], [4.0]];
        assert_relative_eq!(
            GaussianKernel::median_distance(z.view()).unwrap(),
            2.0,
            epsilon = 1e-6
        );
        let same = array![[1.0f32, 1.0], [1.0, 1.0]];
        assert!(GaussianKernel::median_distance(same.view()).is_err());
    }

    #[test]
    fn values_match_definition() {
        let x = array![[0.0f32, 0.0], [1.0, 2.0]];
        let y = array![[1.0f32, 0.0]];
        let k = GaussianKernel::fixed(0.5).gram(x.view(), y.view()).unwrap();
        assert_relative_eq!(k[[0, 0]], (-1.0f32 / 0.5).exp(), epsilon = 1e-6);
        assert_relative_eq!(k[[1, 0]], (-4.0f32 / 0.5).exp(), epsilon = 1e-6);
        let pooled = GaussianKernel::median_heuristic()
            .pooled_gram(x.view())
            .unwrap();
        // One pair, distance √5 → σ = √5, k = exp(−5 / 10).
        assert_relative_eq!(pooled[[0, 1]], (-0.5f32).exp(), epsilon = 1e-6);
        assert_relative_eq!(pooled[[1, 1]], 1.0, epsilon = 1e-6);
        assert!(
            GaussianKernel::fixed(-1.0)
                .gram(x.view(), y.view())
                .is_err()
        );
    }
}
