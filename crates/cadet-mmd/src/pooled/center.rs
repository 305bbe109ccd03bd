//! Centring on the pooled mean, in `f64`, streaming row by row.

use cadet_core::{Error, Result, validate};
use ndarray::Array2;

/// Features minus their column means; standard layout.
pub(super) fn center_features(phi: Array2<f32>) -> Array2<f32> {
    let mut phi = phi.as_standard_layout().into_owned();
    let n = phi.nrows() as f64;
    let means: Vec<f64> = column_sums(&phi).into_iter().map(|s| s / n).collect();
    for mut r in phi.rows_mut() {
        for (v, &mu) in r.iter_mut().zip(&means) {
            *v = (f64::from(*v) - mu) as f32;
        }
    }
    phi
}

/// `HKH` with `H = I − 11ᵀ/N`: `K_ij − r_i − r_j + μ` with row means `r` and grand mean `μ`; standard layout.
pub(super) fn center_gram(k: Array2<f32>) -> Result<Array2<f32>> {
    let n = k.nrows();
    if k.ncols() != n {
        return Err(Error::ShapeMismatch {
            what: "pooled Gram matrix",
            expected: vec![n, n],
            got: k.shape().to_vec(),
        });
    }
    validate::finite_array("pooled Gram matrix", k.view().into_dyn())?;
    let mut k = k.as_standard_layout().into_owned();
    let r: Vec<f64> = row_sums(&k).into_iter().map(|s| s / n as f64).collect();
    let mu = r.iter().sum::<f64>() / n as f64;
    for (i, mut row) in k.rows_mut().into_iter().enumerate() {
        for (v, &rj) in row.iter_mut().zip(&r) {
            *v = (f64::from(*v) - r[i] - rj + mu) as f32;
        }
    }
    Ok(k)
}

/// Column sums in `f64`.
pub(super) fn column_sums(a: &Array2<f32>) -> Vec<f64> {
    let mut sums = vec![0.0f64; a.ncols()];
    for r in a.rows() {
        for (s, &v) in sums.iter_mut().zip(r) {
            *s += f64::from(v);
        }
    }
    sums
}

/// Row sums in `f64`.
pub(super) fn row_sums(a: &Array2<f32>) -> Vec<f64> {
    a.rows()
        .into_iter()
        .map(|r| r.iter().map(|&v| f64::from(v)).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn centred_features_and_gram_have_zero_sums() {
        let phi = array![[1.0f32, 2.0], [3.0, -1.0], [0.5, 0.5]];
        let c = center_features(phi.clone());
        assert!(column_sums(&c).iter().all(|s| s.abs() < 1e-6));
        let k = phi.dot(&phi.t());
        let kc = center_gram(k).unwrap();
        assert!(row_sums(&kc).iter().all(|s| s.abs() < 1e-5));
        // HKH equals the Gram matrix of the centred features.
        let expected = c.dot(&c.t());
        for (a, b) in kc.iter().zip(expected.iter()) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
