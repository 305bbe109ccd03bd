//! The usual health check of a contrastive run: the k-nearest-neighbour accuracy of the encoder's features on
//! a labelled probe set. Labels are used only here, to watch training; SimCLR itself never sees them.

use cadet_core::Embedder;
use cadet_core::linalg::{Threads, matmul, normalize_rows};
use ndarray::{Array4, ArrayView2, Axis};

use crate::{Error, Result};

/// Share of `queries` whose label wins the vote of their `k` most cosine-similar `bank` rows. A tie between
/// labels goes to the larger summed similarity, then to the smaller label.
pub fn knn_accuracy(
    bank: ArrayView2<'_, f32>,
    bank_labels: &[u32],
    queries: ArrayView2<'_, f32>,
    query_labels: &[u32],
    k: usize,
) -> Result<f64> {
    let invalid = |reason: String| Error::InvalidConfig {
        name: "knn_accuracy",
        reason,
    };
    if bank.nrows() != bank_labels.len() || queries.nrows() != query_labels.len() {
        return Err(invalid(format!(
            "{} bank rows with {} labels, {} queries with {} labels",
            bank.nrows(),
            bank_labels.len(),
            queries.nrows(),
            query_labels.len()
        )));
    }
    if bank.ncols() != queries.ncols() || queries.nrows() == 0 {
        return Err(invalid(format!(
            "bank of dimension {}, {} queries of dimension {}",
            bank.ncols(),
            queries.nrows(),
            queries.ncols()
        )));
    }
    if k == 0 || k > bank.nrows() {
        return Err(invalid(format!(
            "need 1 ≤ k ≤ {} (the bank), got {k}",
            bank.nrows()
        )));
    }
    let unit = |what, x| normalize_rows(what, x).map_err(|e| invalid(e.to_string()));
    let (bank, queries) = (unit("bank", bank)?, unit("queries", queries)?);
    let classes = 1 + *bank_labels.iter().max().unwrap_or(&0) as usize;
    let mut correct = 0usize;
    let mut order: Vec<usize> = Vec::with_capacity(bank.nrows());
    // Blocks of queries keep the similarity matrix small.
    for (block, labels) in queries
        .axis_chunks_iter(Axis(0), 256)
        .zip(query_labels.chunks(256))
    {
        let sims = matmul(block, bank.t(), Threads::Rayon).map_err(|e| invalid(e.to_string()))?;
        for (row, &truth) in sims.rows().into_iter().zip(labels) {
            order.clear();
            order.extend(0..row.len());
            order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
            let mut votes = vec![(0usize, 0.0f64); classes];
            for &j in &order[..k] {
                let v = &mut votes[bank_labels[j] as usize];
                v.0 += 1;
                v.1 += f64::from(row[j]);
            }
            let winner = (0..classes)
                .max_by(|&a, &b| {
                    (votes[a].0, votes[a].1)
                        .partial_cmp(&(votes[b].0, votes[b].1))
                        .unwrap_or(std::cmp::Ordering::Equal)
                        .then(b.cmp(&a))
                })
                .unwrap_or(0);
            correct += usize::from(winner == truth as usize);
        }
    }
    Ok(correct as f64 / queries.nrows() as f64)
}

/// A labelled probe set for watching a run: `bank` images with labels are the neighbours, `queries` with
/// labels are classified by them ([`knn_accuracy`] of the encoder's features).
#[derive(Debug, Clone)]
pub struct KnnMonitor {
    bank: Array4<f32>,
    bank_labels: Vec<u32>,
    queries: Array4<f32>,
    query_labels: Vec<u32>,
    k: usize,
    every: u64,
}

impl KnnMonitor {
    /// Images `(N, C, H, W)` in `[0, 1]` with one label each; evaluated every `every` (≥ 1) optimizer steps
    /// and at the end of [`crate::SimClrTrainer::train`], with `k` neighbours (1 ≤ k ≤ bank size; 20 is usual).
    pub fn new(
        bank: (Array4<f32>, Vec<u32>),
        queries: (Array4<f32>, Vec<u32>),
        k: usize,
        every: u64,
    ) -> Result<Self> {
        let (bank, bank_labels) = bank;
        let (queries, query_labels) = queries;
        let (bn, qn) = (bank.dim().0, queries.dim().0);
        let same_shape = bank.shape()[1..] == queries.shape()[1..];
        if bn != bank_labels.len() || qn != query_labels.len() || qn == 0 || !same_shape {
            return Err(Error::InvalidConfig {
                name: "KnnMonitor",
                reason: format!(
                    "bank {:?} with {} labels, queries {:?} with {} labels",
                    bank.shape(),
                    bank_labels.len(),
                    queries.shape(),
                    query_labels.len()
                ),
            });
        }
        if k == 0 || k > bn || every == 0 {
            return Err(Error::InvalidConfig {
                name: "KnnMonitor",
                reason: format!("need 1 ≤ k ≤ {bn} and every ≥ 1, got k = {k}, every = {every}"),
            });
        }
        Ok(Self {
            bank,
            bank_labels,
            queries,
            query_labels,
            k,
            every,
        })
    }

    /// Steps between evaluations.
    pub fn every(&self) -> u64 {
        self.every
    }

