//! NT-Xent, SimCLR's normalised temperature-scaled cross-entropy.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// NT-Xent over `2N` views: `z1[i]` and `z2[i]` are the two views of image `i`. Each view's positive is its
/// sibling, its negatives the other `2N − 2` views; similarities are cosines divided by `temperature`. Returns
/// the mean over the `2N` views of `−log softmax(sim)[positive]` (the symmetric form of SimCLR's NT-Xent), a scalar.
pub fn nt_xent(z1: Tensor<2>, z2: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [n, _] = z1.dims();
    let device = z1.device();
    let z = Tensor::cat(vec![z1, z2], 0);
    let norm = z
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    let z = z / norm;
    let sim = z.clone().matmul(z.transpose()) / temperature;
    // A view is never its own negative: −∞ (a large finite value) on the diagonal.
    let m = 2 * n;
    let mut diag = vec![0.0f32; m * m];
    let mut positives = vec![0.0f32; m * m];
    for i in 0..m {
        diag[i * m + i] = -1e9;
        positives[i * m + (i + n) % m] = 1.0;
    }
    let diag = Tensor::<2>::from_data(TensorData::new(diag, [m, m]), &device);
    let positives = Tensor::<2>::from_data(TensorData::new(positives, [m, m]), &device);
    let log_p = log_softmax(sim + diag, 1);
    (log_p * positives).sum().neg() / (m as f64)
}
