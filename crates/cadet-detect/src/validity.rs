//! Is the false-positive rate what the p-value promises? Resampling studies of a detector on in-distribution
//! data, and the exact law they are judged against.
//!
//! **The law.** A conformal p-value ranks a test image among `n` calibration images (X⁽²⁾). Given X⁽²⁾, an
//! image is rejected at level `α` with probability `F(s₍ₖ₎)`, `k = ⌊α(n + 1)⌋`, the probability mass below X⁽²⁾'s
//! `k`-th smallest score: a `Beta(k, n + 1 − k)` variable, whatever the data (Vovk 2012; the
//! *training-conditional* view). Its mean `k/(n + 1) ≤ α` is the *marginal* guarantee, averaged over X⁽²⁾
//! draws. Among `m` test images the number rejected is then `BetaBinomial(m, k, n + 1 − k)`
//! ([`RejectionLaw`]), and this holds exactly, not only in the limit, when X⁽²⁾ and the test images are a
//! uniformly random split of any fixed pool of distinct scores (the count is negative-hypergeometric, which is
//! that Beta-binomial). So re-splitting one pool of in-distribution features many times tests the
//! *implementation*, with no sampling assumption: any statistic computed differently for calibration and test
//! images, any off-by-one in a rank, any reuse of X⁽²⁾ that breaks exchangeability moves the mean rejection
//! rate out of its interval or the spread away from the law.
//!
//! **The study.** [`Resplits`] draws seeded splits of a pool of `N` images into X⁽¹⁾ (optional: a reference
//! from the pool), X⁽²⁾ and a test part; [`ValidityStudy`] collects each procedure's test p-values per split
//! and summarises them per `(procedure, |X⁽²⁾|, α)` ([`ValidityRow`]): the mean rejection rate against its
//! exact expectation with a 99.9% interval, the spread across splits against the law's, the share of splits
//! above the law's 95% quantile, and the empirical CDF of the p-values for plots.
//!
//! For the full-conformal combinations (Fisher, minimum p) the marginal expectation is the same `k/(n + 1)`
//! (ranks in `X⁽²⁾ ∪ {x}`), but X⁽²⁾'s combined values depend on the test image, so the Beta-binomial spread
//! is an approximation for them; the interval of the mean uses the larger of the law's and the observed spread.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// `z` of a two-sided 99.9% normal interval: a table has many cells (procedures × sizes × levels), and at 99%
/// one in a hundred of an exactly valid detector's would fall outside by chance.
const Z999: f64 = 3.290_526_731_491_926;

fn check_alpha(alpha: f64) -> Result<()> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "alpha",
            reason: format!("a level in (0, 1), got {alpha}"),
        }));
    }
    Ok(())
}

/// The law of the number of test images (out of `m`) with a conformal p-value `≤ α`, X⁽²⁾ of `n` images drawn
/// with them: `BetaBinomial(m, k, n + 1 − k)`, `k = ⌊α(n + 1)⌋` (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct RejectionLaw {
    m: usize,
    k: usize,
    n: usize,
    pmf: Vec<f64>,
}

