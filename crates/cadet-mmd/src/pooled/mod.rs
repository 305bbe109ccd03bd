//! The pooled sample `Z = [X; Y]` and eq. 4 evaluated under any split of it.
//!
//! MMD² is unchanged when a kernel's features (or its Gram matrix) are centred on the pooled mean, since the
//! terms that centring adds cancel in eq. 4. We centre once, which keeps the large, mean-dominated terms out of
//! the `f32` products. Then, with `a` the indicator of the samples a split puts in X and `b = 1 − a`, the
//! statistic needs `aᵀKa`, `aᵀKb`, `bᵀKb`, the diagonal sums and (for equal sizes) the pairing sum: with
//! features `Φ` (`K = ΦΦᵀ`) these come from `u = Φᵀa` and `v = Φᵀ1 − u`, so a batch of splits is one product
//! `AᵀΦ` (`P × N` by `N × D`); with a Gram matrix from `AᵀK` (`P × N` by `N × N`).

mod center;
mod pairing;

use cadet_core::linalg::{Threads, dot, matmul};
use cadet_core::{Kernel, validate};
use ndarray::{Array2, ArrayView2, Axis, concatenate};
use rayon::prelude::*;

use crate::{Error, Result};
use center::{center_features, center_gram, column_sums, row_sums};

/// How a [`PooledSample`] evaluates batches of splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// Whichever is estimated cheaper for this many splits.
    Auto {
        /// Splits to be evaluated (the number of permutations; 0 for the statistic alone).
        planned_splits: usize,
    },
    /// Products with the explicit features `Φ` (`N × D`), when the kernel has a feature map; otherwise with
    /// the Gram matrix.
    Features,
    /// Products with the `N × N` Gram matrix.
    Gram,
}

/// Sums of the kernel over the blocks of one split.
#[derive(Debug, Clone, Copy)]
struct Blocks {
    /// `Σ_{i,j∈X} k(z_i, z_j)`.
    xx: f64,
    /// `Σ_{i∈X, j∈Y} k(z_i, z_j)`.
    xy: f64,
    /// `Σ_{i,j∈Y} k(z_i, z_j)`.
    yy: f64,
}

/// Work of one pairing dot product relative to one multiply-add inside a matrix product: the dots gather
/// random rows and run at memory speed (measured on the development machine; see docs/performance.md).
const PAIRING_COST: f64 = 4.0;

/// A pooled sample ready to evaluate MMD²_u under the split given by any permutation of its indices: the first
/// `m` indices of the permutation form X, the next `n` form Y, and for `m = n` the i-th of X is paired with the
/// i-th of Y, exactly as eq. 4 pairs `X_i` with `Y_i`.
///
/// **Estimator.** For `m = n` this is eq. 4 of the paper, `1/(n(n−1)) Σ_{i≠j} [k(X_i,X_j) + k(Y_i,Y_j) −
/// k(X_i,Y_j) − k(Y_i,X_j)]`. For `m ≠ n` eq. 4 is undefined; we use the unbiased two-sample U-statistic of
/// Gretton et al. (2012, eq. 3), `Σ_{i≠j} k(X_i,X_j)/(m(m−1)) + Σ_{i≠j} k(Y_i,Y_j)/(n(n−1)) − 2 Σ_{i,j}
/// k(X_i,Y_j)/(mn)`. Both are unbiased for MMD²; they differ only in the cross terms `i = j`, which eq. 4 leaves
/// out.
///
/// **Precision.** Single splits ([`statistic`](Self::statistic), [`permuted`](Self::permuted)) are summed in
/// `f64` from the centred features (or Gram matrix) stored in `f32`; batches
/// ([`permuted_batch`](Self::permuted_batch), the permutation test's null) use `f32` matrix products.
#[derive(Debug, Clone)]
pub struct PooledSample {
    /// Centred features `Φ` (`N × D`), when the kernel has a feature map.
    features: Option<Array2<f32>>,
    /// Centred Gram matrix (`N × N`), when batches use it.
    gram: Option<Array2<f32>>,
    /// `k(z_i, z_i)` of the centred kernel.
    diag: Vec<f64>,
    /// Column sums of the centred features (≈ 0; kept so that the sums are exact for the stored matrix).
    feature_sums: Vec<f64>,
    /// Row sums and total of the centred Gram matrix (≈ 0; idem).
    gram_sums: Vec<f64>,
    gram_total: f64,
    m: usize,
    n: usize,
}

