//! Mixed precision: the arithmetic of convolutions and matrix products in bfloat16, with `f32` master weights,
//! `f32` batch norm (statistics, running statistics) and an `f32` loss.
//!
//! A training step under [`Precision::Bf16`] runs the forward pass on a copy of the model whose weights are
//! cast to bf16 ([`Precision::cast_model`]); the cast is an operation of the autodiff graph, so the backward
//! pass brings `f32` gradients to the `f32` weights the optimizer updates, as PyTorch's autocast does. Batch
//! norm layers are not cast: they take bf16 activations, compute in `f32` and give bf16 back (`shard`), so
//! their running statistics stay `f32`. NT-Xent casts the embeddings to `f32` first. Without loss scaling:
//! bf16 has `f32`'s exponent range, so gradients do not underflow as they would in f16.
//!
//! Where it pays: GPUs with bf16 tensor cores. On the CPU backend (`flex`) it is correct but slower (the CPU
//! kernels are `f32` ones; other types take Burn's generic path).

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::{Error, Result};

/// The arithmetic precision of a network's forward pass (weights, optimizer and reductions stay `f32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Precision {
    /// Everything in `f32`.
    #[default]
    F32,
    /// Convolutions, matrix products and element-wise layers in bfloat16; batch norm and the loss in `f32`.
    Bf16,
}

impl Precision {
    /// The float type activations are computed in.
    pub fn dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::Bf16 => FloatDType::BF16,
        }
    }

    /// An error unless `device` computes in this precision.
    pub fn check(self, device: &Device) -> Result<()> {
        match self == Self::F32 || device.supports_dtype(self.dtype()) {
            true => Ok(()),
            false => Err(Error::InvalidConfig {
                name: "precision",
                reason: format!("{self}: the device {device:?} has no arithmetic in this type"),
            }),
        }
    }

    /// The copy of `model` a forward pass in this precision runs: float parameters cast, except those inside a
    /// Burn `BatchNorm` (see the module documentation). The identity for [`Precision::F32`]. On an autodiff
    /// device the casts are recorded, so gradients of a loss computed with the copy reach `model`'s own
    /// parameters, in `f32`. Running statistics are shared between a module and its copies in Burn: those of
    /// batch norm stay `f32`; those of another layer of a user's (a `RunningState` outside a `BatchNorm`) would
    /// be cast in the original too.
    pub fn cast_model<M: Module>(self, model: M) -> M {
        match self {
            Self::F32 => model,
            Self::Bf16 => model.map(&mut CastParams {
                to: self.dtype(),
                containers: Vec::new(),
            }),
        }
    }

    /// `x` in this precision's activation type (unchanged when it has it already).
    pub fn cast_input<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        x.cast(self.dtype())
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            _ => Err(Error::InvalidConfig {
                name: "precision",
                reason: format!("{s:?}: expected f32 or bf16"),
            }),
        }
    }
}

/// Casts every float parameter but batch norm's.
struct CastParams {
    to: FloatDType,
    /// The containers of the field being visited, outermost first (Burn names each field's container as it
    /// enters the field, and leaves it after).
    containers: Vec<String>,
}

impl ModuleMapper for CastParams {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.containers.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.containers.iter().any(|c| c == "Struct:BatchNorm") {
            return param;
        }
        let to = self.to;
        param.map(|t| t.cast(to))
    }
}

/// `f(x)` computed in `f32` and given back in `x`'s float type (batch norm under mixed precision).
pub(crate) fn in_f32<const D: usize>(
    xs: Vec<Tensor<D>>,
    f: impl FnOnce(Vec<Tensor<D>>) -> Vec<Tensor<D>>,
) -> Vec<Tensor<D>> {
    let Some(dtype) = xs.first().map(|x| x.dtype()).filter(|&d| d != DType::F32) else {
        return f(xs);
    };
    let ys = f(xs.into_iter().map(|x| x.cast(FloatDType::F32)).collect());
    ys.into_iter().map(|y| y.cast(dtype)).collect()
}

/// [`in_f32`] of one tensor.
pub(crate) fn in_f32_one<const D: usize>(
    x: Tensor<D>,
    f: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    match x.dtype() {
        DType::F32 => f(x),
        dtype => f(x.cast(FloatDType::F32)).cast(dtype),
    }
}
