//! LARS (You et al., 2017) as SimCLR uses it, and SimCLR's learning-rate schedule.

use burn::module::ParamGroup;
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource};
use burn::prelude::*;

use crate::{Error, Result};

/// Configuration of [`Lars`] (SimCLR's settings: momentum 0.9, weight decay 1e-4, trust coefficient 0.001).
#[derive(Config, Debug)]
pub struct LarsConfig {
    /// Momentum.
    #[config(default = 0.9)]
    pub momentum: f64,
    /// Weight decay (added to the gradient before adaptation).
    #[config(default = 1e-4)]
    pub weight_decay: f64,
    /// Trust coefficient `η` of the layer-wise adaptation.
    #[config(default = 0.001)]
    pub trust_coefficient: f64,
}

/// LARS as google-research/simclr implements it: `g ← g + wd·w`; `lr' = lr · η‖w‖/‖g‖` (or `lr` when a norm is
/// 0); `v ← m·v + lr'·g`; `w ← w − v`. Weight decay and adaptation are off for the parameters it is built
/// without them (batch-norm and bias parameters, see [`LarsConfig::init`]).
#[derive(Clone, Debug)]
pub struct Lars {
    momentum: f64,
    weight_decay: f64,
    trust_coefficient: f64,
    adapt: bool,
}

/// Per-parameter state: the velocity.
#[derive(Clone)]
pub struct LarsState<const D: usize> {
    /// `v`.
    pub velocity: Tensor<D>,
}

/// What the LARS states read on one thread since the last [`take_loaded_states`] held: Burn's
/// `state_unflatten` cannot fail, so a loader asks here afterwards.
#[derive(Debug, Default)]
pub(crate) struct LoadedStates {
    /// Each velocity's parameter id (the state key's prefix) and shape, in the order read.
    pub(crate) shapes: Vec<(String, Vec<usize>)>,
    /// The first velocity with a NaN or infinite value: its state key, element and value.
    pub(crate) non_finite: Option<(String, usize, f32)>,
}

std::thread_local! {
    static LOADED_STATES: std::cell::RefCell<LoadedStates> =
        std::cell::RefCell::new(LoadedStates::default());
}

/// The LARS states read on this thread since the last call, forgotten: a checkpoint's optimizer state is checked
/// with it right after loading (finite values; one velocity per parameter of the model, of its shape).
pub(crate) fn take_loaded_states() -> LoadedStates {
    LOADED_STATES.with(|cell| std::mem::take(&mut *cell.borrow_mut()))
}

// Written by hand: Burn's `RecordState` derive only resolves inside burn-optim.
impl<const D: usize> RecordState for LarsState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "velocity", self.velocity.clone().into_data());
    }
    fn state_unflatten(prefix: &str, src: &mut StateSource, _device: &Device) -> Option<Self> {
        let data = src.take_tensor(prefix, "velocity")?;
        LOADED_STATES.with(|cell| {
            let mut log = cell.borrow_mut();
            log.shapes.push((prefix.to_string(), data.shape().to_vec()));
            if let Ok(values) = data.as_slice::<f32>()
                && let Some((index, &value)) =
                    values.iter().enumerate().find(|(_, v)| !v.is_finite())
            {
                log.non_finite
                    .get_or_insert_with(|| (format!("{prefix}.velocity"), index, value));
            }
        });
        // Burn passes its default device here (`ModuleOptimizer::load_record`), which in a `cuda` build is the
        // GPU even when training on the CPU, and fails without a driver. The state goes to the CPU instead;
        // Burn moves it to the parameter's device at the next step.
        Some(Self {
            velocity: Tensor::from_data(data, &Device::flex()),
        })
    }
}

impl Optimizer for Lars {
    type State<const D: usize> = LarsState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let grad = if self.adapt && self.weight_decay != 0.0 {
            grad + tensor.clone() * self.weight_decay
        } else {
            grad
        };
        let step = if self.adapt {
            // Trust ratio on the device (no host round trip): η‖w‖/‖g‖ where both norms are positive, else 1.
            let w_norm = tensor.clone().square().sum().sqrt();
            let g_norm = grad.clone().square().sum().sqrt();
            let valid = w_norm
                .clone()
                .greater_elem(0.0)
                .bool_and(g_norm.clone().greater_elem(0.0));
            let ratio = (w_norm * self.trust_coefficient) / g_norm.clamp_min(1e-30);
            let trust = ratio.ones_like().mask_where(valid, ratio);
            grad * (trust * lr).unsqueeze()
        } else {
            grad * lr
        };
        let velocity = match state {
            Some(s) => s.velocity * self.momentum + step,
            None => step,
        };
        (tensor - velocity.clone(), Some(LarsState { velocity }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        LarsState {
            velocity: state.velocity.to_device(device),
        }
    }
}

/// Parameters excluded from weight decay and adaptation: batch-norm scales and shifts, and biases.
pub(crate) const EXCLUDED_PARAMS: &str = r"(^|\.)(bn[0-9]*|bn)\.(gamma|beta)$|(^|\.)bias$";

impl LarsConfig {
    /// The optimizer for one parameter, with or without decay and adaptation.
    pub fn build(&self, adapt: bool) -> Lars {
        Lars {
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            trust_coefficient: self.trust_coefficient,
            adapt,
        }
    }

    /// A module optimizer: LARS with decay and adaptation for weights, plain momentum for batch-norm and bias
    /// parameters (parameter paths ending in `bn….gamma`, `bn….beta` or `bias`).
    pub fn init(&self) -> Result<ModuleOptimizer> {
        let excluded =
            ParamGroup::from_regex(EXCLUDED_PARAMS).map_err(|e| Error::InvalidConfig {
                name: "EXCLUDED_PARAMS",
                reason: format!("{e:?}"),
            })?;
        Ok(ModuleOptimizer::from(self.build(true)).with_group(excluded, self.build(false), None))
    }
}

/// SimCLR's schedule: linear warm-up from 0 to `base_lr` over `warmup_steps`, then cosine decay to 0 at
/// `total_steps`, iteration by iteration. Computed here rather than with Burn's schedulers, which refuse
/// learning rates above 1 (LARS uses 0.3 × batch / 256, 1.2 at batch 1024).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WarmupCosine {
    /// Peak learning rate.
    pub base_lr: f64,
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// Total steps.
    pub total_steps: u64,
}

impl WarmupCosine {
    /// SimCLR's linear scaling rule: `0.3 × batch / 256`.
    pub fn simclr_base_lr(batch_size: usize) -> f64 {
        0.3 * batch_size as f64 / 256.0
    }

    /// The learning rate at step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay = (self.total_steps.saturating_sub(self.warmup_steps)).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / decay).min(1.0);
        0.5 * self.base_lr * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}
