//! The pooled sample `Z = [X; Y]` and eq. 4 evaluated under any split of it.
//!
//! MMD² is unchanged when a kernel's features (or its Gram matrix) are centred on the pooled mean, since the
//! terms that centring adds cancel in eq. 4. We centre once, which keeps the large, mean-dominated terms out of
//! the `f32` products. Then, with `a` the indicator of the samples a split puts in X and `b = 1 − a`, the
//! statistic needs `aᵀKa`, `aᵀKb`, `bᵀKb`, the diagonal sums and (for equal sizes) the pairing sum: with
//! features `Φ` (`K = ΦΦᵀ`) these come from `u = Φᵀa` and `v = Φᵀ1 − u`, so a batch of splits is one product
//! `AᵀΦ` (`P × N` by `N × D`); with a Gram matrix from `AᵀK` (`P × N` by `N × N`).

use cadet_core::linalg::{Threads, dot, matmul};
use cadet_core::{Kernel, validate};
use ndarray::{Array2, ArrayView2, Axis, concatenate};

use crate::{Error, Result};

/// How a [`PooledSample`] holds the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// Whichever costs fewer multiply-adds for this many splits.
    Auto {
        /// Splits to be evaluated (the number of permutations; 0 for the statistic alone).
        planned_splits: usize,
    },
    /// Explicit features `Φ` (`N × D`), when the kernel has a feature map; otherwise the Gram matrix.
    Features,
    /// The `N × N` Gram matrix.
    Gram,
}

/// How the pooled kernel is held.
#[derive(Debug, Clone)]
enum Repr {
    /// Centred explicit features `Φ` (`N × D`), `K = ΦΦᵀ`.
    Features(Array2<f32>),
    /// Centred Gram matrix (`N × N`).
    Gram(Array2<f32>),
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

/// A pooled sample ready to evaluate MMD²_u under the split given by any permutation of its indices: the first
/// `m` indices of the permutation form X, the next `n` form Y, and for `m = n` the i-th of X is paired with the
/// i-th of Y, exactly as eq. 4 pairs `X_i` with `Y_i`.
///
/// **Estimator.** For `m = n` this is eq. 4 of the paper, `1/(n(n−1)) Σ_{i≠j} [k(X_i,X_j) + k(Y_i,Y_j) −
/// k(X_i,Y_j) − k(Y_i,X_j)]`. For `m ≠ n` eq. 4 is undefined; we use the unbiased two-sample U-statistic of
/// Gretton et al. (2012, eq. 3), `Σ_{i≠j} k(X_i,X_j)/(m(m−1)) + Σ_{i≠j} k(Y_i,Y_j)/(n(n−1)) − 2 Σ_{i,j}
/// k(X_i,Y_j)/(mn)`. Both are unbiased for MMD²; they differ only in the cross terms `i = j`, which eq. 4 leaves
/// out.
#[derive(Debug, Clone)]
pub struct PooledSample {
    repr: Repr,
    /// `k(z_i, z_i)` of the centred kernel.
    diag: Vec<f64>,
    /// Column sums of the centred features, or row sums of the centred Gram matrix (≈ 0, kept exact).
    sums: Vec<f64>,
    /// `1ᵀK1` of the centred kernel (Gram route; ≈ 0).
    total: f64,
    m: usize,
    n: usize,
}

impl PooledSample {
    /// Pools `x` (`m × d`) and `y` (`n × d`) under `kernel`, choosing features or a Gram matrix by the cost of
    /// evaluating `planned_splits` splits (0 when only the statistic is wanted).
    pub fn new<K: Kernel + ?Sized>(
        x: ArrayView2<'_, f32>,
        y: ArrayView2<'_, f32>,
        kernel: &K,
        planned_splits: usize,
    ) -> Result<Self> {
        Self::with_representation(x, y, kernel, Representation::Auto { planned_splits })
    }

    /// Pools `x` and `y` holding the kernel as asked (see [`Representation`]).
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
        let z = concatenate![Axis(0), x, y];
        let try_features = match representation {
            Representation::Features => true,
            Representation::Gram => false,
            Representation::Auto { planned_splits } => {
                // Multiply-adds of each route: features P·D·N; Gram N²·D to build (for a feature kernel) + P·N².
                let (big_n, d, p) = (
                    (m + n) as f64,
                    x.ncols() as f64,
                    planned_splits.max(1) as f64,
                );
                p * d <= big_n * d + p * big_n
            }
        };
        let features = if try_features {
            kernel.feature_map(z.view())?
        } else {
            None
        };
        let repr = match features {
            Some(phi) => Repr::Features(center_features(phi)),
            None => Repr::Gram(center_gram(kernel.pooled_gram(z.view())?)?),
        };
        Ok(Self::from_repr(repr, m, n))
    }

