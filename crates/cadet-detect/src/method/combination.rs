//! Combinations of statistics into one score and a valid p-value, fitted on X⁽²⁾.
//!
//! - [`Combination::WeightedSum`]: `s₀ + Σ_{k≥1} γ_k s_k` with `γ_k = sd(s₀) / sd(s_k)` over X⁽²⁾, low =
//!   anomalous; for `[m_in, m_out]` it is the paper's `m_in + γ·m_out`. Its p-value is the paper's
//!   `(#{x' ∈ X⁽²⁾ : score(x') ≤ score(x)} + 1) / (|X⁽²⁾| + 1)` with one change that makes it exact: the weights
//!   are refitted on `X⁽²⁾ ∪ {x}` for each test image `x` (see below). The reported score uses the weights fitted
//!   on X⁽²⁾, so scores of different images stay comparable.
//! - [`Combination::Fisher`] and [`Combination::MinP`]: each statistic becomes a conformal p-value in the tail
//!   given for it ([`Tail`]: low, high, or either way), combined by Fisher (`T = −2 Σ ln p_k`) or by the minimum
//!   (`T = −min p_k`); `T` is ranked against X⁽²⁾.
//!
//! **Validity of the two-stage combinations.** X⁽²⁾ is used twice: to turn each statistic into a p-value and to
//! rank the combined value. We use *full conformal ranks*: for a test image `x`, every per-statistic p-value of
//! every point of the augmented set `A = X⁽²⁾ ∪ {x}` is its rank within `A` (not within X⁽²⁾ alone), so `T` is
//! the same function of each point and of the multiset `A`; under the null (`x` exchangeable with X⁽²⁾) the
//! `|A|` values `T(a)` are exchangeable, and `p = #{a ∈ A : T(a) ≥ T(x)} / |A|` satisfies `P(p ≤ α) ≤ α`
//! exactly, ties included. Unlike splitting X⁽²⁾, nothing is thrown away; the cost is `O(|X⁽²⁾| · S)` per image
//! (`S` statistics), nothing next to the forward passes.
//!
//! **Validity of the weighted sum.** The paper fits `γ` on X⁽²⁾ and then ranks `x` among X⁽²⁾'s sums under that
//! `γ`: X⁽²⁾'s points took part in the fit and `x` did not, so they are not exchangeable, and the p-value is
//! anti-conservative by a term of order `1/|X⁽²⁾|` (at `|X⁽²⁾| = 10` a test at level `1/11 = 9.1%` rejects about
//! 10.5% of in-distribution images; at `|X⁽²⁾| = 200` on CIFAR features it was measured just above its exact
//! interval). We use the full-conformal form: `γ(x)` is fitted on `A = X⁽²⁾ ∪ {x}` (running means and sums of
//! squares, so `O(S)` per image), every point of `A` is scored under `γ(x)`, and
//! `p = #{a ∈ A : score(a) ≤ score(x)} / |A|`. `γ(x)` is a symmetric function of `A`, so the p-value is exact,
//! ties included. Calibrations read from version-1 files hold no X⁽²⁾ statistics and keep the paper's form.

use serde::{Deserialize, Serialize};

use super::statistic::Statistic;
use crate::pvalue::Calibrator;
use crate::{Error, Result};

/// Which tail of a statistic's distribution over X⁽²⁾ marks an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tail {
    /// Low values are anomalous (similarities: `m_out`, local `m_out`).
    Lower,
    /// High values are anomalous.
    Upper,
    /// Either way: `p = min(1, 2 · min(p_lower, p_upper))` (`m_in`, which simpler images raise and harder ones
    /// lower).
    TwoSided,
}

impl Tail {
    fn label(self) -> &'static str {
        match self {
            Self::Lower => "low",
            Self::Upper => "high",
            Self::TwoSided => "two-sided",
        }
    }
}

/// How statistics become one score (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combination {
    /// `s₀ + Σ γ_k s_k`, `γ_k = sd(s₀)/sd(s_k)` over X⁽²⁾ (the paper's), low = anomalous.
    WeightedSum,
    /// Fisher's `−2 Σ ln p_k` of per-statistic conformal p-values, one tail per statistic.
    Fisher {
        /// The tail of each statistic, in order.
        tails: Vec<Tail>,
    },
    /// The minimum of per-statistic conformal p-values, one tail per statistic.
    MinP {
        /// The tail of each statistic, in order.
        tails: Vec<Tail>,
    },
}

/// A detection method: statistics and their combination. [`DetectionMethod::paper`] is CADet's, and the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectionMethod {
    /// The statistics, in order.
    pub statistics: Vec<Statistic>,
    /// Their combination.
    pub combination: Combination,
}

impl Default for DetectionMethod {
    fn default() -> Self {
        Self::paper()
    }
}

impl DetectionMethod {
    /// The paper's: `m_in + γ·m_out`.
    pub fn paper() -> Self {
        Self {
            statistics: vec![Statistic::MIn, Statistic::MOut],
            combination: Combination::WeightedSum,
        }
    }

