//! Detection metrics: AUROC, ROC curve, FPR at a given TPR, AUPR-in and AUPR-out.
//!
//! **Convention.** Every function takes `(in_scores, out_scores)`: scores of in-distribution samples and of
//! anomalies (out-of-distribution or adversarial), where a **higher score means more anomalous**. Anomalies are
//! the positive class: a sample is flagged when its score is `≥` the threshold, the true-positive rate (TPR) is
//! the share of anomalies flagged and the false-positive rate (FPR) the share of in-distribution samples flagged.
//! Detectors whose natural score grows with normality (CADet's similarity, a p-value) are negated first.
//!
//! All functions reject empty or non-finite input with a typed error.

mod interval;
mod pr;
mod roc;

pub use interval::{AurocInterval, auroc_interval, binomial_interval};
pub use pr::{aupr_in, aupr_out};
pub use roc::{RocPoint, auroc, fpr_at_tpr, roc_curve};

use crate::{Result, validate};

/// Counts at one distinct threshold: samples with score `≥ threshold`.
#[derive(Debug, Clone, Copy)]
struct Counts {
    threshold: f64,
    negatives: usize,
    positives: usize,
}

/// Cumulative counts at each distinct score, from the highest threshold down; `positive` scores rank high.
fn cumulative_counts(negatives: &[f64], positives: &[f64]) -> Vec<Counts> {
    let mut all: Vec<(f64, bool)> = negatives
        .iter()
        .map(|&s| (s, false))
        .chain(positives.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out = Vec::new();
    let (mut neg, mut pos) = (0, 0);
    let mut i = 0;
    while i < all.len() {
        let t = all[i].0;
        while i < all.len() && all[i].0 == t {
            if all[i].1 {
                pos += 1;
            } else {
                neg += 1;
            }
            i += 1;
        }
        out.push(Counts {
            threshold: t,
            negatives: neg,
            positives: pos,
        });
    }
    out
}

fn check(in_scores: &[f64], out_scores: &[f64]) -> Result<()> {
    validate::finite_slice("in-distribution scores", in_scores)?;
    validate::finite_slice("anomaly scores", out_scores)
}