impl PooledSample {
    /// Pools `x` (`m × d`) and `y` (`n × d`) under `kernel`, choosing how batches are evaluated by the cost of
    /// `planned_splits` splits (0 when only the statistic is wanted).
    pub fn new<K: Kernel + ?Sized>(
        x: ArrayView2<'_, f32>,
        y: ArrayView2<'_, f32>,
        kernel: &K,
        planned_splits: usize,
    ) -> Result<Self> {
        Self::with_representation(x, y, kernel, Representation::Auto { planned_splits })
    }

    /// Pools `x` and `y`, evaluating batches as asked (see [`Representation`]).
    pub fn with_representation<K: Kernel + ?Sized>(
        x: ArrayView2<'_, f32>,
        y: ArrayView2<'_, f32>,
        kernel: &K,
        representation: Representation,
    ) -> Result<Self> {
        check_set("X", x)?;
        check_set("Y", y)?;
        validate::samples("Y", y, Some(x.ncols()))?;
        let (m, n) = (x.nrows(), y.nrows());
        // The pooled copy, the kernel's features and their centred copy, and a batch's products: bounded by
        // what this process can still have (10,000 rows of 3,500 aborted under a 450 MB ulimit, hostile pass 16).
        cadet_core::limits::check_memory(
            "the pooled sample and its kernel features",
            ((m + n) as u128) * (x.ncols() as u128) * 4 * 4,
            cadet_core::limits::Limits::default().max_alloc_bytes,
            "test fewer rows or fewer features",
        )?;
        let z = concatenate![Axis(0), x, y];
        let features = kernel
            .feature_map(z.view())
            .map_err(|e| name_pooled_row(e, m))?
            .map(center_features);
        if let Some(phi) = &features {
            finite_intermediate("centred kernel features", phi)?;
        }
        let use_gram = match (&features, representation) {
            (None, _) | (Some(_), Representation::Gram) => true,
            (Some(_), Representation::Features) => false,
            (Some(phi), Representation::Auto { planned_splits }) => {
                let (big_n, d, p) = ((m + n) as f64, phi.ncols() as f64, planned_splits as f64);
                let pairing = if m == n {
                    PAIRING_COST * n as f64 * d
                } else {
                    0.0
                };
                p > 0.0 && big_n * big_n * (d + p) < p * (big_n * d + pairing)
            }
        };
        let gram = match (&features, use_gram) {
            (_, false) => None,
            (Some(phi), true) => {
                // Chosen for many permutations of wide features: the same bound as a kernel's Gram matrix
                // (5,000 + 5,000 rows aborted under a 600 MB ulimit, hostile pass 15).
                let pooled = (m + n) as u128;
                cadet_core::limits::check_memory(
                    "the pooled Gram matrix of the kernel's features, and its products",
                    pooled * pooled * 4 * 3,
                    cadet_core::limits::Limits::default().max_alloc_bytes,
                    "test fewer rows or use fewer permutations",
                )?;
                Some(matmul(phi.view(), phi.t(), Threads::Rayon)?)
            }
            (None, true) => {
                // The Gram matrix, its centred copy and the permutation products' share: bounded before any
                // of them is allocated (60,000 pooled samples would ask for 14.4 GB each).
                let limits = cadet_core::limits::Limits::default();
                limits.check_alloc(
                    "the pooled Gram matrix (and its centred copy and products)",
                    &[3, m + n, m + n],
                    4,
                )?;
                // And against the memory this process can still have (`ulimit -v`, what the machine has
                // free), with a kernel's own pairwise work (the median heuristic's distances, 1.5 more): 28,000
                // pooled rows passed the fixed bound and aborted under a 6 GB ulimit (hostile pass 14).
                let pooled = (m + n) as u128;
                cadet_core::limits::check_memory(
                    "the pooled Gram matrix, its centred copy, products and the kernel's pairwise work",
                    pooled * pooled * 4 * 9 / 2,
                    limits.max_alloc_bytes,
                    "test fewer rows, or use a kernel with features (cosine, linear)",
                )?;
                let k = kernel
                    .pooled_gram(z.view())
                    .map_err(|e| name_pooled_row(e, m))?;
                finite_intermediate("Gram matrix", &k)?;
                Some(center_gram(k)?)
            }
        };
        if let Some(k) = &gram {
            finite_intermediate("centred Gram matrix", k)?;
        }
        let diag = match (&features, &gram) {
            (Some(phi), _) => phi
                .rows()
                .into_iter()
                .map(|r| dot(slice(&r), slice(&r)))
                .collect(),
            (None, Some(k)) => k.diag().iter().map(|&v| f64::from(v)).collect(),
            (None, None) => unreachable!("a kernel without features gets a Gram matrix"),
        };
        let feature_sums = features.as_ref().map(column_sums).unwrap_or_default();
        let gram_sums = gram.as_ref().map(row_sums).unwrap_or_default();
        let gram_total = gram_sums.iter().sum();
        Ok(Self {
            features,
            gram,
            diag,
            feature_sums,
            gram_sums,
            gram_total,
            m,
            n,
        })
    }