    /// Two statistics combined; the conformal combinations rank the first in both tails and the second (a
    /// similarity) in its low tail.
    fn pair(first: Statistic, second: Statistic, how: fn(Vec<Tail>) -> Combination) -> Self {
        Self {
            statistics: vec![first, second],
            combination: how(vec![Tail::TwoSided, Tail::Lower]),
        }
    }

    /// `m_in + γ·local m_out (k)`.
    pub fn local_sum(k: usize) -> Self {
        Self::pair(Statistic::MIn, Statistic::LocalMOut { k }, |_| {
            Combination::WeightedSum
        })
    }

    /// Fisher's combination of `m_in` (two-sided) and `local m_out (k)` (low tail).
    pub fn fisher_local(k: usize) -> Self {
        Self::pair(Statistic::MIn, Statistic::LocalMOut { k }, |tails| {
            Combination::Fisher { tails }
        })
    }

    /// The minimum p-value of `m_in` (two-sided) and `local m_out (k)` (low tail).
    pub fn min_p_local(k: usize) -> Self {
        Self::pair(Statistic::MIn, Statistic::LocalMOut { k }, |tails| {
            Combination::MinP { tails }
        })
    }

    /// The minimum p-value of `m_in` (two-sided) and `local cos (k)` (low tail).
    pub fn min_p_cosine(k: usize) -> Self {
        Self::pair(Statistic::MIn, Statistic::LocalCosine { k }, |tails| {
            Combination::MinP { tails }
        })
    }

    /// Fisher's combination of `m_in` (two-sided) and `local cos (k)` (low tail).
    pub fn fisher_cosine(k: usize) -> Self {
        Self::pair(Statistic::MIn, Statistic::LocalCosine { k }, |tails| {
            Combination::Fisher { tails }
        })
    }

    /// The minimum p-value of `local m_in (k_in)` (two-sided) and `local cos (k)` (low tail): the examples'
    /// headline before [`DetectionMethod::min_p_two_scale`].
    pub fn min_p_local_m_in_cosine(k_in: usize, k: usize) -> Self {
        Self::pair(
            Statistic::LocalMIn { k: k_in },
            Statistic::LocalCosine { k },
            |tails| Combination::MinP { tails },
        )
    }

    /// Fisher's combination of `local m_in (k_in)` (two-sided) and `local cos (k)` (low tail).
    pub fn fisher_local_m_in_cosine(k_in: usize, k: usize) -> Self {
        Self::pair(
            Statistic::LocalMIn { k: k_in },
            Statistic::LocalCosine { k },
            |tails| Combination::Fisher { tails },
        )
    }

    /// The minimum p-value of `local m_in (k_in)` (two-sided) and `local cos` at two scales, `k_near` and
    /// `k_far` nearest reference images (both low tail): the examples' headline method before
    /// [`DetectionMethod::fisher_views`], which adds the un-augmented view (`min_p_two_scale(50, 1, 10)`).
    ///
    /// Why two scales: the nearest reference image is the sharpest evidence where the training images form tight
    /// clusters (the quickstart's shapes), the mean of ten is steadier where they do not (natural images); the
    /// minimum p-value takes whichever is stronger at the cost of one more comparison, and keeps the in-side
    /// (self-consistency) and the out-side (nearness) each able to flag an image on its own.
    pub fn min_p_two_scale(k_in: usize, k_near: usize, k_far: usize) -> Self {
        Self {
            statistics: vec![
                Statistic::LocalMIn { k: k_in },
                Statistic::LocalCosine { k: k_near },
                Statistic::LocalCosine { k: k_far },
            ],
            combination: Combination::MinP {
                tails: vec![Tail::TwoSided, Tail::Lower, Tail::Lower],
            },
        }
    }

    /// The recommended method: [`fisher_views(50, 1, 10)`](Self::fisher_views) — Fisher's combination of local
    /// `m_in` over the 50 nearest reference images, local and identity cosine at k = 1 and k = 10, and view
    /// agreement. It is the examples' headline, chosen on the quickstart's held-out shapes and six synthetic
    /// CIFAR-10 anomaly sets (never on the reported sets); docs/results.md compares it with the paper's method,
    /// which is at or below chance on the small encoders measured there. It needs the un-augmented view
    /// ([`CadetParams::identity_view`](crate::CadetParams::identity_view)) and at least 50 reference images
    /// (X⁽¹⁾); [`paper`](Self::paper) needs neither.
    ///
    /// ```
    /// use cadet_detect::DetectionMethod;
    /// assert_eq!(DetectionMethod::recommended(), DetectionMethod::fisher_views(50, 1, 10));
    /// ```
    pub fn recommended() -> Self {
        Self::fisher_views(50, 1, 10)
    }

