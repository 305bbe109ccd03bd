//! NT-Xent, SimCLR's normalised temperature-scaled cross-entropy.

use burn::prelude::*;
use burn::tensor::FloatDType;
use burn::tensor::activation::log_softmax;

/// NT-Xent over `2N` views: `z1[i]` and `z2[i]` are the two views of image `i`. Each view's positive is its
/// sibling, its negatives the other `2N − 2` views; similarities are cosines divided by `temperature`. Returns
/// the mean over the `2N` views of `−log softmax(sim)[positive]` (the symmetric form of SimCLR's NT-Xent), a scalar.
pub fn nt_xent(z1: Tensor<2>, z2: Tensor<2>, temperature: f64) -> Tensor<1> {
    // In f32 whatever the embeddings' precision (mixed precision: the softmax's sums need f32's digits).
    let (z1, z2) = (z1.cast(FloatDType::F32), z2.cast(FloatDType::F32));
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
    // Masks made by tensor operations (no 2n × 2n matrix uploaded per step; at most two index vectors of n,
    // on backends that build ranges on the host): a view is never its own negative, −∞ (a large finite value)
    // on the diagonal; the positive of view i is view (i + n) mod 2n.
    let m = 2 * n;
    let own = Tensor::<2, Bool>::diag_mask([m, m], 0, &device).bool_not();
    let log_p = log_softmax(sim.mask_fill(own, -1e9), 1);
    let sibling = Tensor::cat(
        vec![
            Tensor::<1, Int>::arange(n as i64..m as i64, &device),
            Tensor::<1, Int>::arange(0..n as i64, &device),
        ],
        0,
    );
    log_p.gather(1, sibling.unsqueeze_dim(1)).sum().neg() / (m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NT-Xent as written before, with host-made masks: an independent formula to check against.
    fn with_masks(z1: Tensor<2>, z2: Tensor<2>, temperature: f64) -> Tensor<1> {
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
        let m = 2 * n;
        let mut diag = vec![0.0f32; m * m];
        let mut positives = vec![0.0f32; m * m];
        for i in 0..m {
            diag[i * m + i] = -1e9;
            positives[i * m + (i + n) % m] = 1.0;
        }
        let diag = Tensor::<2>::from_data(TensorData::new(diag, [m, m]), &device);
        let positives = Tensor::<2>::from_data(TensorData::new(positives, [m, m]), &device);
        (log_softmax(sim + diag, 1) * positives).sum().neg() / (m as f64)
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn same_loss_and_gradients_as_the_masked_formula() {
        let device = Device::flex().autodiff();
        for (n, d, temperature) in [(1, 3, 0.1), (4, 8, 0.5), (13, 5, 0.07)] {
            let draw = |seed: u64| {
                use rand::{RngExt, SeedableRng};
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let v: Vec<f32> = (0..n * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                Tensor::<2>::from_data(TensorData::new(v, [n, d]), &device).require_grad()
            };
            let (a1, a2) = (draw(1), draw(2));
            let (b1, b2) = (
                a1.clone().detach().require_grad(),
                a2.clone().detach().require_grad(),
            );
            let ours = nt_xent(a1.clone(), a2.clone(), temperature);
            let theirs = with_masks(b1.clone(), b2.clone(), temperature);
            let (l1, l2) = (values(ours.clone())[0], values(theirs.clone())[0]);
            assert!(
                (l1 - l2).abs() <= 1e-5 * l2.abs().max(1.0),
                "n {n}: {l1} vs {l2}"
            );
            let (g1, g2) = (ours.backward(), theirs.backward());
            for (x, y) in [(&a1, &b1), (&a2, &b2)] {
                let (gx, gy) = (values(x.grad(&g1).unwrap()), values(y.grad(&g2).unwrap()));
                for (p, q) in gx.iter().zip(&gy) {
                    assert!((p - q).abs() <= 1e-6, "n {n}: gradient {p} vs {q}");
                }
            }
        }
    }

    #[test]
    fn hand_case() {
        // Two images, orthogonal embeddings, each view equal to its sibling: every row's positive has cosine 1,
        // its two negatives cosine 0. Loss = −log(e^{1/T} / (e^{1/T} + 2)).
        let device = Device::flex();
        let z1 = Tensor::<2>::from_data([[1.0, 0.0], [0.0, 1.0]], &device);
        let loss = values(nt_xent(z1.clone(), z1, 0.5))[0];
        let e = (2.0f64).exp();
        let expected = -(e / (e + 2.0)).ln();
        assert!(
            (f64::from(loss) - expected).abs() < 1e-6,
            "{loss} vs {expected}"
        );
    }
}
