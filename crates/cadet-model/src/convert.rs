//! The one ndarray ↔ Burn conversion pair. Arrays of any memory layout (column-major, permuted axes, sliced
//! with an offset) go to the device in logical (row-major) order, and tensors come back as standard-layout
//! arrays: reading an array's raw buffer directly would silently scramble every non-standard one.

use burn::prelude::*;
use ndarray::{Array, ArrayBase, Data, Dim, Dimension, Ix};

use crate::{Error, Result};

/// The values of `array` in logical (row-major) order, reusing the buffer of an owned standard-layout array.
fn logical_values<S, const D: usize>(array: ArrayBase<S, Dim<[Ix; D]>>) -> Vec<f32>
where
    S: Data<Elem = f32>,
    Dim<[Ix; D]>: Dimension,
{
    match array.as_slice() {
        Some(values) => values.to_vec(),
        // Any other layout: the iterator walks the logical order.
        None => array.iter().copied().collect(),
    }
}

fn shape<const D: usize>(dims: &[usize]) -> [usize; D] {
    let mut shape = [0; D];
    shape.copy_from_slice(dims);
    shape
}

/// An owned array on `device`, its values in logical order whatever its layout (the buffer is moved, not
/// copied, when the array is in standard layout and owns exactly its elements).
pub fn array_to_tensor<const D: usize>(
    array: Array<f32, Dim<[Ix; D]>>,
    device: &Device,
) -> Tensor<D>
where
    Dim<[Ix; D]>: Dimension,
{
    let dims: [usize; D] = shape(array.shape());
    let len = array.len();
    let values = if array.is_standard_layout() {
        let (mut raw, offset) = array.into_raw_vec_and_offset();
        match offset {
            Some(0) if raw.len() == len => raw,
            Some(start) => {
                raw.truncate(start + len);
                raw.drain(..start);
                raw
            }
            None => Vec::new(),
        }
    } else {
        logical_values(array)
    };
    Tensor::from_data(TensorData::new(values, dims), device)
}

/// A borrowed array (any layout, e.g. a slice or a transposed view) on `device`, in logical order.
pub fn view_to_tensor<S, const D: usize>(
    array: &ArrayBase<S, Dim<[Ix; D]>>,
    device: &Device,
) -> Tensor<D>
where
    S: Data<Elem = f32>,
    Dim<[Ix; D]>: Dimension,
{
    let dims: [usize; D] = shape(array.shape());
    Tensor::from_data(TensorData::new(logical_values(array.view()), dims), device)
}

/// A tensor's values back on the host as a standard-layout array (converted to `f32` when the backend keeps
/// another float type).
pub fn tensor_to_array<const D: usize>(tensor: Tensor<D>) -> Result<Array<f32, Dim<[Ix; D]>>>
where
    Dim<[Ix; D]>: Dimension,
{
    let dims = tensor.dims();
    let values = tensor.into_data().convert::<f32>().try_into_vec::<f32>()?;
    Array::from_shape_vec(ndarray::IxDyn(&dims), values)
        .and_then(|a| a.into_dimensionality())
        .map_err(Error::ReadbackShape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array4, ShapeBuilder, s};

    fn reference() -> Array4<f32> {
        Array4::from_shape_fn((3, 2, 4, 5), |(n, c, y, x)| {
            (n * 1000 + c * 100 + y * 10 + x) as f32
        })
    }

    fn back(t: Tensor<4>) -> Array4<f32> {
        tensor_to_array(t).unwrap()
    }

    #[test]
    fn every_layout_goes_over_in_logical_order() {
        let device = Device::flex();
        let a = reference();
        let expected = back(array_to_tensor(a.clone(), &device));
        assert_eq!(expected, a);
        // Column-major.
        let mut f = Array4::<f32>::zeros((3, 2, 4, 5).f());
        f.assign(&a);
        assert!(!f.is_standard_layout());
        assert_eq!(back(view_to_tensor(&f, &device)), a);
        assert_eq!(back(array_to_tensor(f, &device)), a);
        // Permuted axes: stored as (N, H, W, C), seen as (N, C, H, W).
        let nhwc = a
            .view()
            .permuted_axes([0, 2, 3, 1])
            .as_standard_layout()
            .into_owned();
        let p = nhwc.permuted_axes([0, 3, 1, 2]);
        assert_eq!(p, a);
        assert_eq!(back(view_to_tensor(&p, &device)), a);
        assert_eq!(back(array_to_tensor(p, &device)), a);
        // Sliced with an offset, owned: standard layout, but the buffer holds more than the elements.
        let big = Array4::from_shape_fn((5, 2, 4, 5), |(n, c, y, x)| {
            (n as f32 - 1.0) * 1000.0 + (c * 100 + y * 10 + x) as f32
        });
        let sliced = big.slice_move(s![1..4, .., .., ..]);
        assert!(sliced.is_standard_layout());
        assert_eq!(sliced, a);
        assert_eq!(back(view_to_tensor(&sliced, &device)), a);
        assert_eq!(back(array_to_tensor(sliced, &device)), a);
        // A strided view.
        let wide = Array4::from_shape_fn((3, 2, 4, 10), |(n, c, y, x)| {
            if x % 2 == 0 {
                (n * 1000 + c * 100 + y * 10 + x / 2) as f32
            } else {
                -1.0
            }
        });
        let strided = wide.slice(s![.., .., .., ..;2]);
        assert_eq!(back(view_to_tensor(&strided, &device)), a);
        assert_eq!(back(array_to_tensor(strided.to_owned(), &device)), a);
        // Empty.
        let empty = Array4::<f32>::zeros((0, 2, 4, 5));
        assert_eq!(back(array_to_tensor(empty, &device)).dim(), (0, 2, 4, 5));
    }
}