    /// Fisher's combination of six statistics, one for each thing an anomaly can change, nearness at two
    /// scales: `local m_in (k_in)` (two-sided: do the image's transforms agree as much as those of the
    /// in-distribution images it resembles), `local cos` at `k_near` and `k_far` (are its transforms' mean near
    /// training images), `identity cos` at `k_near` and `k_far` (is its un-augmented view near training images'
    /// un-augmented views: the k-NN detector's statistic) and `view agreement` (does its un-augmented view agree
    /// with its transforms: an adversarial perturbation, crafted on that view, is partly undone by crops and
    /// flips). All but the first in their low tails. The examples' headline method (`fisher_views(50, 1, 10)`);
    /// needs the un-augmented view ([`CadetParams::identity_view`](crate::CadetParams::identity_view)).
    ///
    /// Why two scales: the nearest reference image is the sharpest evidence where the training images form tight
    /// clusters, the mean of ten steadier where they do not. Why Fisher rather than the minimum: each statistic
    /// alone misses some anomaly (an adversarial image looks *more* typical in a single view; a semantic outlier's
    /// views agree), and Fisher lets moderate evidence from several add up, where the minimum keeps only the
    /// strongest and pays for every extra statistic with a stricter threshold.
    pub fn fisher_views(k_in: usize, k_near: usize, k_far: usize) -> Self {
        Self {
            statistics: vec![
                Statistic::LocalMIn { k: k_in },
                Statistic::LocalCosine { k: k_near },
                Statistic::LocalCosine { k: k_far },
                Statistic::IdentityCosine { k: k_near },
                Statistic::IdentityCosine { k: k_far },
                Statistic::ViewAgreement,
            ],
            combination: Combination::Fisher {
                tails: vec![
                    Tail::TwoSided,
                    Tail::Lower,
                    Tail::Lower,
                    Tail::Lower,
                    Tail::Lower,
                    Tail::Lower,
                ],
            },
        }
    }

    /// One statistic alone, ranked in its low tail (e.g. local `m_out` alone).
    pub fn single(statistic: Statistic) -> Self {
        Self {
            statistics: vec![statistic],
            combination: Combination::WeightedSum,
        }
    }

    /// Whether a statistic needs X⁽¹⁾'s per-image features (a local statistic), not `μ` alone.
    pub fn needs_reference_images(&self) -> bool {
        self.statistics.iter().any(|s| {
            matches!(
                s,
                Statistic::LocalMOut { .. }
                    | Statistic::LocalCosine { .. }
                    | Statistic::LocalMIn { .. }
                    | Statistic::IdentityCosine { .. }
            )
        })
    }

    /// The most reference images (X⁽¹⁾) one of the statistics averages, the least |X⁽¹⁾| the method can be
    /// calibrated with (0: any).
    ///
    /// ```
    /// use cadet_detect::DetectionMethod;
    /// assert_eq!(DetectionMethod::recommended().reference_images_needed(), 50);
    /// assert_eq!(DetectionMethod::paper().reference_images_needed(), 0);
    /// ```
    pub fn reference_images_needed(&self) -> usize {
        self.statistics
            .iter()
            .map(Statistic::reference_images)
            .max()
            .unwrap_or(0)
    }

    /// Whether a statistic needs the un-augmented view's features beside the transforms'
    /// ([`ViewLayout::IdentityFirst`](super::ViewLayout::IdentityFirst)).
    pub fn needs_identity_view(&self) -> bool {
        self.statistics.iter().any(Statistic::needs_identity_view)
    }

    /// A short description for tables, e.g. `m_in (two-sided) ⊕ local m_out (k=5) (low), Fisher`.
    pub fn label(&self) -> String {
        match &self.combination {
            Combination::WeightedSum => {
                let names: Vec<String> = self.statistics.iter().map(Statistic::label).collect();
                match names.as_slice() {
                    [one] => one.clone(),
                    [first, rest @ ..] => std::iter::once(first.clone())
                        .chain(rest.iter().map(|n| format!("γ·{n}")))
                        .collect::<Vec<_>>()
                        .join(" + "),
                    [] => String::new(),
                }
            }
            Combination::Fisher { tails } | Combination::MinP { tails } => {
                let parts: Vec<String> = self
                    .statistics
                    .iter()
                    .zip(tails)
                    .map(|(s, t)| format!("{} ({})", s.label(), t.label()))
                    .collect();
                let how = if matches!(self.combination, Combination::Fisher { .. }) {
                    "Fisher"
                } else {
                    "min p"
                };
                format!("{how}: {}", parts.join(", "))
            }
        }
    }

    /// Validates the method: at least one statistic, none twice, one tail per statistic, `k ≥ 1`.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "method",
                reason,
            }))
        };
        if self.statistics.is_empty() {
            return bad("no statistic".into());
        }
        for (i, s) in self.statistics.iter().enumerate() {
            if self.statistics[..i].contains(s) {
                return bad(format!("{} appears twice", s.label()));
            }
            if let Statistic::LocalMOut { k: 0 }
            | Statistic::LocalCosine { k: 0 }
            | Statistic::LocalMIn { k: 0 }
            | Statistic::IdentityCosine { k: 0 } = s
            {
                return bad(format!("{} needs k ≥ 1", s.label()));
            }
        }
        if let Combination::Fisher { tails } | Combination::MinP { tails } = &self.combination
            && tails.len() != self.statistics.len()
        {
            return bad(format!(
                "{} tails for {} statistics",
                tails.len(),
                self.statistics.len()
            ));
        }
        Ok(())
    }
}

