//! Dense matrix products for the statistics: one safe entry point over the `gemm` crate, whose AVX-512/AVX2
//! kernels and Rayon threading make it the fastest pure-Rust GEMM on the CPUs this runs on.
// unsafe: gemm's raw-pointer API and the feature-detected SIMD dot products (SAFETY-commented blocks).
#![allow(unsafe_code)]

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

use crate::{Error, Result};

/// Threading of a matrix product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// On the calling thread only (for callers that already run products in parallel).
    Single,
    /// On Rayon's current thread pool.
    Rayon,
}

/// `a · b` in `f32`, for views of any layout (pass `b.t()` for `a · bᵀ`).
pub fn matmul(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    threads: Threads,
) -> Result<Array2<f32>> {
    let mut c = Array2::<f32>::zeros((a.nrows(), b.ncols()));
    product(
        a,
        b,
        c.view_mut(),
        false,
        threads,
        "matmul: rows of the right factor",
    )?;
    Ok(c)
}

/// `c = a · b`, or `c += a · b` with `accumulate`, in `f32`, for views of any layout (`c` too: a block of a larger
/// matrix, or a transposed view, is written in place). The products of the convolutions run through here.
pub fn matmul_into(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    c: ArrayViewMut2<'_, f32>,
    accumulate: bool,
    threads: Threads,
) -> Result<()> {
    product(
        a,
        b,
        c,
        accumulate,
        threads,
        "matmul_into: rows of the right factor",
    )
}

/// The product behind [`matmul`] and [`matmul_into`]; `inner` is the caller's message for factors that do not
/// fit.
fn product(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    mut c: ArrayViewMut2<'_, f32>,
    accumulate: bool,
    threads: Threads,
    inner: &'static str,
) -> Result<()> {
    let (m, k) = a.dim();
    let (kb, n) = b.dim();
    let mismatch = |what: &'static str, expected, got| Error::DimensionMismatch {
        what,
        expected,
        got,
    };
    if k != kb {
        return Err(mismatch(inner, k, kb));
    }
    let (cm, cn) = c.dim();
    if cm != m {
        return Err(mismatch("matmul_into: rows of the product", m, cm));
    }
    if cn != n {
        return Err(mismatch("matmul_into: columns of the product", n, cn));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return Ok(());
    }
    let parallelism = match threads {
        Threads::Single => gemm::Parallelism::None,
        Threads::Rayon => gemm::Parallelism::Rayon(0),
    };
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: `a`, `b` and `c` are live views whose pointers and element strides describe m × k, k × n and
    // m × n matrices, as gemm requires; `c` is borrowed mutably, so it aliases neither factor. With
    // `read_dst = accumulate` gemm writes `c = alpha · c + beta · a · b` with alpha = 1, or `c = beta · a · b`
    // without reading `c`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// `⟨a, b⟩` in `f32` with 16 independent accumulators, returned as `f64`. On x86-64 it runs the AVX-512 or