    fn from_repr(repr: Repr, m: usize, n: usize) -> Self {
        let (diag, sums, total) = match &repr {
            Repr::Features(phi) => {
                let diag = phi
                    .rows()
                    .into_iter()
                    .map(|r| dot(r.as_slice().unwrap(), r.as_slice().unwrap()))
                    .collect();
                let sums = phi
                    .axis_iter(Axis(1))
                    .map(|c| c.iter().map(|&v| f64::from(v)).sum())
                    .collect();
                (diag, sums, f64::NAN)
            }
            Repr::Gram(k) => {
                let diag = k.diag().iter().map(|&v| f64::from(v)).collect();
                let sums: Vec<f64> = k
                    .rows()
                    .into_iter()
                    .map(|r| r.iter().map(|&v| f64::from(v)).sum())
                    .collect();
                let total = sums.iter().sum();
                (diag, sums, total)
            }
        };
        Self {
            repr,
            diag,
            sums,
            total,
            m,
            n,
        }
    }

    /// Sizes `(m, n)` of the two sets.
    pub fn sizes(&self) -> (usize, usize) {
        (self.m, self.n)
    }

    /// Whether the pooled kernel is held as explicit features (`true`) or as a Gram matrix.
    pub fn uses_features(&self) -> bool {
        matches!(self.repr, Repr::Features(_))
    }

    /// Columns of the matrix the splits are multiplied with (`D` for features, `N` for a Gram matrix).
    pub(crate) fn operand_cols(&self) -> usize {
        match &self.repr {
            Repr::Features(phi) => phi.ncols(),
            Repr::Gram(k) => k.ncols(),
        }
    }

    /// MMD²_u of the sets as given (X = first `m` rows, Y = the rest), in `f64`.
    pub fn statistic(&self) -> f64 {
        let identity: Vec<u32> = (0..(self.m + self.n) as u32).collect();
        self.evaluate_f64(&identity)
    }

    /// MMD²_u after permuting the pooled indices (`perm[..m]` → X, `perm[m..]` → Y), in `f64`.
    pub fn permuted(&self, perm: &[usize]) -> Result<f64> {
        Ok(self.evaluate_f64(&self.checked(perm)?))
    }