/// The fitted combination: weights for a sum, X⁽²⁾'s sorted scores, and X⁽²⁾'s statistics for the conformal
/// combinations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedCombination {
    pub(crate) combination: Combination,
    /// `[1, γ_1, …]` for a weighted sum; empty otherwise.
    pub(crate) weights: Vec<f64>,
    /// The weighted sum's p-values: X⁽²⁾'s anomaly scores `−score` (`None` for the conformal combinations).
    pub(crate) calibrator: Option<Calibrator>,
    /// X⁽²⁾'s statistics, one row per image (empty only for calibrations read from version-1 files).
    pub(crate) x2: Vec<Vec<f64>>,
}

/// Relative spread below which a statistic is taken as constant over X⁽²⁾ (one image repeated, or images whose
/// transforms all agree): statistics of `f32` features carry rounding of about `1e-7` relative, so a weight or a
/// rank from a spread below `1e-6` would be made of rounding noise. Real calibration sets spread by `1e-2`.
const MIN_RELATIVE_SD: f64 = 1e-6;

fn mean_sd(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

impl FittedCombination {
    /// Fits `method`'s combination on X⁽²⁾'s statistics (`x2[i][k]`: image `i`, statistic `k`).
    pub fn fit(method: &DetectionMethod, x2: Vec<Vec<f64>>) -> Result<Self> {
        method.validate()?;
        let s = method.statistics.len();
        if x2.len() < 2 {
            return Err(Error::Degenerate(format!(
                "X(2) needs at least 2 images, got {}",
                x2.len()
            )));
        }
        if let Some(row) = x2.iter().find(|r| r.len() != s) {
            return Err(Error::ShapeMismatch {
                what: "X(2) statistics",
                expected: vec![x2.len(), s],
                got: vec![x2.len(), row.len()],
            });
        }
        if x2.iter().flatten().any(|v| !v.is_finite()) {
            return Err(Error::Degenerate("X(2) statistics are not finite".into()));
        }
        let mut sds = Vec::with_capacity(s);
        for (k, stat) in method.statistics.iter().enumerate() {
            let (mean, sd) = mean_sd(x2.iter().map(|r| r[k]));
            // NaN-safe: a NaN spread is degenerate too.
            if sd.is_nan() || sd <= MIN_RELATIVE_SD * mean.abs().max(1e-300) {
                return Err(Error::Degenerate(format!(
                    "{} is constant over X(2) (mean {mean:.6e}, sd {sd:.3e}): is X(2) one image repeated, or made of X(1)'s own images?",
                    stat.label()
                )));
            }
            sds.push(sd);
        }
        let (weights, calibrator) = match method.combination {
            Combination::WeightedSum => {
                let weights: Vec<f64> = sds.iter().map(|sd| sds[0] / sd).collect();
                let anomaly: Vec<f64> = x2.iter().map(|r| -weighted(&weights, r)).collect();
                (weights, Some(Calibrator::new(anomaly)?))
            }
            _ => (Vec::new(), None),
        };
        Ok(Self {
            combination: method.combination.clone(),
            weights,
            calibrator,
            x2,
        })
    }

    /// The version-1 form: the paper's sum with `γ` and sorted scores only.
    pub(crate) fn legacy_paper(gamma: f64, sorted_scores: Vec<f64>) -> Result<Self> {
        Ok(Self {
            combination: Combination::WeightedSum,
            weights: vec![1.0, gamma],
            calibrator: Some(Calibrator::new(
                sorted_scores.into_iter().map(|s| -s).collect(),
            )?),
            x2: Vec::new(),
        })
    }

    /// `|X⁽²⁾|`.
    pub fn calibration_size(&self) -> usize {
        self.calibrator
            .as_ref()
            .map_or(self.x2.len(), |c| c.scores().len())
    }

    /// The weights `[1, γ_1, …]` of a weighted sum (empty for the conformal combinations).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// X⁽²⁾'s combined scores, ascending (low = anomalous): the weighted sums, or for the conformal combinations
    /// each X⁽²⁾ image scored against the others.
    pub fn calibration_scores(&self) -> Vec<f64> {
        if let Some(c) = &self.calibrator {
            return c.scores().iter().rev().map(|a| -a).collect();
        }
        let table = Ranks::new(&self.x2);
        let mut s: Vec<f64> = self
            .x2
            .iter()
            .map(|r| -table.combined_own(&self.combination, r))
            .collect();
        s.sort_by(f64::total_cmp);
        s
    }

    /// Scores images' statistics: `(score, p-value)` each, the score low = anomalous.
    pub fn score(&self, stats: &[Vec<f64>]) -> Vec<(f64, f64)> {
        match &self.combination {
            // The paper's p-value with γ refitted on X⁽²⁾ ∪ {x} (module documentation).
            Combination::WeightedSum if !self.x2.is_empty() => {
                let moments = Moments::new(&self.x2);
                stats
                    .iter()
                    .map(|r| {
                        let score = weighted(&self.weights, r);
                        (score, moments.full_conformal_p(&self.x2, r))
                    })
                    .collect()
            }
            // Version-1 calibrations keep only X⁽²⁾'s sums: the paper's split form.
            Combination::WeightedSum => stats
                .iter()
                .map(|r| {
                    let score = weighted(&self.weights, r);
                    let p = self.calibrator.as_ref().map_or(1.0, |c| c.p_value(-score));
                    (score, p)
                })
                .collect(),
            combination => {
                let table = Ranks::new(&self.x2);
                stats
                    .iter()
                    .map(|r| table.conformal(combination, r))
                    .collect()
            }
        }
    }

    /// Checks a combination read from a file against the method it claims to fit: the same combination, and for
    /// a weighted sum with X⁽²⁾'s statistics, the weights and calibration scores X⁽²⁾ gives (a file whose
    /// checksum was recomputed after an edit is refused here).
    pub(crate) fn check(&self, method: &DetectionMethod) -> Result<()> {
        let statistics = method.statistics.len();
        let bad = |r: &str| Err(Error::Degenerate(r.to_string()));
        if self.combination != method.combination {
            return Err(Error::Degenerate(format!(
                "the method names the {} combination, the fitted one is {}",
                combination_name(&method.combination),
                combination_name(&self.combination)
            )));
        }
        // Each stored statistic within the values it can take (an edited 1e308 would overflow the weighted sum's
        // variance into a silently degenerate weight).
        for row in &self.x2 {
            for (statistic, &v) in method.statistics.iter().zip(row) {
                let (lo, hi) = statistic.range();
                if !(lo..=hi).contains(&v) {
                    return Err(Error::Degenerate(format!(
                        "X(2) holds {} = {v:e}, outside [{lo}, {hi:e}], the values it can take",
                        statistic.label()
                    )));
                }
            }
        }
        // X⁽²⁾'s images are distinct draws: rows of two or more statistics that repeat, half of them or more, are
        // a calibration set given over and over (hostile pass 17: X⁽²⁾ repeated 20,000 times claimed p-values down
        // to 1/2,000,001 from 100 images). A single statistic keeps f32's digits, and a cosine near 1 repeats by
        // chance (24 of 40 rows in a test of tight features): not checked.
        let mut seen = std::collections::HashSet::with_capacity(self.x2.len());
        let repeated = self
            .x2
            .iter()
            .filter(|row| !seen.insert(row.iter().map(|v| v.to_bits()).collect::<Vec<u64>>()))
            .count();
        if statistics >= 2 && !self.x2.is_empty() && 2 * repeated >= self.x2.len() {
            return Err(Error::Degenerate(format!(
                "{repeated} of X(2)'s {} rows of statistics repeat other rows: the calibration images given more \
                 than once",
                self.x2.len()
            )));
        }
        // X⁽²⁾'s statistics must be what a calibration can be fitted on (finite, no constant statistic), for every
        // combination; a weighted sum's weights and scores must be what they give.
        let refit = if self.x2.is_empty() {
            None
        } else {
            Some(Self::fit(method, self.x2.clone())?)
        };
        if let (Combination::WeightedSum, Some(refit)) = (&self.combination, refit) {
            let close = |a: &[f64], b: &[f64]| {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-300))
            };
            let scores = |c: &Option<Calibrator>| c.as_ref().map(|c| c.scores().to_vec());
            if !close(&refit.weights, &self.weights)
                || !close(
                    &scores(&refit.calibrator).unwrap_or_default(),
                    &scores(&self.calibrator).unwrap_or_default(),
                )
            {
                return bad(
                    "the weights or calibration scores are not those X(2)'s statistics give",
                );
            }
        }
        match self.combination {
            Combination::WeightedSum => {
                if self.weights.len() != statistics
                    || self.weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
                {
                    return bad("weights missing or not finite");
                }
                match &self.calibrator {
                    Some(c) if !c.scores().is_empty() => {
                        Calibrator::from_sorted(c.scores().to_vec())?;
                    }
                    _ => return bad("calibration scores missing"),
                }
            }
            _ => {
                if self.x2.len() < 2
                    || self
                        .x2
                        .iter()
                        .any(|r| r.len() != statistics || r.iter().any(|v| !v.is_finite()))
                {
                    return bad("X(2) statistics missing, of the wrong length or not finite");
                }
            }
        }
        Ok(())
    }
}