impl RejectionLaw {
    /// The law for `n` calibration images, `m` test images and level `alpha`.
    pub fn conformal(n: usize, m: usize, alpha: f64) -> Result<Self> {
        check_alpha(alpha)?;
        if n == 0 || m == 0 {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "sizes",
                reason: format!("calibration and test sizes of at least 1, got n = {n}, m = {m}"),
            }));
        }
        // The tiny tolerance keeps α(n + 1) = 10.000000000000002 from becoming 10 + 1 by rounding the other way:
        // k is the number of calibration ranks a p-value ≤ α can take.
        let k = ((alpha * (n + 1) as f64) + 1e-9).floor() as usize;
        let k = k.min(n + 1);
        Ok(Self {
            m,
            k,
            n,
            pmf: beta_binomial_pmf(m, k, n + 1 - k),
        })
    }

    /// `P(p ≤ α) = k/(n + 1)`: the exact expected rejection rate.
    pub fn rejection_probability(&self) -> f64 {
        self.k as f64 / (self.n + 1) as f64
    }

    /// `P(X = x)` for `x = 0 ..= m`.
    pub fn pmf(&self) -> &[f64] {
        &self.pmf
    }

    /// The standard deviation of the rejection *rate* `X / m`.
    pub fn rate_sd(&self) -> f64 {
        let q = self.rejection_probability();
        let (m, n) = (self.m as f64, self.n as f64);
        // Var X = m q (1 − q) (n + 1 + m) / (n + 2).
        (q * (1.0 - q) * (n + 1.0 + m) / ((n + 2.0) * m)).sqrt()
    }

    /// The smallest count `x` with `P(X ≤ x) ≥ level`.
    pub fn quantile(&self, level: f64) -> usize {
        let mut acc = 0.0;
        for (x, p) in self.pmf.iter().enumerate() {
            acc += p;
            if acc >= level - 1e-12 {
                return x;
            }
        }
        self.m
    }

    /// The two-sided acceptance interval `[lo, hi]` of the count at `level` (e.g. 0.99): the largest `lo` with
    /// `P(X < lo) ≤ (1 − level)/2` and the smallest `hi` with `P(X > hi) ≤ (1 − level)/2`. An exactly valid
    /// detector's false-positive count on `m` test images lands inside it with probability at least `level`,
    /// the calibration set's own randomness included (a Binomial(m, α) interval leaves that out and is too
    /// narrow).
    pub fn interval(&self, level: f64) -> (usize, usize) {
        let tail = (1.0 - level) / 2.0;
        let (mut lo, mut below) = (0, 0.0);
        while lo < self.m && below + self.pmf[lo] <= tail {
            below += self.pmf[lo];
            lo += 1;
        }
        let (mut hi, mut above) = (self.m, 0.0);
        while hi > 0 && above + self.pmf[hi] <= tail {
            above += self.pmf[hi];
            hi -= 1;
        }
        (lo, hi)
    }

    /// `P(X ≥ x)`.
    pub fn upper_tail(&self, x: usize) -> f64 {
        self.pmf.iter().skip(x).sum::<f64>().min(1.0)
    }
}

/// `BetaBinomial(m, a, b)` probabilities for `x = 0 ..= m`, by the ratio of consecutive terms in log space;
/// `a = 0` is the point mass at 0, `b = 0` the one at `m`.
fn beta_binomial_pmf(m: usize, a: usize, b: usize) -> Vec<f64> {
    let mut pmf = vec![0.0; m + 1];
    if a == 0 {
        pmf[0] = 1.0;
        return pmf;
    }
    if b == 0 {
        pmf[m] = 1.0;
        return pmf;
    }
    let (a, b, mf) = (a as f64, b as f64, m as f64);
    let mut log = vec![0.0f64; m + 1];
    for x in 0..m {
        let x = x as f64;
        // P(x + 1) / P(x) = (m − x)(x + a) / ((x + 1)(m − x − 1 + b)).
        log[x as usize + 1] =
            log[x as usize] + ((mf - x) * (x + a)).ln() - ((x + 1.0) * (mf - x - 1.0 + b)).ln();
    }
    let top = log.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = log.iter().map(|l| (l - top).exp()).sum();
    pmf.iter_mut()
        .zip(&log)
        .for_each(|(p, l)| *p = (l - top).exp() / total);
    pmf
}

/// One split of a pool of images, as indices into it: X⁽¹⁾ (empty when the reference is fixed outside the
/// pool), X⁽²⁾ and the test part, disjoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The reference's images.
    pub x1: Vec<usize>,
    /// The calibration images.
    pub x2: Vec<usize>,
    /// The test images.
    pub test: Vec<usize>,
}

/// Seeded random splits of a pool of `pool` images: split `i` is a uniform permutation (ChaCha8 stream `i` of
/// `seed`), cut into `x1` reference images, `|X⁽²⁾|` calibration images and `test` test images (every
/// remaining image when `None`). The same split index gives nested X⁽²⁾ of different sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resplits {
    pool: usize,
    x1: usize,
    test: Option<usize>,
    seed: u64,
}