/// AVX2 + FMA build of the same loop when the CPU has them (detected once at run time).
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static LEVEL: OnceLock<u8> = OnceLock::new();
        let level = *LEVEL.get_or_init(|| {
            if is_x86_feature_detected!("avx512f") {
                2
            } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                1
            } else {
                0
            }
        });
        // SAFETY: each variant is called only when the CPU reports the features it was compiled for.
        unsafe {
            match level {
                2 => return dot_avx512(a, b),
                1 => return dot_avx2(a, b),
                _ => {}
            }
        }
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn dot_avx512(a: &[f32], b: &[f32]) -> f64 {
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f64 {
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    let tail: f64 = ra
        .iter()
        .zip(rb)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    acc.iter().map(|&v| f64::from(v)).sum::<f64>() + tail
}

/// Rows scaled to unit Euclidean norm (norms computed in `f64`); a row of zero or non-finite norm is
/// [`Error::ZeroNorm`]. Shared by the cosine kernel and feature-space detectors.
pub fn normalize_rows(what: &'static str, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    let mut out = x.to_owned();
    for (row, mut r) in out.axis_iter_mut(Axis(0)).enumerate() {
        let norm = r
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return Err(Error::ZeroNorm { what, row });
        }
        r.mapv_inplace(|v| (f64::from(v) / norm) as f32);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::Array2;

    fn naive(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols())
                .map(|l| f64::from(a[[i, l]]) * f64::from(b[[l, j]]))
                .sum()
        })
    }

    #[test]
    fn matmul_into_writes_and_accumulates_into_any_layout() {
        let a = Array2::from_shape_fn((37, 70), |(i, j)| ((i * 31 + j * 7) % 13) as f32 - 6.0);
        let b = Array2::from_shape_fn((70, 45), |(i, j)| ((i * 17 + j * 5) % 11) as f32 * 0.25);
        let expected = naive(a.view(), b.view());
        // A transposed destination, then a block of a larger one accumulated onto ones.
        let mut ct = Array2::<f32>::from_elem((45, 37), f32::NAN);
        matmul_into(
            a.view(),
            b.view(),
            ct.view_mut().reversed_axes(),
            false,
            Threads::Single,
        )
        .unwrap();
        let mut big = Array2::<f32>::ones((40, 50));
        let block = big.slice_mut(ndarray::s![2..39, 3..48]);
        matmul_into(a.view(), b.view(), block, true, Threads::Rayon).unwrap();
        for i in 0..37 {
            for j in 0..45 {
                assert_relative_eq!(f64::from(ct[[j, i]]), expected[[i, j]], epsilon = 1e-3);
                assert_relative_eq!(
                    f64::from(big[[i + 2, j + 3]]),
                    expected[[i, j]] + 1.0,
                    epsilon = 1e-3
                );
            }
        }
        assert_eq!(big[[0, 0]], 1.0);
        assert_eq!(big[[39, 49]], 1.0);
        // Threading does not change a single bit (the convolutions' results must not depend on it).
        let a = Array2::from_shape_fn((300, 500), |(i, j)| {
            ((i * 7 + j * 3) % 19) as f32 * 0.37 - 3.0
        });
        let b = Array2::from_shape_fn((500, 400), |(i, j)| {
            ((i * 5 + j * 11) % 23) as f32 * 0.11 - 1.0
        });
        let mut single = Array2::<f32>::zeros((300, 400));
        let mut rayon = Array2::<f32>::zeros((300, 400));
        matmul_into(
            a.view(),
            b.view(),
            single.view_mut(),
            false,
            Threads::Single,
        )
        .unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        pool.install(|| {
            matmul_into(a.view(), b.view(), rayon.view_mut(), false, Threads::Rayon).unwrap()
        });
        assert!(
            single
                .iter()
                .zip(rayon.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
        // Shapes that do not fit are typed errors.
        let mut wrong = Array2::<f32>::zeros((37, 44));
        assert!(matches!(
            matmul_into(
                a.slice(ndarray::s![..37, ..70]),
                b.slice(ndarray::s![..70, ..45]),
                wrong.view_mut(),
                false,
                Threads::Single
            ),
            Err(Error::DimensionMismatch {
                expected: 45,
                got: 44,
                ..
            })
        ));
    }

    #[test]
    fn matches_triple_loop_for_all_layouts() {
        let a = Array2::from_shape_fn((7, 33), |(i, j)| ((i * 31 + j * 7) % 13) as f32 - 6.0);
        let b = Array2::from_shape_fn((19, 33), |(i, j)| ((i * 17 + j * 5) % 11) as f32 * 0.25);
        for threads in [Threads::Single, Threads::Rayon] {
            let c = matmul(a.view(), b.t(), threads).unwrap();
            let expected = naive(a.view(), b.t());
            for (x, y) in c.iter().zip(expected.iter()) {
                assert_relative_eq!(f64::from(*x), *y, epsilon = 1e-4);
            }
        }
        let at = a.t().to_owned();
        let c = matmul(at.t(), b.t(), Threads::Single).unwrap();
        assert_relative_eq!(
            f64::from(c[[3, 4]]),
            naive(a.view(), b.t())[[3, 4]],
            epsilon = 1e-4
        );
    }

    #[test]
    fn rejects_mismatched_inner_dimension() {
        let a = Array2::<f32>::zeros((2, 3));
        assert!(matches!(
            matmul(a.view(), a.view(), Threads::Single),
            Err(Error::DimensionMismatch {
                expected: 3,
                got: 2,
                ..
            })
        ));
    }

    #[test]
    fn dot_matches_plain_sum() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| (i % 5) as f32).collect();
        let expected: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        assert_relative_eq!(dot(&a, &b), expected, epsilon = 1e-9);
    }
}