fn combination_name(c: &Combination) -> String {
    let tails = |t: &[Tail]| t.iter().map(|t| t.label()).collect::<Vec<_>>().join(", ");
    match c {
        Combination::WeightedSum => "weighted-sum".into(),
        Combination::Fisher { tails: t } => format!("Fisher ({})", tails(t)),
        Combination::MinP { tails: t } => format!("min-p ({})", tails(t)),
    }
}

fn weighted(weights: &[f64], values: &[f64]) -> f64 {
    weights.iter().zip(values).map(|(w, v)| w * v).sum()
}

/// X⁽²⁾'s per-statistic means and sums of squared deviations, from which the weights on `X⁽²⁾ ∪ {x}` follow
/// in `O(S)` (Welford's update: one more point).
struct Moments {
    n: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl Moments {
    fn new(x2: &[Vec<f64>]) -> Self {
        let s = x2.first().map_or(0, Vec::len);
        let n = x2.len() as f64;
        let mean: Vec<f64> = (0..s)
            .map(|k| x2.iter().map(|r| r[k]).sum::<f64>() / n)
            .collect();
        let m2 = (0..s)
            .map(|k| x2.iter().map(|r| (r[k] - mean[k]).powi(2)).sum::<f64>())
            .collect();
        Self { n, mean, m2 }
    }

    /// The weights `[1, sd₀/sd₁, …]` over X⁽²⁾ ∪ {`row`}.
    fn weights_with(&self, row: &[f64]) -> Vec<f64> {
        let sds: Vec<f64> = row
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let delta = v - self.mean[k];
                let mean = self.mean[k] + delta / (self.n + 1.0);
                let m2 = self.m2[k] + delta * (v - mean);
                (m2 / self.n).sqrt()
            })
            .collect();
        sds.iter().map(|sd| sds[0] / sd).collect()
    }

    /// `#{a ∈ X⁽²⁾ ∪ {row} : score(a) ≤ score(row)} / (|X⁽²⁾| + 1)` with the weights refitted on the union; 1 for
    /// a row with a non-finite value (no evidence either way is better than a NaN decision).
    fn full_conformal_p(&self, x2: &[Vec<f64>], row: &[f64]) -> f64 {
        if row.iter().any(|v| !v.is_finite()) {
            return 1.0;
        }
        let weights = self.weights_with(row);
        let own = weighted(&weights, row);
        if !own.is_finite() {
            return 1.0;
        }
        let at_or_below = x2.iter().filter(|r| weighted(&weights, r) <= own).count();
        (1 + at_or_below) as f64 / (x2.len() + 1) as f64
    }
}