    /// Sizes `(m, n)` of the two sets.
    pub fn sizes(&self) -> (usize, usize) {
        (self.m, self.n)
    }

    /// Whether batches are products with the features (`true`) or with the Gram matrix.
    pub fn uses_features(&self) -> bool {
        self.gram.is_none()
    }

    /// Columns of the matrix the splits are multiplied with (`D` for features, `N` for a Gram matrix).
    pub(crate) fn operand_cols(&self) -> usize {
        self.batch_operand().ncols()
    }

    /// MMD²_u of the sets as given (X = first `m` rows, Y = the rest), summed in `f64`.
    pub fn statistic(&self) -> f64 {
        let identity: Vec<u32> = (0..(self.m + self.n) as u32).collect();
        self.evaluate_f64(&identity)
    }

    /// MMD²_u after permuting the pooled indices (`perm[..m]` → X, `perm[m..]` → Y), summed in `f64`.
    pub fn permuted(&self, perm: &[usize]) -> Result<f64> {
        Ok(self.evaluate_f64(&self.checked(perm)?))
    }

    /// MMD²_u under each of many permutations, as one `f32` matrix product (the permutation test's path).
    /// A non-finite result (an `f32` overflow) is an [`Error::NonFiniteIntermediate`].
    pub fn permuted_batch(&self, perms: &[Vec<usize>]) -> Result<Vec<f64>> {
        let perms = perms
            .iter()
            .map(|p| self.checked(p))
            .collect::<Result<Vec<_>>>()?;
        let null = self.evaluate_many(&perms, 64);
        finite_values("MMD statistic of a permutation", &null)?;
        Ok(null)
    }

    /// The scale of a statistic's rounding error: the trace of the centred kernel (the order of the block sums
    /// under the null) times the largest normalising coefficient.
    pub(crate) fn magnitude(&self) -> f64 {
        let (cx, cy, _) = self.coefficients();
        self.diag.iter().map(|v| v.abs()).sum::<f64>() * cx.max(cy)
    }

    fn checked(&self, perm: &[usize]) -> Result<Vec<u32>> {
        let total = self.m + self.n;
        let invalid = |reason: String| Error::InvalidPermutation {
            expected_len: total,
            reason,
        };
        if perm.len() != total {
            return Err(invalid(format!("length {}", perm.len())));
        }
        let mut seen = vec![false; total];
        for &i in perm {
            if i >= total || std::mem::replace(&mut seen[i], true) {
                return Err(invalid(format!("index {i} out of range or repeated")));
            }
        }
        Ok(perm.iter().map(|&i| i as u32).collect())
    }

    /// `(1/(m(m−1)), 1/(n(n−1)), 1/(mn))`.
    fn coefficients(&self) -> (f64, f64, f64) {
        let (m, n) = (self.m as f64, self.n as f64);
        (1.0 / (m * (m - 1.0)), 1.0 / (n * (n - 1.0)), 1.0 / (m * n))
    }

    /// The statistic of the split in `perm` from its block sums and (for `m = n`) its pairing sum.
    fn combine(&self, perm: &[u32], b: Blocks, pairs: f64) -> f64 {
        let (m, n) = (self.m, self.n);
        let d_x: f64 = perm[..m].iter().map(|&i| self.diag[i as usize]).sum();
        let d_y: f64 = perm[m..].iter().map(|&i| self.diag[i as usize]).sum();
        let (cx, cy, cxy) = self.coefficients();
        if m == n {
            // Eq. 4: the cross sum leaves out the pairs (X_i, Y_i).
            (b.xx - d_x + b.yy - d_y - 2.0 * (b.xy - pairs)) * cx
        } else {
            (b.xx - d_x) * cx + (b.yy - d_y) * cy - 2.0 * b.xy * cxy
        }
    }

