//! Area under the precision–recall curve, as average precision (the step-wise sum used by scikit-learn).

use super::{check, cumulative_counts};
use crate::Result;

/// AUPR with anomalies as the positive class (scores as given).
pub fn aupr_out(in_scores: &[f64], out_scores: &[f64]) -> Result<f64> {
    check(in_scores, out_scores)?;
    Ok(average_precision(in_scores, out_scores))
}

/// AUPR with in-distribution samples as the positive class (scores negated, so normal ranks high).
pub fn aupr_in(in_scores: &[f64], out_scores: &[f64]) -> Result<f64> {
    check(in_scores, out_scores)?;
    let neg_in: Vec<f64> = in_scores.iter().map(|s| -s).collect();
    let neg_out: Vec<f64> = out_scores.iter().map(|s| -s).collect();
    Ok(average_precision(&neg_out, &neg_in))
}

/// `Σ_k (R_k − R_{k−1}) P_k` over distinct thresholds from the highest down, positives ranking high.
fn average_precision(negatives: &[f64], positives: &[f64]) -> f64 {
    let n_pos = positives.len() as f64;
    let mut previous_recall = 0.0;
    let mut ap = 0.0;
    for c in cumulative_counts(negatives, positives) {
        let recall = c.positives as f64 / n_pos;
        let precision = c.positives as f64 / (c.positives + c.negatives) as f64;
        ap += (recall - previous_recall) * precision;
        previous_recall = recall;
    }
    ap
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The definition, threshold by threshold: precision at each distinct score, weighted by the recall it adds.
    fn brute_ap(neg: &[f64], pos: &[f64]) -> f64 {
        let mut thresholds: Vec<f64> = neg.iter().chain(pos).copied().collect();
        thresholds.sort_by(|a, b| b.total_cmp(a));
        thresholds.dedup();
        let mut ap = 0.0;
        let mut prev_recall = 0.0;
        for t in thresholds {
            let tp = pos.iter().filter(|&&s| s >= t).count() as f64;
            let fp = neg.iter().filter(|&&s| s >= t).count() as f64;
            let recall = tp / pos.len() as f64;
            ap += (recall - prev_recall) * tp / (tp + fp);
            prev_recall = recall;
        }
        ap
    }

    #[test]
    fn matches_definition_with_ties() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for trial in 0..50 {
            let i: Vec<f64> = (0..2 + trial % 11)
                .map(|_| rng.random_range(0..7) as f64)
                .collect();
            let o: Vec<f64> = (0..1 + trial % 9)
                .map(|_| rng.random_range(2..9) as f64)
                .collect();
            assert_relative_eq!(aupr_out(&i, &o).unwrap(), brute_ap(&i, &o), epsilon = 1e-12);
            let ni: Vec<f64> = i.iter().map(|s| -s).collect();
            let no: Vec<f64> = o.iter().map(|s| -s).collect();
            assert_relative_eq!(
                aupr_in(&i, &o).unwrap(),
                brute_ap(&no, &ni),
                epsilon = 1e-12
            );
        }
    }

    #[test]
    fn hand_cases() {
        assert_eq!(aupr_out(&[0.0, 1.0], &[2.0, 3.0]).unwrap(), 1.0);
        assert_eq!(aupr_in(&[0.0, 1.0], &[2.0, 3.0]).unwrap(), 1.0);
        // out = {3, 1}, in = {2}: ranks 3 (P = 1, R = ½), 2, 1 (P = ⅔, R = 1) → ½ + ½·⅔.
        assert_relative_eq!(
            aupr_out(&[2.0], &[3.0, 1.0]).unwrap(),
            0.5 + 1.0 / 3.0,
            epsilon = 1e-12
        );
    }
}