/// X⁽²⁾'s statistics sorted per statistic, with each X⁽²⁾ point's counts `#{X⁽²⁾ ≤ v}` and `#{X⁽²⁾ ≥ v}`.
struct Ranks<'a> {
    x2: &'a [Vec<f64>],
    sorted: Vec<Vec<f64>>,
    /// `[k][i]`: `(#{j : x2[j][k] ≤ x2[i][k]}, #{j : x2[j][k] ≥ x2[i][k]})`.
    counts: Vec<Vec<(usize, usize)>>,
}

impl<'a> Ranks<'a> {
    fn new(x2: &'a [Vec<f64>]) -> Self {
        let s = x2.first().map_or(0, Vec::len);
        let sorted: Vec<Vec<f64>> = (0..s)
            .map(|k| {
                let mut v: Vec<f64> = x2.iter().map(|r| r[k]).collect();
                v.sort_by(f64::total_cmp);
                v
            })
            .collect();
        let counts = (0..s)
            .map(|k| {
                x2.iter()
                    .map(|r| le_ge(&sorted[k], r[k]))
                    .collect::<Vec<_>>()
            })
            .collect();
        Self { x2, sorted, counts }
    }

    /// The combined value `T` (high = anomalous) of a point from its per-statistic counts within a set of
    /// `size` points.
    fn combine(
        combination: &Combination,
        counts: impl Iterator<Item = (usize, usize)>,
        size: usize,
    ) -> f64 {
        let tails = match combination {
            Combination::Fisher { tails } | Combination::MinP { tails } => tails,
            Combination::WeightedSum => unreachable!("not a conformal combination"),
        };
        let size = size as f64;
        let ps = counts.zip(tails).map(|((le, ge), tail)| {
            let (lo, hi) = (le as f64 / size, ge as f64 / size);
            match tail {
                Tail::Lower => lo,
                Tail::Upper => hi,
                Tail::TwoSided => (2.0 * lo.min(hi)).min(1.0),
            }
        });
        match combination {
            Combination::Fisher { .. } => -2.0 * ps.map(f64::ln).sum::<f64>(),
            _ => -ps.fold(1.0, f64::min),
        }
    }

    /// `T` of an X⁽²⁾ row within X⁽²⁾ alone (for reports).
    fn combined_own(&self, combination: &Combination, row: &[f64]) -> f64 {
        let counts = (0..row.len()).map(|k| le_ge(&self.sorted[k], row[k]));
        Self::combine(combination, counts, self.x2.len())
    }

    /// `(score, p)` of a test point: `score = −T(x)`, `p = #{a ∈ X⁽²⁾ ∪ {x} : T(a) ≥ T(x)} / (|X⁽²⁾| + 1)`, with
    /// every rank taken within `X⁽²⁾ ∪ {x}`.
    fn conformal(&self, combination: &Combination, x: &[f64]) -> (f64, f64) {
        let size = self.x2.len() + 1;
        let own = (0..x.len()).map(|k| {
            let (le, ge) = le_ge(&self.sorted[k], x[k]);
            (le + 1, ge + 1)
        });
        let t_x = Self::combine(combination, own, size);
        let at_least = self
            .x2
            .iter()
            .enumerate()
            .filter(|&(i, r)| {
                let counts = (0..r.len()).map(|k| {
                    let (le, ge) = self.counts[k][i];
                    (
                        le + usize::from(x[k] <= r[k]),
                        ge + usize::from(x[k] >= r[k]),
                    )
                });
                Self::combine(combination, counts, size) >= t_x
            })
            .count();
        (-t_x, (at_least + 1) as f64 / size as f64)
    }
}