    /// `Σ_i k(X_i, Y_i)` of one split (0 when `m ≠ n`: only eq. 4 uses it).
    fn pairs_f64(&self, perm: &[u32]) -> f64 {
        if self.m != self.n {
            return 0.0;
        }
        let n = self.n;
        match (&self.features, &self.gram) {
            (Some(phi), _) => (0..n)
                .map(|i| dot(row(phi, perm[i]), row(phi, perm[n + i])))
                .sum(),
            (None, Some(k)) => (0..n)
                .map(|i| f64::from(k[[perm[i] as usize, perm[n + i] as usize]]))
                .sum(),
            (None, None) => unreachable!("a kernel without features gets a Gram matrix"),
        }
    }

    /// One split, every sum in `f64`, from the features when there are any.
    fn evaluate_f64(&self, perm: &[u32]) -> f64 {
        let x = &perm[..self.m];
        if let Some(phi) = &self.features {
            let mut u = vec![0.0f64; phi.ncols()];
            for &i in x {
                for (acc, &v) in u.iter_mut().zip(row(phi, i)) {
                    *acc += f64::from(v);
                }
            }
            self.combine(perm, self.blocks_from_u(&u), self.pairs_f64(perm))
        } else {
            let k = self
                .gram
                .as_ref()
                .expect("a Gram matrix when there are no features");
            let aa = x
                .iter()
                .map(|&i| {
                    x.iter()
                        .map(|&j| f64::from(k[[i as usize, j as usize]]))
                        .sum::<f64>()
                })
                .sum();
            self.combine(perm, self.blocks_from_gram(aa, x), self.pairs_f64(perm))
        }
    }

    fn blocks_from_u(&self, u: &[f64]) -> Blocks {
        let (mut xx, mut xy, mut yy) = (0.0, 0.0, 0.0);
        for (&ui, &si) in u.iter().zip(&self.feature_sums) {
            let vi = si - ui;
            xx += ui * ui;
            xy += ui * vi;
            yy += vi * vi;
        }
        Blocks { xx, xy, yy }
    }

    fn blocks_from_gram(&self, aa: f64, x: &[u32]) -> Blocks {
        let a1: f64 = x.iter().map(|&i| self.gram_sums[i as usize]).sum();
        Blocks {
            xx: aa,
            xy: a1 - aa,
            yy: self.gram_total - 2.0 * a1 + aa,
        }
    }

    fn batch_operand(&self) -> ArrayView2<'_, f32> {
        match (&self.gram, &self.features) {
            (Some(k), _) => k.view(),
            (None, Some(phi)) => phi.view(),
            (None, None) => unreachable!("a kernel without features gets a Gram matrix"),
        }
    }

    /// Statistics of many splits: block sums as `f32` products of `chunk` splits each, chunks in parallel;
    /// pairing sums from the Gram matrix or, with features, bucketed by row blocks (see `pairing`).
    pub(crate) fn evaluate_many(&self, perms: &[Vec<u32>], chunk: usize) -> Vec<f64> {
        let blocks: Vec<Blocks> = perms
            .par_chunks(chunk.max(1))
            .flat_map_iter(|c| self.block_sums(c))
            .collect();
        let pairs = match (&self.gram, &self.features) {
            _ if self.m != self.n => vec![0.0; perms.len()],
            (Some(k), _) => perms.iter().map(|p| gram_pairs(k, p, self.n)).collect(),
            (None, Some(phi)) => pairing::pairing_sums(phi, perms, self.n),
            (None, None) => unreachable!("a kernel without features gets a Gram matrix"),
        };
        perms
            .iter()
            .zip(blocks)
            .zip(pairs)
            .map(|((p, b), pair)| self.combine(p, b, pair))
            .collect()
    }

    /// Block sums of a chunk of splits from one `f32` matrix product on this thread.
    fn block_sums(&self, perms: &[Vec<u32>]) -> Vec<Blocks> {
        let mut a_t = Array2::<f32>::zeros((perms.len(), self.m + self.n));
        for (mut r, p) in a_t.rows_mut().into_iter().zip(perms) {
            for &i in &p[..self.m] {
                r[i as usize] = 1.0;
            }
        }
        let product = matmul(a_t.view(), self.batch_operand(), Threads::Single)
            .expect("shapes agree by construction");
        let mut u = vec![0.0f64; product.ncols()];
        perms
            .iter()
            .zip(product.rows())
            .map(|(p, r)| {
                let r = slice(&r);
                if self.gram.is_some() {
                    let aa = p[..self.m].iter().map(|&i| f64::from(r[i as usize])).sum();
                    self.blocks_from_gram(aa, &p[..self.m])
                } else {
                    u.iter_mut().zip(r).for_each(|(a, &v)| *a = f64::from(v));
                    self.blocks_from_u(&u)
                }
            })
            .collect()
    }
}

