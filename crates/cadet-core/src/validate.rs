//! Input checks shared by the crates: finite, non-empty, consistent shapes.

use ndarray::{ArrayView2, ArrayViewD};

use crate::{Error, Result};

/// Checks that a slice is non-empty and holds only finite values.
pub fn finite_slice(what: &'static str, values: &[f64]) -> Result<()> {
    if values.is_empty() {
        return Err(Error::EmptyInput { what });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::NonFinite {
            what,
            index: vec![i],
            value: values[i],
        }),
        None => Ok(()),
    }
}

/// Checks that an array is non-empty and holds only finite values.
pub fn finite_array(what: &'static str, values: ArrayViewD<'_, f32>) -> Result<()> {
    if values.is_empty() {
        return Err(Error::EmptyInput { what });
    }
    // A flat scan (fast path on contiguous data); the index is worked out only for the offending element.
    let first_bad = match values.as_slice_memory_order() {
        Some(s) if values.is_standard_layout() => s.iter().position(|v| !v.is_finite()),
        _ => values.iter().position(|v| !v.is_finite()),
    };
    match first_bad {
        Some(flat) => {
            let mut index = vec![0; values.ndim()];
            let mut rest = flat;
            for (slot, &len) in index.iter_mut().zip(values.shape()).rev() {
                *slot = rest % len;
                rest /= len;
            }
            let value = values[index.as_slice()];
            Err(Error::NonFinite {
                what,
                index,
                value: value.into(),
            })
        }
        None => Ok(()),
    }
}

/// Checks that a matrix of samples (one per row) is non-empty, finite, and has `dim` columns when given.
pub fn samples(what: &'static str, x: ArrayView2<'_, f32>, dim: Option<usize>) -> Result<()> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(Error::EmptyInput { what });
    }
    if let Some(expected) = dim
        && x.ncols() != expected
    {
        return Err(Error::DimensionMismatch {
            what,
            expected,
            got: x.ncols(),
        });
    }
    finite_array(what, x.into_dyn())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn reports_first_non_finite_element() {
        let x = array![[1.0f32, 2.0, 3.0], [4.0, f32::NAN, f32::INFINITY]];
        match samples("x", x.view(), None) {
            Err(Error::NonFinite { index, .. }) => assert_eq!(index, vec![1, 1]),
            other => panic!("unexpected {other:?}"),
        }
        // A transposed (non-standard) view reports the index in its own logical order.
        match samples("xt", x.t(), None) {
            Err(Error::NonFinite { index, value, .. }) => {
                assert_eq!(index, vec![1, 1]);
                assert!(value.is_nan());
            }
            other => panic!("unexpected {other:?}"),
        }
        let y = array![[1.0f32, 2.0], [3.0, f32::NEG_INFINITY]];
        assert!(
            matches!(samples("y", y.t(), None), Err(Error::NonFinite { index, .. }) if index == vec![1, 1])
        );
        assert!(matches!(
            finite_slice("s", &[0.0, f64::NEG_INFINITY]),
            Err(Error::NonFinite { index, .. }) if index == vec![1]
        ));
    }

    #[test]
    fn rejects_empty_and_wrong_width() {
        let empty = ndarray::Array2::<f32>::zeros((0, 3));
        assert!(matches!(
            samples("x", empty.view(), None),
            Err(Error::EmptyInput { .. })
        ));
        let x = ndarray::Array2::<f32>::zeros((2, 3));
        assert!(matches!(
            samples("x", x.view(), Some(4)),
            Err(Error::DimensionMismatch {
                expected: 4,
                got: 3,
                ..
            })
        ));
        assert!(finite_slice("s", &[]).is_err());
    }
}
