//! Uncertainty of detection metrics: a confidence interval for the AUROC (DeLong et al., 1988) and the exact
//! acceptance interval of a binomial count (is a false-positive rate compatible with `α`?).

use super::check;
use crate::{Error, Result};

/// An AUROC and its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AurocInterval {
    /// The AUROC, as [`super::auroc`].
    pub auroc: f64,
    /// Lower end, clipped to `[0, 1]`.
    pub low: f64,
    /// Upper end, clipped to `[0, 1]`.
    pub high: f64,
}

/// The AUROC with a two-sided normal interval at `z` standard errors (1.96: 95%), its variance by DeLong's
/// structural components: with `V_out(y) = P(x_in < y) + ½ P(x_in = y)` for each anomaly `y` and
/// `V_in(x) = P(y_out > x) + ½ P(y_out = x)` for each in-distribution `x`,
/// `Var(AUROC) = s²(V_out)/n_out + s²(V_in)/n_in` (sample variances). Needs two samples on each side.
pub fn auroc_interval(in_scores: &[f64], out_scores: &[f64], z: f64) -> Result<AurocInterval> {
    check(in_scores, out_scores)?;
    if in_scores.len() < 2 || out_scores.len() < 2 || !(z.is_finite() && z > 0.0) {
        return Err(Error::InvalidParameter {
            name: "auroc_interval",
            reason: format!(
                "needs ≥ 2 scores per side and z > 0, got {} and {}, z = {z}",
                in_scores.len(),
                out_scores.len()
            ),
        });
    }
    let sorted = |s: &[f64]| {
        let mut v = s.to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    let (si, so) = (sorted(in_scores), sorted(out_scores));
    // Share of `sorted` below `v`, ties counted half.
    let below = |sorted: &[f64], v: f64| {
        let lt = sorted.partition_point(|&s| s < v);
        let le = sorted.partition_point(|&s| s <= v);
        (lt as f64 + 0.5 * (le - lt) as f64) / sorted.len() as f64
    };
    let v_out: Vec<f64> = out_scores.iter().map(|&y| below(&si, y)).collect();
    let v_in: Vec<f64> = in_scores.iter().map(|&x| 1.0 - below(&so, x)).collect();
    let auroc = v_out.iter().sum::<f64>() / v_out.len() as f64;
    let var = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    };
    let se = (var(&v_out) / v_out.len() as f64 + var(&v_in) / v_in.len() as f64).sqrt();
    Ok(AurocInterval {
        auroc,
        low: (auroc - z * se).max(0.0),
        high: (auroc + z * se).min(1.0),
    })
}

/// The exact two-sided acceptance interval `[lo, hi]` of a Binomial(`n`, `p`) count at `level` (e.g. 0.99): the
/// largest `lo` with `P(X < lo) ≤ (1 − level)/2` and the smallest `hi` with `P(X > hi) ≤ (1 − level)/2`. A
/// detector's false-positive count on `n` in-distribution images at level `α` should fall inside it for `p = α`.
pub fn binomial_interval(n: usize, p: f64, level: f64) -> Result<(usize, usize)> {
    if !(p > 0.0 && p < 1.0 && level > 0.0 && level < 1.0) {
        return Err(Error::InvalidParameter {
            name: "binomial_interval",
            reason: format!("needs 0 < p < 1 and 0 < level < 1, got p = {p}, level = {level}"),
        });
    }
    let tail = (1.0 - level) / 2.0;
    // pmf in log space: ln P(X = 0) = n ln(1 − p), then the ratio P(k+1)/P(k) = (n − k)/(k + 1) · p/(1 − p).
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut log_pmf = Vec::with_capacity(n + 1);
    let mut l = n as f64 * lq;
    for k in 0..=n {
        log_pmf.push(l);
        l += ((n - k) as f64).ln() - ((k + 1) as f64).ln() + lp - lq;
    }
    let pmf: Vec<f64> = log_pmf.iter().map(|v| v.exp()).collect();
    let (mut lo, mut below) = (0, 0.0);
    while lo < n && below + pmf[lo] <= tail {
        below += pmf[lo];
        lo += 1;
    }
    let (mut hi, mut above) = (n, 0.0);
    while hi > 0 && above + pmf[hi] <= tail {
        above += pmf[hi];
        hi -= 1;
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DeLong by hand: in (0, 1), out (0.5, 2): V_out = (½, 1), V_in = (1, ½); AUROC ¾;
    /// Var = s²(½, 1)/2 + s²(1, ½)/2 = 0.125/2 + 0.125/2 = 0.125 → se 0.3536.
    #[test]
    fn delong_by_hand() {
        let r = auroc_interval(&[0.0, 1.0], &[0.5, 2.0], 1.0).unwrap();
        assert!((r.auroc - 0.75).abs() < 1e-15);
        assert!((r.low - (0.75 - 0.125f64.sqrt())).abs() < 1e-12, "{r:?}");
        assert_eq!(r.high, 1.0);
        // Equals the AUROC of the metric module, ties included.
        let (i, o) = ([0.1, 0.4, 0.4, 0.9, 0.3], [0.4, 0.8, 0.2, 0.95]);
        let r = auroc_interval(&i, &o, 1.96).unwrap();
        assert!((r.auroc - super::super::auroc(&i, &o).unwrap()).abs() < 1e-12);
        assert!(r.low < r.auroc && r.auroc < r.high);
        assert!(auroc_interval(&[0.0], &[1.0, 2.0], 1.96).is_err());
    }

    /// Against sums of the pmf written out: Binomial(10, 0.5), level 0.9 → tail 0.05: P(X ≤ 1) = 11/1024 ≤ 0.05,
    /// P(X ≤ 2) = 56/1024 > 0.05, so lo = 2; by symmetry hi = 8.
    #[test]
    fn binomial_by_hand() {
        assert_eq!(binomial_interval(10, 0.5, 0.9).unwrap(), (2, 8));
        // Binomial(200, 0.05): mean 10, sd 3.08; 99%: P(X ≤ 2) ≈ 0.0023, P(X ≤ 3) ≈ 0.0090 → lo 3;
        // P(X ≥ 20) ≈ 0.0036, P(X ≥ 19) ≈ 0.0074 → hi 19.
        assert_eq!(binomial_interval(200, 0.05, 0.99).unwrap(), (3, 19));
        assert!(binomial_interval(10, 0.0, 0.9).is_err());
    }
}