/// `Σ_i K[p_i, p_{n+i}]`.
fn gram_pairs(k: &Array2<f32>, perm: &[u32], n: usize) -> f64 {
    (0..n)
        .map(|i| f64::from(k[[perm[i] as usize, perm[n + i] as usize]]))
        .sum()
}

fn slice<'a>(r: &'a ndarray::ArrayView1<'_, f32>) -> &'a [f32] {
    r.as_slice()
        .expect("rows of standard-layout matrices are contiguous")
}

fn row(phi: &Array2<f32>, i: u32) -> &[f32] {
    let d = phi.ncols();
    &phi.as_slice().expect("features are standard layout")[i as usize * d..(i as usize + 1) * d]
}

/// A kernel's error about a row of the pooled `X ∪ Y` (its first `m` rows are X's), told about the set and the
/// row the caller passed: "Y: row 0" rather than "row 10".
fn name_pooled_row(e: cadet_core::Error, m: usize) -> cadet_core::Error {
    match e {
        cadet_core::Error::ZeroNorm { row, .. } if row < m => {
            cadet_core::Error::ZeroNorm { what: "X", row }
        }
        cadet_core::Error::ZeroNorm { row, .. } => cadet_core::Error::ZeroNorm {
            what: "Y",
            row: row - m,
        },
        cadet_core::Error::NonFinite { index, value, .. }
            if index.first().is_some_and(|&r| r >= m) =>
        {
            let mut index = index;
            index[0] -= m;
            cadet_core::Error::NonFinite {
                what: "Y",
                index,
                value,
            }
        }
        cadet_core::Error::NonFinite { index, value, .. } => cadet_core::Error::NonFinite {
            what: "X",
            index,
            value,
        },
        other => other,
    }
}

/// An intermediate matrix must be finite: a non-finite entry from finite inputs is an `f32` overflow.
pub(crate) fn finite_intermediate(what: &'static str, a: &Array2<f32>) -> Result<()> {
    match validate::finite_array(what, a.view().into_dyn()) {
        Err(cadet_core::Error::NonFinite { what, index, value }) => {
            Err(Error::NonFiniteIntermediate { what, index, value })
        }
        other => other.map_err(Into::into),
    }
}

/// A computed value must be finite (see [`finite_intermediate`]).
pub(crate) fn finite_values(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::NonFiniteIntermediate {
            what,
            index: vec![i],
            value: values[i],
        }),
        None => Ok(()),
    }
}

fn check_set(set: &'static str, s: ArrayView2<'_, f32>) -> Result<()> {
    if s.nrows() == 0 || s.ncols() == 0 {
        return Err(cadet_core::Error::EmptyInput { what: set }.into());
    }
    if s.nrows() < 2 {
        return Err(Error::TooFewSamples {
            set,
            got: s.nrows(),
            min: 2,
        });
    }
    validate::samples(set, s, None)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CosineKernel;

    #[test]
    fn auto_picks_the_cheaper_route() {
        let pooled = |n: usize, d: usize, p: usize| {
            let x = Array2::from_shape_fn((n, d), |(i, j)| ((i * 7 + j * 3) % 11) as f32 + 1.0);
            PooledSample::new(x.view(), x.view(), &CosineKernel, p).unwrap()
        };
        // Few samples in high dimension: the N × N Gram matrix is small and cheap to build.
        assert!(!pooled(20, 2048, 500).uses_features());
        // Many samples in low dimension: products with N × D features.
        assert!(pooled(500, 16, 500).uses_features());
        // The statistic alone never builds a Gram matrix for a kernel with features.
        assert!(pooled(20, 2048, 0).uses_features());
    }
}
