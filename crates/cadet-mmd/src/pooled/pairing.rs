//! Eq. 4's pairing sums `Σ_i k(X_i, Y_i)` for many splits at once, from explicit features.
//!
//! Each split pairs `n` random rows with `n` others, so evaluating its dots one split at a time streams the
//! whole feature matrix from memory per split. Instead, the pairs of all splits of a batch are bucketed by the
//! row blocks they touch; each bucket's two blocks stay in cache while all its dots are computed. The partial
//! sums are then added in bucket order, so the result does not depend on the number of threads.

use cadet_core::linalg::dot;
use ndarray::Array2;
use rayon::prelude::*;

use super::row;

/// Rows per block: two blocks of 2048-d `f32` rows take 2 MiB, within a core's L2 cache.
fn block_rows(dim: usize) -> usize {
    ((1 << 20) / (4 * dim.max(1))).clamp(8, 1024)
}

/// For each split (first `n` indices paired with the next `n`), `Σ_i ⟨φ_{p_i}, φ_{p_{n+i}}⟩`.
pub(super) fn pairing_sums(phi: &Array2<f32>, perms: &[Vec<u32>], n: usize) -> Vec<f64> {
    let block = block_rows(phi.ncols());
    let blocks = phi.nrows().div_ceil(block);
    // Counting sort of (split, a, b) by bucket (block of a, block of b) with a's block ≤ b's block.
    let bucket_of = |a: u32, b: u32| {
        let (ba, bb) = (a as usize / block, b as usize / block);
        ba.min(bb) * blocks + ba.max(bb)
    };
    let mut starts = vec![0usize; blocks * blocks + 1];
    for p in perms {
        for i in 0..n {
            starts[bucket_of(p[i], p[n + i]) + 1] += 1;
        }
    }
    for b in 0..blocks * blocks {
        starts[b + 1] += starts[b];
    }
    let mut fill = starts.clone();
    let mut pairs = vec![(0u32, 0u32, 0u32); starts[blocks * blocks]];
    for (k, p) in perms.iter().enumerate() {
        for i in 0..n {
            let (a, b) = (p[i], p[n + i]);
            let slot = &mut fill[bucket_of(a, b)];
            pairs[*slot] = (k as u32, a, b);
            *slot += 1;
        }
    }
    // Dots bucket by bucket (buckets in parallel), then a sequential sum in sorted order.
    let dots: Vec<f64> = (0..blocks * blocks)
        .into_par_iter()
        .flat_map_iter(|b| {
            pairs[starts[b]..starts[b + 1]]
                .iter()
                .map(|&(_, a, c)| dot(row(phi, a), row(phi, c)))
        })
        .collect();
    let mut sums = vec![0.0f64; perms.len()];
    for (&(k, _, _), d) in pairs.iter().zip(dots) {
        sums[k as usize] += d;
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_direct_sums() {
        // 3000 rows of dimension 4: many blocks of 1024 rows... use a tall matrix so buckets differ.
        let phi = Array2::from_shape_fn((2500, 300), |(i, j)| ((i * 13 + j * 7) % 17) as f32 - 8.0);
        let perms: Vec<Vec<u32>> = (0..5)
            .map(|k| crate::sampling::permutation(4, k, 2500))
            .collect();
        let n = 1250;
        let got = pairing_sums(&phi, &perms, n);
        for (p, g) in perms.iter().zip(got) {
            let expected: f64 = (0..n)
                .map(|i| dot(row(&phi, p[i]), row(&phi, p[n + i])))
                .sum();
            assert!(
                (g - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                "{g} vs {expected}"
            );
        }
    }
}
