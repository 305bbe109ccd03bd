//! Deep nearest neighbours (Sun et al., 2022): distance to the k-th nearest training feature, on unit features.

use cadet_core::linalg::{Threads, matmul, normalize_rows};
use ndarray::{Array2, ArrayView2, Axis};

use super::features;
use crate::detector::{ClassifierOutputs, Detector};
use crate::{Error, Result};

/// Anomaly score: the Euclidean distance between the unit-normalised test feature and its `k`-th nearest
/// unit-normalised training feature.
#[derive(Debug, Clone)]
pub struct Knn {
    train: Array2<f32>,
    k: usize,
}

fn unit(f: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    Ok(normalize_rows("features", f)?)
}

impl Knn {
    /// Stores the normalised training features; `1 ≤ k ≤` their number (the paper's KNN: k = 50 on CIFAR).
    pub fn fit(train: ArrayView2<'_, f32>, k: usize) -> Result<Self> {
        cadet_core::validate::samples("training features", train, None)?;
        if k == 0 || k > train.nrows() {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "k",
                reason: format!("need 1 ≤ k ≤ {}, got {k}", train.nrows()),
            }));
        }
        Ok(Self {
            train: unit(train)?,
            k,
        })
    }
}

impl Detector for Knn {
    type Input<'a> = ClassifierOutputs<'a>;
    fn name(&self) -> &str {
        "KNN"
    }
    fn anomaly_scores(&self, input: ClassifierOutputs<'_>) -> Result<Vec<f64>> {
        let test = unit(features(&input, self.train.ncols(), "KNN")?)?;
        let mut out = Vec::with_capacity(test.nrows());
        // Blocks of test rows keep the similarity matrix small.
        for block in test.axis_chunks_iter(Axis(0), 256) {
            let sims = matmul(block, self.train.t(), Threads::Rayon)?;
            for row in sims.rows() {
                let mut r = row.to_vec();
                let (_, kth, _) = r.select_nth_unstable_by(self.k - 1, |a, b| b.total_cmp(a));
                out.push((2.0 - 2.0 * f64::from(*kth)).max(0.0).sqrt());
            }
        }
        Ok(out)
    }
}
