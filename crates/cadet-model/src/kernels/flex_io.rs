//! burn-flex tensors as `f32` slices and back, for the CPU kernels ([`conv`](crate::kernels::conv) and
//! `batch_norm`), whose callers have checked the device and the dtype before the backend is reached.

use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::{Shape, TensorData};

/// Whether `device` is burn-flex's, with or without autodiff.
pub(crate) fn on_flex(device: Device) -> bool {
    device.inner() == Device::flex()
}

/// `t` with a contiguous layout (a cheap clone when it has one already).
pub(crate) fn contiguous(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

/// The values of a contiguous `f32` tensor.
pub(crate) fn floats(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("a contiguous f32 tensor: the kernels' callers check the dtype before the backend is called")
}

/// A tensor of `shape` holding `data`.
pub(crate) fn tensor(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}