    /// MMD²_u under each of many permutations, as one `f32` matrix product (the permutation test's path).
    pub fn permuted_batch(&self, perms: &[Vec<usize>]) -> Result<Vec<f64>> {
        let perms = perms
            .iter()
            .map(|p| self.checked(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.evaluate_batch(&perms))
    }

    fn checked(&self, perm: &[usize]) -> Result<Vec<u32>> {
        let total = self.m + self.n;
        if perm.len() != total {
            return Err(Error::InvalidPermutation {
                expected_len: total,
                reason: format!("length {}", perm.len()),
            });
        }
        let mut seen = vec![false; total];
        for &i in perm {
            if i >= total || std::mem::replace(&mut seen[i], true) {
                return Err(Error::InvalidPermutation {
                    expected_len: total,
                    reason: format!("index {i} out of range or repeated"),
                });
            }
        }
        Ok(perm.iter().map(|&i| i as u32).collect())
    }

    /// The scale of a statistic's rounding error: the trace of the centred kernel (the order of the block sums
    /// under the null) times the largest normalising coefficient.
    pub(crate) fn magnitude(&self) -> f64 {
        let (cx, cy, _) = self.coefficients();
        self.diag.iter().map(|v| v.abs()).sum::<f64>() * cx.max(cy)
    }

    /// `(1/(m(m−1)), 1/(n(n−1)), 1/(mn))`.
    fn coefficients(&self) -> (f64, f64, f64) {
        let (m, n) = (self.m as f64, self.n as f64);
        (1.0 / (m * (m - 1.0)), 1.0 / (n * (n - 1.0)), 1.0 / (m * n))
    }

    /// The statistic from its block sums, for the split in `perm`.
    fn combine(&self, perm: &[u32], b: Blocks) -> f64 {
        let (m, n) = (self.m, self.n);
        let d_x: f64 = perm[..m].iter().map(|&i| self.diag[i as usize]).sum();
        let d_y: f64 = perm[m..].iter().map(|&i| self.diag[i as usize]).sum();
        let (cx, cy, cxy) = self.coefficients();
        if m == n {
            // Eq. 4: the cross sum leaves out the pairs (X_i, Y_i).
            let pairs: f64 = (0..n).map(|i| self.kernel(perm[i], perm[m + i])).sum();
            (b.xx - d_x + b.yy - d_y - 2.0 * (b.xy - pairs)) * cx
        } else {
            (b.xx - d_x) * cx + (b.yy - d_y) * cy - 2.0 * b.xy * cxy
        }
    }

    fn kernel(&self, i: u32, j: u32) -> f64 {
        match &self.repr {
            Repr::Features(phi) => dot(row(phi, i), row(phi, j)),
            Repr::Gram(k) => f64::from(k[[i as usize, j as usize]]),
        }
    }

    /// One split, every sum in `f64`.
    fn evaluate_f64(&self, perm: &[u32]) -> f64 {
        let x = &perm[..self.m];
        let blocks = match &self.repr {
            Repr::Features(phi) => {
                let mut u = vec![0.0f64; phi.ncols()];
                for &i in x {
                    for (acc, &v) in u.iter_mut().zip(row(phi, i)) {
                        *acc += f64::from(v);
                    }
                }
                self.blocks_from_u(&u)
            }
            Repr::Gram(k) => {
                let aa: f64 = x
                    .iter()
                    .map(|&i| {
                        x.iter()
                            .map(|&j| f64::from(k[[i as usize, j as usize]]))
                            .sum::<f64>()
                    })
                    .sum();
                self.blocks_from_gram(aa, x)
            }
        };
        self.combine(perm, blocks)
    }

    fn blocks_from_u(&self, u: &[f64]) -> Blocks {
        let (mut xx, mut xy, mut yy) = (0.0, 0.0, 0.0);
        for (&ui, &si) in u.iter().zip(&self.sums) {
            let vi = si - ui;
            xx += ui * ui;
            xy += ui * vi;
            yy += vi * vi;
        }
        Blocks { xx, xy, yy }
    }

    fn blocks_from_gram(&self, aa: f64, x: &[u32]) -> Blocks {
        let a1: f64 = x.iter().map(|&i| self.sums[i as usize]).sum();
        Blocks {
            xx: aa,
            xy: a1 - aa,
            yy: self.total - 2.0 * a1 + aa,
        }
    }

    /// Statistics of a batch of splits, the block sums as one `f32` matrix product on this thread.
    pub(crate) fn evaluate_batch(&self, perms: &[Vec<u32>]) -> Vec<f64> {
        let big_n = self.m + self.n;
        let mut a_t = Array2::<f32>::zeros((perms.len(), big_n));
        for (mut r, p) in a_t.rows_mut().into_iter().zip(perms) {
            for &i in &p[..self.m] {
                r[i as usize] = 1.0;
            }
        }
        let operand = match &self.repr {
            Repr::Features(phi) => phi.view(),
            Repr::Gram(k) => k.view(),
        };
        let product =
            matmul(a_t.view(), operand, Threads::Single).expect("shapes agree by construction");
        perms
            .iter()
            .zip(product.rows())
            .map(|(p, r)| {
                let r = r.as_slice().expect("fresh matrix is contiguous");
                let blocks = match &self.repr {
                    Repr::Features(_) => {
                        let u: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
                        self.blocks_from_u(&u)
                    }
                    Repr::Gram(_) => {
                        let aa = p[..self.m].iter().map(|&i| f64::from(r[i as usize])).sum();
                        self.blocks_from_gram(aa, &p[..self.m])
                    }
                };
                self.combine(p, blocks)
            })
            .collect()
    }
}

fn row(phi: &Array2<f32>, i: u32) -> &[f32] {
    let d = phi.ncols();
    &phi.as_slice().expect("features are standard layout")[i as usize * d..(i as usize + 1) * d]
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

/// Subtracts the column means (computed in `f64`); returns a standard-layout matrix.
fn center_features(mut phi: Array2<f32>) -> Array2<f32> {
    let n = phi.nrows() as f64;
    let means: Vec<f64> = phi
        .axis_iter(Axis(1))
        .map(|c| c.iter().map(|&v| f64::from(v)).sum::<f64>() / n)
        .collect();
    for mut r in phi.rows_mut() {
        for (v, &mu) in r.iter_mut().zip(&means) {
            *v = (f64::from(*v) - mu) as f32;
        }
    }
    phi.as_standard_layout().into_owned()
}

/// `HKH` with `H = I − 11ᵀ/N`: `K_ij − r_i − r_j + μ` with row means `r` and grand mean `μ`.
fn center_gram(mut k: Array2<f32>) -> cadet_core::Result<Array2<f32>> {
    let n = k.nrows();
    if k.ncols() != n {
        return Err(cadet_core::Error::ShapeMismatch {
            what: "pooled Gram matrix",
            expected: vec![n, n],
            got: k.shape().to_vec(),
        });
    }
    validate::finite_array("pooled Gram matrix", k.view().into_dyn())?;
    let r: Vec<f64> = k
        .rows()
        .into_iter()
        .map(|row| row.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64)
        .collect();
    let mu = r.iter().sum::<f64>() / n as f64;
    for ((i, j), v) in k.indexed_iter_mut() {
        *v = (f64::from(*v) - r[i] - r[j] + mu) as f32;
    }
    Ok(k.as_standard_layout().into_owned())
}
