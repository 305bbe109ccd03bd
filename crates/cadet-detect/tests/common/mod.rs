//! A small deterministic embedder for the tests: 4 × 4 average pooling, a fixed random projection, tanh.
#![allow(dead_code)]

use cadet_core::Embedder;
use ndarray::{Array2, ArrayView4};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

pub struct PoolProject {
    pub weights: Array2<f32>,
    pub name: String,
}

impl PoolProject {
    /// For 3-channel images whose side is a multiple of 4, `dim` outputs.
    pub fn new(side: usize, dim: usize, seed: u64) -> Self {
        let inputs = 3 * (side / 4) * (side / 4);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let weights = Array2::from_shape_fn((dim, inputs), |_| {
            let v: f32 = StandardNormal.sample(&mut rng);
            v / (inputs as f32).sqrt()
        });
        Self {
            weights,
            name: "pool-project".into(),
        }
    }
}

impl Embedder for PoolProject {
    fn dim(&self) -> usize {
        self.weights.nrows()
    }
    fn embed(&self, images: ArrayView4<'_, f32>) -> cadet_core::Result<Array2<f32>> {
        let (n, c, h, w) = images.dim();
        let (ph, pw) = (h / 4, w / 4);
        let mut out = Array2::<f32>::zeros((n, self.dim()));
        for i in 0..n {
            let pooled: Vec<f32> = (0..c * ph * pw)
                .map(|k| {
                    let (ch, y, x) = (k / (ph * pw), (k / pw) % ph, k % pw);
                    let mut s = 0.0;
                    for dy in 0..4 {
                        for dx in 0..4 {
                            s += images[[i, ch, y * 4 + dy, x * 4 + dx]];
                        }
                    }
                    s / 16.0 - 0.5
                })
                .collect();
            for (o, row) in out.row_mut(i).iter_mut().zip(self.weights.rows()) {
                *o = (row.iter().zip(&pooled).map(|(a, b)| a * b).sum::<f32>() * 3.0).tanh() + 0.05;
            }
        }
        Ok(out)
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Re-signs a calibration file's text after an edit, as someone editing it on purpose would: the checksum is
/// the SHA-256 of the compact JSON with an empty checksum field, which is the file with that field emptied.
pub fn resign(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let start = text.find("\"checksum\":\"").unwrap() + "\"checksum\":\"".len();
    let end = start + text[start..].find('"').unwrap_or(text.len() - start);
    let plain = format!("{}{}", &text[..start], &text[end..]);
    let digest: String = Sha256::digest(plain.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}{digest}{}", &text[..start], &text[end..])
}