/// `(#{v ∈ sorted : v ≤ x}, #{v ∈ sorted : v ≥ x})`.
fn le_ge(sorted: &[f64], x: f64) -> (usize, usize) {
    let le = sorted.partition_point(|&v| v <= x);
    let lt = sorted.partition_point(|&v| v < x);
    (le, sorted.len() - lt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X⁽²⁾ given twice over (hostile pass 17) is refused when a file is checked; one chance repeat is not.
    #[test]
    fn repeated_calibration_rows_are_refused() {
        let method = DetectionMethod::paper();
        let x2: Vec<Vec<f64>> = (0..40)
            .map(|i| vec![0.5 + 0.01 * f64::from(i), 0.3 - 0.004 * f64::from(i % 7)])
            .collect();
        let fitted = FittedCombination::fit(&method, x2.clone()).unwrap();
        assert!(fitted.check(&method).is_ok());
        let twice: Vec<Vec<f64>> = x2.iter().chain(&x2).cloned().collect();
        let doubled = FittedCombination::fit(&method, twice).unwrap();
        let e = doubled.check(&method).unwrap_err().to_string();
        assert!(e.contains("repeat"), "{e}");
        let mut one = x2.clone();
        one.push(x2[3].clone());
        let fitted = FittedCombination::fit(&method, one).unwrap();
        assert!(fitted.check(&method).is_ok(), "one repeat can be chance");
    }

    /// The conformal p-value by brute force: build `A = X⁽²⁾ ∪ {x}`, rank every point in every statistic within
    /// `A`, combine, count.
    fn brute(combination: &Combination, x2: &[Vec<f64>], x: &[f64]) -> (f64, f64) {
        let mut a: Vec<Vec<f64>> = x2.to_vec();
        a.push(x.to_vec());
        let n = a.len() as f64;
        let tails = match combination {
            Combination::Fisher { tails } | Combination::MinP { tails } => tails.clone(),
            _ => unreachable!(),
        };
        let t = |p: &[f64]| -> f64 {
            let ps: Vec<f64> = p
                .iter()
                .enumerate()
                .map(|(k, &v)| {
                    let lo = a.iter().filter(|r| r[k] <= v).count() as f64 / n;
                    let hi = a.iter().filter(|r| r[k] >= v).count() as f64 / n;
                    match tails[k] {
                        Tail::Lower => lo,
                        Tail::Upper => hi,
                        Tail::TwoSided => (2.0 * lo.min(hi)).min(1.0),
                    }
                })
                .collect();
            match combination {
                Combination::Fisher { .. } => -2.0 * ps.iter().map(|p| p.ln()).sum::<f64>(),
                _ => -ps.iter().copied().fold(1.0, f64::min),
            }
        };
        let tx = t(x);
        let count = a.iter().filter(|r| t(r) >= tx).count() as f64;
        (-tx, count / n)
    }

    #[test]
    fn conformal_matches_brute_force_with_ties() {
        // Small integer-valued statistics: many ties.
        let x2: Vec<Vec<f64>> = (0..23)
            .map(|i| {
                vec![
                    ((i * 7) % 5) as f64,
                    ((i * 3) % 4) as f64,
                    (i % 6) as f64 * 0.5,
                ]
            })
            .collect();
        for combination in [
            Combination::Fisher {
                tails: vec![Tail::TwoSided, Tail::Lower, Tail::Upper],
            },
            Combination::MinP {
                tails: vec![Tail::Lower, Tail::TwoSided, Tail::Lower],
            },
            // The previous headline's tails (`min_p_two_scale`).
            DetectionMethod::min_p_two_scale(2, 1, 3).combination,
        ] {
            let method = DetectionMethod {
                statistics: vec![
                    Statistic::MIn,
                    Statistic::LocalMOut { k: 3 },
                    Statistic::FeatureNorm,
                ],
                combination: combination.clone(),
            };
            let fitted = FittedCombination::fit(&method, x2.clone()).unwrap();
            for x in [
                vec![2.0, 1.0, 1.0],
                vec![-1.0, 5.0, 0.0],
                vec![4.0, 0.0, 2.5],
                vec![2.5, 1.5, 9.0],
            ] {
                let got = fitted.score(std::slice::from_ref(&x))[0];
                let want = brute(&combination, &x2, &x);
                assert!(
                    (got.0 - want.0).abs() < 1e-12,
                    "{combination:?} {x:?}: {got:?} {want:?}"
                );
                assert!(
                    (got.1 - want.1).abs() < 1e-12,
                    "{combination:?} {x:?}: {got:?} {want:?}"
                );
            }
        }
    }

    /// The paper's sum by hand: s₀ = (1, 2, 3) (sd 1), s₁ = (0, 4, 2) (sd 2) → γ = ½, scores 1, 4, 4 → sorted;
    /// a test (2, 2): score 3, one X⁽²⁾ score below → p = 2/4.
    /// The weighted sum's full-conformal p-value by brute force: weights from the sample sds of `X⁽²⁾ ∪ {x}`
    /// computed two-pass, every point scored, `x` ranked.
    fn brute_weighted(x2: &[Vec<f64>], x: &[f64]) -> f64 {
        let mut all = x2.to_vec();
        all.push(x.to_vec());
        let sd = |k: usize| {
            let m = all.iter().map(|r| r[k]).sum::<f64>() / all.len() as f64;
            (all.iter().map(|r| (r[k] - m).powi(2)).sum::<f64>() / (all.len() - 1) as f64).sqrt()
        };
        let w: Vec<f64> = (0..x.len()).map(|k| sd(0) / sd(k)).collect();
        let own = weighted(&w, x);
        let count = all.iter().filter(|r| weighted(&w, r) <= own).count();
        count as f64 / all.len() as f64
    }

    #[test]
    fn weighted_sum_p_value_is_full_conformal() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let row = |rng: &mut rand_chacha::ChaCha8Rng| {
            vec![
                rng.random::<f64>(),
                rng.random::<f64>().powi(3),
                rng.random::<f64>() * 5.0,
            ]
        };
        let x2: Vec<Vec<f64>> = (0..15).map(|_| row(&mut rng)).collect();
        let method = DetectionMethod {
            statistics: vec![
                Statistic::MIn,
                Statistic::MOut,
                Statistic::LocalMOut { k: 1 },
            ],
            combination: Combination::WeightedSum,
        };
        let f = FittedCombination::fit(&method, x2.clone()).unwrap();
        let mut tests: Vec<Vec<f64>> = (0..200).map(|_| row(&mut rng)).collect();
        // A test image equal to a calibration image: the tie counts against it.
        tests.push(x2[4].clone());
        for (t, (score, p)) in tests.iter().zip(f.score(&tests)) {
            assert!((p - brute_weighted(&x2, t)).abs() < 1e-12, "{t:?}");
            assert_eq!(score, weighted(&f.weights, t));
        }
    }

    /// The paper's split form (γ fitted on X⁽²⁾ alone) rejects more than its level at small |X⁽²⁾|; the
    /// full-conformal form rejects exactly `1/(n+1)` at `p ≤ 1/(n+1)`. 40,000 draws of X⁽²⁾ ∪ {x} (n = 10)
    /// from one law: the rejection rate's standard error is 0.0014.
    #[test]
    fn weighted_sum_is_exact_at_small_calibration_sets() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, LogNormal, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let skewed = LogNormal::new(0.0, 1.5).unwrap();
        let n = 10;
        let trials = 40_000;
        let (mut exact, mut split) = (0usize, 0usize);
        for _ in 0..trials {
            let mut rows: Vec<Vec<f64>> = (0..=n)
                .map(|_| {
                    let a: f64 = StandardNormal.sample(&mut rng);
                    vec![a, -skewed.sample(&mut rng)]
                })
                .collect();
            let x = rows.pop().unwrap();
            let f = FittedCombination::fit(&DetectionMethod::paper(), rows).unwrap();
            let level = 1.0 / (n + 1) as f64;
            exact += usize::from(f.score(std::slice::from_ref(&x))[0].1 <= level + 1e-12);
            let old = f
                .calibrator
                .as_ref()
                .unwrap()
                .p_value(-weighted(&f.weights, &x));
            split += usize::from(old <= level + 1e-12);
        }
        let (target, se) = (
            1.0 / 11.0,
            (1.0 / 11.0 * 10.0 / 11.0 / trials as f64).sqrt(),
        );
        let exact = exact as f64 / trials as f64;
        let split = split as f64 / trials as f64;
        assert!(
            (exact - target).abs() < 4.0 * se,
            "full conformal {exact} vs {target}"
        );
        assert!(split > target + 6.0 * se, "split form {split} vs {target}");
    }

    #[test]
    fn weighted_sum_by_hand() {
        let x2 = vec![vec![1.0, 0.0], vec![2.0, 4.0], vec![3.0, 2.0]];
        let f = FittedCombination::fit(&DetectionMethod::paper(), x2).unwrap();
        assert!((f.weights[1] - 0.5).abs() < 1e-15);
        assert_eq!(f.calibration_scores(), vec![1.0, 4.0, 4.0]);
        assert_eq!(f.score(&[vec![2.0, 2.0]]), vec![(3.0, 0.5)]);
    }

    #[test]
    fn degenerate_and_invalid() {
        let same = vec![vec![0.7, 0.3]; 10];
        assert!(matches!(
            FittedCombination::fit(&DetectionMethod::paper(), same),
            Err(Error::Degenerate(_))
        ));
        let bad = DetectionMethod {
            statistics: vec![Statistic::MIn, Statistic::MIn],
            combination: Combination::WeightedSum,
        };
        assert!(bad.validate().is_err());
        let tails = DetectionMethod {
            statistics: vec![Statistic::MIn],
            combination: Combination::Fisher { tails: vec![] },
        };
        assert!(tails.validate().is_err());
        assert!(DetectionMethod::fisher_local(5).validate().is_ok());
        assert_eq!(DetectionMethod::paper().label(), "m_in + γ·m_out");
        assert_eq!(
            DetectionMethod::fisher_local(5).label(),
            "Fisher: m_in (two-sided), local m_out (k=5) (low)"
        );
    }
}