    /// The k-NN accuracy of `embedder`'s features.
    pub fn accuracy(&self, embedder: &dyn Embedder) -> Result<f64> {
        let embed = |images: &Array4<f32>| {
            embedder
                .embed(images.view())
                .map_err(|e| Error::InvalidConfig {
                    name: "KnnMonitor",
                    reason: format!("embedding the probe set: {e}"),
                })
        };
        let (bank, queries) = (embed(&self.bank)?, embed(&self.queries)?);
        knn_accuracy(
            bank.view(),
            &self.bank_labels,
            queries.view(),
            &self.query_labels,
            self.k,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    /// The vote by hand: query (1, 0.1); bank rows sorted by cosine similarity to it are b0 (label 0),
    /// b1 (label 1), b2 (label 1), b3 (label 0).
    #[test]
    fn votes_worked_by_hand() {
        let bank = array![[1.0f32, 0.0], [1.0, 0.3], [1.0, 0.6], [0.0, 1.0]];
        let labels = [0, 1, 1, 0];
        let q = array![[1.0f32, 0.1]];
        // k = 1: b0 → 0.
        assert_eq!(
            knn_accuracy(bank.view(), &labels, q.view(), &[0], 1).unwrap(),
            1.0
        );
        // k = 3: b0, b1, b2 → 1 wins two to one.
        assert_eq!(
            knn_accuracy(bank.view(), &labels, q.view(), &[1], 3).unwrap(),
            1.0
        );
        // k = 2: one vote each (b0 for 0, b1 for 1); the tie goes to the larger similarity, b0's (0.995 > 0.982).
        assert_eq!(
            knn_accuracy(bank.view(), &labels, q.view(), &[0], 2).unwrap(),
            1.0
        );
        // k = 4: two votes each; label 0 sums 0.995 + 0.0995 = 1.09, label 1 sums 0.982 + 0.905 = 1.89.
        assert_eq!(
            knn_accuracy(bank.view(), &labels, q.view(), &[1], 4).unwrap(),
            1.0
        );
        // Scaling a row changes nothing (cosine).
        let scaled = &bank * &array![[5.0f32], [0.1], [2.0], [9.0]];
        assert_eq!(
            knn_accuracy(scaled.view(), &labels, q.view(), &[1], 3).unwrap(),
            1.0
        );
    }

    /// Against a brute force over random data: full sort, count votes, same tie rule.
    #[test]
    fn matches_a_brute_force() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (nb, nq, d, classes) = (300, 400, 5, 4u32);
        let bank = Array2::from_shape_fn((nb, d), |_| rng.random_range(-1.0f32..1.0));
        let queries = Array2::from_shape_fn((nq, d), |_| rng.random_range(-1.0f32..1.0));
        let bl: Vec<u32> = (0..nb).map(|_| rng.random_range(0..classes)).collect();
        let ql: Vec<u32> = (0..nq).map(|_| rng.random_range(0..classes)).collect();
        for k in [1, 2, 7, 20] {
            let mut correct = 0;
            for (q, &truth) in queries.rows().into_iter().zip(&ql) {
                let cos = |b: ndarray::ArrayView1<f32>| {
                    f64::from(q.dot(&b)) / f64::from(q.dot(&q).sqrt() * b.dot(&b).sqrt())
                };
                let mut sims: Vec<(f64, u32)> = bank
                    .rows()
                    .into_iter()
                    .zip(&bl)
                    .map(|(b, &l)| (cos(b), l))
                    .collect();
                sims.sort_by(|a, b| b.0.total_cmp(&a.0));
                let mut best = (0usize, f64::MIN, u32::MAX);
                for c in 0..classes {
                    let mine: Vec<f64> =
                        sims[..k].iter().filter(|s| s.1 == c).map(|s| s.0).collect();
                    let key = (mine.len(), mine.iter().sum::<f64>());
                    if key.0 > best.0 || (key.0 == best.0 && key.1 > best.1) {
                        best = (key.0, key.1, c);
                    }
                }
                correct += usize::from(best.2 == truth);
            }
            let ours = knn_accuracy(bank.view(), &bl, queries.view(), &ql, k).unwrap();
            assert!(
                (ours - correct as f64 / nq as f64).abs() < 1e-12,
                "k = {k}: {ours} vs {}",
                correct as f64 / nq as f64
            );
        }
    }

    #[test]
    fn rejects_bad_input() {
        let bank = array![[1.0f32, 0.0], [0.0, 1.0]];
        let q = array![[1.0f32, 0.0]];
        assert!(knn_accuracy(bank.view(), &[0], q.view(), &[0], 1).is_err());
        assert!(knn_accuracy(bank.view(), &[0, 1], q.view(), &[0], 0).is_err());
        assert!(knn_accuracy(bank.view(), &[0, 1], q.view(), &[0], 3).is_err());
        let zero = array![[0.0f32, 0.0]];
        assert!(knn_accuracy(bank.view(), &[0, 1], zero.view(), &[0], 1).is_err());
        let nan = array![[f32::NAN, 0.0]];
        assert!(knn_accuracy(bank.view(), &[0, 1], nan.view(), &[0], 1).is_err());
        let img = Array4::<f32>::zeros((2, 1, 4, 4));
        assert!(KnnMonitor::new((img.clone(), vec![0, 1]), (img.clone(), vec![0]), 1, 1).is_err());
        assert!(
            KnnMonitor::new((img.clone(), vec![0, 1]), (img.clone(), vec![0, 1]), 3, 1).is_err()
        );
        assert!(
            KnnMonitor::new((img.clone(), vec![0, 1]), (img.clone(), vec![0, 1]), 1, 0).is_err()
        );
        let other = Array4::<f32>::zeros((2, 3, 4, 4));
        assert!(KnnMonitor::new((img.clone(), vec![0, 1]), (other, vec![0, 1]), 1, 1).is_err());
        assert!(KnnMonitor::new((img.clone(), vec![0, 1]), (img, vec![0, 1]), 2, 1).is_ok());
    }
}