impl Resplits {
    /// Splits of a pool of `pool` images with `x1` reference images drawn from it (0: the reference is fixed
    /// elsewhere) and at most `test` test images.
    pub fn new(pool: usize, x1: usize, test: Option<usize>, seed: u64) -> Result<Self> {
        if test == Some(0) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "test",
                reason: "at least 1 test image per split".into(),
            }));
        }
        if x1.checked_add(2).is_none_or(|need| need > pool) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "pool",
                reason: format!(
                    "{pool} images cannot hold {x1} reference images, calibration and test images"
                ),
            }));
        }
        Ok(Self {
            pool,
            x1,
            test,
            seed,
        })
    }

    /// The largest `|X⁽²⁾|` that leaves at least `min_test` test images.
    pub fn max_x2(&self, min_test: usize) -> usize {
        self.pool
            .saturating_sub(self.x1.saturating_add(min_test.max(1)))
    }

    /// Split number `index` with `x2` calibration images.
    pub fn split(&self, x2: usize, index: u64) -> Result<Split> {
        let rest = self.pool.saturating_sub(self.x1.saturating_add(x2));
        if x2 < 2 || rest == 0 {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "x2",
                reason: format!(
                    "{x2} calibration images: at least 2, and at most {} with {} reference images in a pool \
                     of {}",
                    self.max_x2(1),
                    self.x1,
                    self.pool
                ),
            }));
        }
        let mut order: Vec<usize> = (0..self.pool).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index);
        order.shuffle(&mut rng);
        let test = self.test.map_or(rest, |t| t.min(rest));
        let (x1, after) = order.split_at(self.x1);
        let (x2s, after) = after.split_at(x2);
        Ok(Split {
            x1: x1.to_vec(),
            x2: x2s.to_vec(),
            test: after[..test].to_vec(),
        })
    }
}

/// Resolution of the recorded empirical CDF of p-values: bins of width `1 / ECDF_BINS`.
pub const ECDF_BINS: usize = 1000;

/// What one `(procedure, |X⁽²⁾|)` cell has collected.
#[derive(Debug, Clone, PartialEq)]
struct Cell {
    test_size: usize,
    /// `[α][split]`: rejected test images.
    rejected: Vec<Vec<usize>>,
    /// p-values in `((j − 1)/B, j/B]` at index `j − 1`.
    bins: Vec<u64>,
}

/// Test p-values of procedures over many splits, summarised against [`RejectionLaw`] (see the module
/// documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidityStudy {
    alphas: Vec<f64>,
    cells: BTreeMap<(usize, usize), Cell>,
    names: Vec<String>,
}

/// One line of a validity table: a procedure at one `|X⁽²⁾|` and one `α`, over all splits.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidityRow {
    /// The procedure's name.
    pub procedure: String,
    /// `|X⁽²⁾|`.
    pub x2_size: usize,
    /// Test images per split.
    pub test_size: usize,
    /// The level.
    pub alpha: f64,
    /// Splits recorded.
    pub splits: usize,
    /// Mean over splits of the share of test images with `p ≤ α`.
    pub mean_rate: f64,
    /// Its exact expectation, `⌊α(n + 1)⌋/(n + 1)`.
    pub expected_rate: f64,
    /// 99.9% interval of the mean under the exact law: `expected ± 3.29 · max(law sd, observed sd)/√splits`, cut
    /// to `[0, 1]`.
    pub interval: (f64, f64),
    /// Standard deviation of the rate across splits.
    pub sd: f64,
    /// The law's standard deviation of the rate ([`RejectionLaw::rate_sd`]).
    pub law_sd: f64,
    /// Share of splits whose count exceeds the law's 95% quantile (at most about 5% under the law).
    pub above_law_q95: f64,
    /// The largest rate of any split.
    pub max_rate: f64,
}

impl ValidityRow {
    /// Whether the mean rejection rate lies in its interval.
    pub fn mean_inside(&self) -> bool {
        self.mean_rate >= self.interval.0 && self.mean_rate <= self.interval.1
    }

    /// Whether the mean rejection rate lies *above* its interval: more false positives than the level
    /// promises, the failure that matters. Below the interval is conservative: still valid, e.g. from ties
    /// among the combined values of a minimum p-value, which the full-conformal rank counts against the image.
    pub fn mean_above(&self) -> bool {
        self.mean_rate > self.interval.1
    }
}

