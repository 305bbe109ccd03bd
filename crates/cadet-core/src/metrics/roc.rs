//! ROC curve, AUROC (Mann–Whitney U, ties count one half) and FPR at a TPR.

use super::{check, cumulative_counts};
use crate::{Error, Result};

/// One point of a ROC curve: flagging every sample with score `≥ threshold` gives these rates.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RocPoint {
    /// Decision threshold (`+∞` for the first point, which flags nothing).
    pub threshold: f64,
    /// Share of in-distribution samples flagged.
    pub fpr: f64,
    /// Share of anomalies flagged.
    pub tpr: f64,
}

/// The ROC curve, one point per distinct score plus the origin, from `(0, 0)` to `(1, 1)`.
pub fn roc_curve(in_scores: &[f64], out_scores: &[f64]) -> Result<Vec<RocPoint>> {
    check(in_scores, out_scores)?;
    let (n_in, n_out) = (in_scores.len() as f64, out_scores.len() as f64);
    let mut points = vec![RocPoint {
        threshold: f64::INFINITY,
        fpr: 0.0,
        tpr: 0.0,
    }];
    points.extend(
        cumulative_counts(in_scores, out_scores)
            .into_iter()
            .map(|c| RocPoint {
                threshold: c.threshold,
                fpr: c.negatives as f64 / n_in,
                tpr: c.positives as f64 / n_out,
            }),
    );
    Ok(points)
}

/// Area under the ROC curve: `P(s_out > s_in) + ½ P(s_out = s_in)`, the Mann–Whitney U statistic divided by
/// `|in| · |out|`. 1 is perfect separation, 0.5 chance.
pub fn auroc(in_scores: &[f64], out_scores: &[f64]) -> Result<f64> {
    check(in_scores, out_scores)?;
    // The area under the tie-grouped curve in whole counts: each group adds Δneg · (pos_before + pos_after) / 2,
    // which counts a tie as half a win; one division at the end keeps the result exact (0.5 is 0.5).
    let (mut twice_wins, mut neg, mut pos) = (0u128, 0usize, 0usize);
    for c in cumulative_counts(in_scores, out_scores) {
        twice_wins += ((c.negatives - neg) * (pos + c.positives)) as u128;
        (neg, pos) = (c.negatives, c.positives);
    }
    Ok(twice_wins as f64 / (2 * in_scores.len() * out_scores.len()) as f64)
}

/// The FPR at the highest threshold whose TPR reaches `tpr` (0.95 by convention: "FPR@95TPR"): the share of
/// in-distribution samples flagged when at least `tpr` of the anomalies are caught.
pub fn fpr_at_tpr(in_scores: &[f64], out_scores: &[f64], tpr: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&tpr) {
        return Err(Error::InvalidParameter {
            name: "tpr",
            reason: format!("must lie in [0, 1], got {tpr}"),
        });
    }
    let points = roc_curve(in_scores, out_scores)?;
    // TPR is k / n_out; compare counts, not rounded rates, so that 0.95 · 20 reaches 19 exactly.
    let n_out = out_scores.len() as f64;
    let needed = tpr * n_out - 1e-9 * n_out.max(1.0);
    Ok(points
        .iter()
        .find(|p| p.tpr * n_out >= needed)
        .map_or(1.0, |p| p.fpr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn brute_auroc(i: &[f64], o: &[f64]) -> f64 {
        let mut wins = 0.0;
        for &a in o {
            for &b in i {
                wins += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
        wins / (i.len() * o.len()) as f64
    }

    fn brute_fpr_at_tpr(i: &[f64], o: &[f64], tpr: f64) -> f64 {
        // Every candidate threshold; keep those that catch ≥ tpr of anomalies; the least FPR among them.
        let mut best = 1.0f64;
        for &t in i.iter().chain(o).chain(std::iter::once(&f64::INFINITY)) {
            let caught = o.iter().filter(|&&s| s >= t).count() as f64 / o.len() as f64;
            let flagged = i.iter().filter(|&&s| s >= t).count() as f64 / i.len() as f64;
            if caught >= tpr - 1e-12 {
                best = best.min(flagged);
            }
        }
        best
    }

    fn scores(rng: &mut ChaCha8Rng, n: usize, shift: f64, levels: u32) -> Vec<f64> {
        // Few levels so that ties occur, within and across the two sets.
        (0..n)
            .map(|_| (rng.random_range(0..levels) as f64) * 0.5 + shift)
            .collect()
    }

    #[test]
    fn auroc_equals_mann_whitney_brute_force_with_ties() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for trial in 0..50 {
            let i = scores(&mut rng, 1 + trial % 13, 0.0, 6);
            let o = scores(&mut rng, 1 + trial % 7, 0.5, 6);
            assert_relative_eq!(auroc(&i, &o).unwrap(), brute_auroc(&i, &o), epsilon = 1e-12);
        }
    }

    #[test]
    fn hand_cases() {
        assert_eq!(auroc(&[0.0, 1.0], &[2.0, 3.0]).unwrap(), 1.0);
        assert_eq!(auroc(&[2.0, 3.0], &[0.0, 1.0]).unwrap(), 0.0);
        assert_eq!(auroc(&[1.0], &[1.0]).unwrap(), 0.5);
        // in = {0, 2}, out = {1, 3}: wins 1>0, 3>0, 3>2 → 3 of 4.
        assert_eq!(auroc(&[0.0, 2.0], &[1.0, 3.0]).unwrap(), 0.75);
        let roc = roc_curve(&[0.0, 2.0], &[1.0, 3.0]).unwrap();
        let pts: Vec<(f64, f64)> = roc.iter().map(|p| (p.fpr, p.tpr)).collect();
        assert_eq!(
            pts,
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        // Catching both anomalies needs threshold 1, which flags the in-distribution 2.
        assert_eq!(fpr_at_tpr(&[0.0, 2.0], &[1.0, 3.0], 0.95).unwrap(), 0.5);
        assert_eq!(fpr_at_tpr(&[0.0, 2.0], &[1.0, 3.0], 0.5).unwrap(), 0.0);
    }

    #[test]
    fn fpr_at_tpr_matches_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for trial in 0..60 {
            let i = scores(&mut rng, 3 + trial % 17, 0.0, 9);
            let o = scores(&mut rng, 1 + trial % 21, 0.7, 9);
            for tpr in [0.0, 0.3, 0.5, 0.9, 0.95, 1.0] {
                assert_eq!(
                    fpr_at_tpr(&i, &o, tpr).unwrap(),
                    brute_fpr_at_tpr(&i, &o, tpr),
                    "{tpr}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(auroc(&[], &[1.0]), Err(Error::EmptyInput { .. })));
        assert!(matches!(
            auroc(&[f64::NAN], &[1.0]),
            Err(Error::NonFinite { .. })
        ));
        assert!(matches!(
            fpr_at_tpr(&[0.0], &[1.0], 1.5),
            Err(Error::InvalidParameter { name: "tpr", .. })
        ));
    }
}