impl ValidityStudy {
    /// A study at levels `alphas` (each in (0, 1)).
    pub fn new(alphas: &[f64]) -> Result<Self> {
        if alphas.is_empty() {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "alphas",
                reason: "at least one level".into(),
            }));
        }
        for &a in alphas {
            check_alpha(a)?;
        }
        Ok(Self {
            alphas: alphas.to_vec(),
            cells: BTreeMap::new(),
            names: Vec::new(),
        })
    }

    /// The levels.
    pub fn alphas(&self) -> &[f64] {
        &self.alphas
    }

    fn name_index(&mut self, procedure: &str) -> usize {
        match self.names.iter().position(|n| n == procedure) {
            Some(i) => i,
            None => {
                self.names.push(procedure.to_string());
                self.names.len() - 1
            }
        }
    }

    /// Records one split's test p-values of `procedure` calibrated on `x2_size` images. Every split of a cell
    /// must have the same number of test images; p-values must lie in `(0, 1]`.
    pub fn record(&mut self, procedure: &str, x2_size: usize, p_values: &[f64]) -> Result<()> {
        if let Some(&p) = p_values.iter().find(|p| !(**p > 0.0 && **p <= 1.0)) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "p_values",
                reason: format!("{procedure}: a p-value outside (0, 1]: {p}"),
            }));
        }
        if p_values.is_empty() {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "p_values",
                reason: format!("{procedure}: no test image"),
            }));
        }
        let index = self.name_index(procedure);
        let alphas = self.alphas.clone();
        let cell = self.cells.entry((index, x2_size)).or_insert_with(|| Cell {
            test_size: p_values.len(),
            rejected: vec![Vec::new(); alphas.len()],
            bins: vec![0; ECDF_BINS],
        });
        if cell.test_size != p_values.len() {
            return Err(Error::ShapeMismatch {
                what: "test p-values of one split",
                expected: vec![cell.test_size],
                got: vec![p_values.len()],
            });
        }
        for (a, counts) in alphas.iter().zip(&mut cell.rejected) {
            counts.push(p_values.iter().filter(|&&p| p <= *a).count());
        }
        for &p in p_values {
            // p = j/B exactly belongs to bin j − 1 (the ECDF at j/B counts it); rounding noise is forgiven.
            let j = ((p * ECDF_BINS as f64) - 1e-9)
                .ceil()
                .clamp(1.0, ECDF_BINS as f64) as usize;
            cell.bins[j - 1] += 1;
        }
        Ok(())
    }

    /// The procedures, in the order first recorded.
    pub fn procedures(&self) -> &[String] {
        &self.names
    }

    /// The summary: one row per procedure (in recording order), `|X⁽²⁾|` (ascending) and `α`.
    pub fn rows(&self) -> Result<Vec<ValidityRow>> {
        let mut rows = Vec::new();
        for ((index, x2_size), cell) in &self.cells {
            for (&alpha, counts) in self.alphas.iter().zip(&cell.rejected) {
                let law = RejectionLaw::conformal(*x2_size, cell.test_size, alpha)?;
                let m = cell.test_size as f64;
                let rates: Vec<f64> = counts.iter().map(|&c| c as f64 / m).collect();
                let splits = rates.len();
                let mean_rate = rates.iter().sum::<f64>() / splits as f64;
                let sd = if splits > 1 {
                    (rates.iter().map(|r| (r - mean_rate).powi(2)).sum::<f64>()
                        / (splits - 1) as f64)
                        .sqrt()
                } else {
                    0.0
                };
                let expected = law.rejection_probability();
                let half = Z999 * law.rate_sd().max(sd) / (splits as f64).sqrt();
                let q95 = law.quantile(0.95);
                rows.push(ValidityRow {
                    procedure: self.names[*index].clone(),
                    x2_size: *x2_size,
                    test_size: cell.test_size,
                    alpha,
                    splits,
                    mean_rate,
                    expected_rate: expected,
                    // A rate lies in [0, 1]: a normal interval is cut there (few splits, small α).
                    interval: ((expected - half).max(0.0), (expected + half).min(1.0)),
                    sd,
                    law_sd: law.rate_sd(),
                    above_law_q95: counts.iter().filter(|&&c| c > q95).count() as f64
                        / splits as f64,
                    max_rate: rates.iter().copied().fold(0.0, f64::max),
                });
            }
        }
        rows.sort_by_key(|r| (self.names.iter().position(|n| *n == r.procedure), r.x2_size));
        Ok(rows)
    }

    /// The empirical CDF of `procedure`'s test p-values at `|X⁽²⁾| = x2_size`, pooled over splits: points
    /// `(t, share of p ≤ t)` at `t = j / ECDF_BINS`, `t ≤ up_to`; `None` if nothing was recorded.
    pub fn ecdf(&self, procedure: &str, x2_size: usize, up_to: f64) -> Option<Vec<(f64, f64)>> {
        let index = self.names.iter().position(|n| n == procedure)?;
        let cell = self.cells.get(&(index, x2_size))?;
        let total: u64 = cell.bins.iter().sum();
        let mut acc = 0u64;
        let mut out = vec![(0.0, 0.0)];
        for (j, &b) in cell.bins.iter().enumerate() {
            acc += b;
            let t = (j + 1) as f64 / ECDF_BINS as f64;
            if t > up_to + 1e-12 {
                break;
            }
            out.push((t, acc as f64 / total as f64));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    /// Sizes near `usize::MAX` (a `--reference` flag) are refused, not a panic in the split's arithmetic.
    #[test]
    fn huge_sizes_are_refused() {
        assert!(Resplits::new(100, usize::MAX, None, 0).is_err());
        assert!(Resplits::new(100, usize::MAX - 1, None, 0).is_err());
        let r = Resplits::new(100, 10, None, 0).unwrap();
        assert_eq!(r.max_x2(usize::MAX), 0);
        assert!(r.split(usize::MAX, 0).is_err());
    }

    #[test]
    fn law_by_hand() {
        // n = 1, α = 0.5: k = 1, Beta(1, 1) = uniform, so BetaBinomial(m, 1, 1) is uniform on 0..=m.
        let law = RejectionLaw::conformal(1, 4, 0.5).unwrap();
        for p in law.pmf() {
            assert!((p - 0.2).abs() < 1e-12, "{:?}", law.pmf());
        }
        assert_eq!(law.rejection_probability(), 0.5);
        // m = 1: Bernoulli(k/(n + 1)).
        let law = RejectionLaw::conformal(19, 1, 0.1).unwrap();
        assert!((law.pmf()[1] - 0.1).abs() < 1e-12);
        // α below 1/(n + 1): never rejects.
        let law = RejectionLaw::conformal(10, 5, 0.05).unwrap();
        assert_eq!(law.pmf()[0], 1.0);
        assert_eq!(law.rate_sd(), 0.0);
        // k = ⌊0.05 · 201⌋ = 10, not 11 by rounding.
        let law = RejectionLaw::conformal(199, 5, 0.05).unwrap();
        assert_eq!(law.rejection_probability(), 10.0 / 200.0);
        assert!(RejectionLaw::conformal(10, 5, 0.0).is_err());
        assert!(RejectionLaw::conformal(0, 5, 0.1).is_err());
    }

    #[test]
    fn law_moments_match_the_formula() {
        let law = RejectionLaw::conformal(200, 300, 0.05).unwrap();
        let total: f64 = law.pmf().iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        let mean: f64 = law
            .pmf()
            .iter()
            .enumerate()
            .map(|(x, p)| x as f64 * p)
            .sum();
        let var: f64 = law
            .pmf()
            .iter()
            .enumerate()
            .map(|(x, p)| (x as f64 - mean).powi(2) * p)
            .sum();
        assert!((mean / 300.0 - law.rejection_probability()).abs() < 1e-12);
        assert!((var.sqrt() / 300.0 - law.rate_sd()).abs() < 1e-9);
        assert!(law.quantile(0.95) > 15 && law.upper_tail(0) == 1.0);
    }

    /// The law against brute force: split a fixed pool of distinct scores at random many times and count the
    /// test scores below X⁽²⁾'s k-th smallest (a conformal p-value ≤ α), as the module documentation says.
    #[test]
    fn law_matches_random_splits_of_a_fixed_pool() {
        let (n, m, alpha, trials) = (19usize, 8usize, 0.2, 40_000);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        // Any pool: skewed on purpose.
        let pool: Vec<f64> = (0..n + m).map(|_| rng.random::<f64>().powi(3)).collect();
        let mut counts = vec![0usize; m + 1];
        let mut order: Vec<usize> = (0..pool.len()).collect();
        for _ in 0..trials {
            order.shuffle(&mut rng);
            let (x2, test) = order.split_at(n);
            // p = (1 + #{x2 ≤ s}) / (n + 1) with low = anomalous.
            let rejected = test
                .iter()
                .filter(|&&t| {
                    let below = x2.iter().filter(|&&c| pool[c] <= pool[t]).count();
                    (1 + below) as f64 / (n + 1) as f64 <= alpha
                })
                .count();
            counts[rejected] += 1;
        }
        let law = RejectionLaw::conformal(n, m, alpha).unwrap();
        for (x, (&c, &p)) in counts.iter().zip(law.pmf()).enumerate() {
            let sd = (trials as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (c as f64 - trials as f64 * p).abs() <= 4.5 * sd + 1.0,
                "x = {x}: {c} of {trials}, law {p:.5}"
            );
        }
    }

    #[test]
    fn splits_are_seeded_disjoint_and_nested() {
        let r = Resplits::new(50, 5, Some(10), 9).unwrap();
        let a = r.split(20, 3).unwrap();
        assert_eq!(a, r.split(20, 3).unwrap());
        assert_ne!(a, r.split(20, 4).unwrap());
        assert_eq!((a.x1.len(), a.x2.len(), a.test.len()), (5, 20, 10));
        let mut all: Vec<usize> = [a.x1.clone(), a.x2.clone(), a.test.clone()].concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 35);
        // The same split with a smaller X(2): its X(2) is a prefix of the larger one's.
        let b = r.split(10, 3).unwrap();
        assert_eq!(b.x2[..], a.x2[..10]);
        assert_eq!(
            Resplits::new(50, 0, None, 9)
                .unwrap()
                .split(30, 0)
                .unwrap()
                .test
                .len(),
            20
        );
        assert!(r.split(45, 0).is_err());
        assert!(Resplits::new(5, 4, None, 0).is_err());
        assert!(Resplits::new(50, 0, Some(0), 0).is_err());
    }

    #[test]
    fn study_accepts_exact_p_values_and_flags_an_off_by_one() {
        // Exact conformal p-values over random splits of a pool of 600 scores; and the same with the "+1" of
        // the numerator dropped, (#below)/(n + 1), which rejects one rank too many: 0.35 points more at α = 5%,
        // found by 1500 splits (at 300 the interval is wider than that).
        let pool: Vec<f64> = (0..600).map(|i| ((i * 7919) % 600) as f64).collect();
        let splits = Resplits::new(pool.len(), 0, None, 1).unwrap();
        let mut study = ValidityStudy::new(&[0.05, 0.1]).unwrap();
        for i in 0..1500 {
            let s = splits.split(200, i).unwrap();
            let p = |plus: usize| -> Vec<f64> {
                s.test
                    .iter()
                    .map(|&t| {
                        let below = s.x2.iter().filter(|&&c| pool[c] <= pool[t]).count();
                        ((plus + below) as f64 / 201.0).max(1.0 / 201.0)
                    })
                    .collect()
            };
            study.record("exact", 200, &p(1)).unwrap();
            study.record("off by one", 200, &p(0)).unwrap();
        }
        let rows = study.rows().unwrap();
        assert_eq!(rows.len(), 4);
        for r in &rows {
            let exact = r.procedure == "exact";
            assert_eq!(r.mean_inside(), exact, "{r:?}");
            assert_eq!(r.mean_above(), !exact, "{r:?}");
            if exact {
                assert!(r.above_law_q95 < 0.1, "{r:?}");
                assert!((r.sd / r.law_sd - 1.0).abs() < 0.2, "{r:?}");
            }
        }
        let ecdf = study.ecdf("exact", 200, 0.1).unwrap();
        assert_eq!(ecdf.len(), 101);
        let at = |t: f64| ecdf.iter().find(|(x, _)| (x - t).abs() < 1e-9).unwrap().1;
        assert!((at(0.05) - rows[0].mean_rate).abs() < 1e-9);
        assert!(study.record("exact", 200, &[0.0]).is_err());
        assert!(study.record("exact", 200, &[0.5]).is_err());
        assert!(ValidityStudy::new(&[1.0]).is_err());
    }
}
