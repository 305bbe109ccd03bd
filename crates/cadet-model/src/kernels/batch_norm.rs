//! Batch norm on Burn's CPU backend (`flex`): in training three passes forward and two backward, for inference
//! one; a Burn backend extension, like [`conv`](crate::kernels::conv).
//!
//! Why: burn-flex 0.22.1 has no batch norm of its own, so Burn's default composes it from tensor operations
//! (two transposed copies of the activation for the statistics, then centring, scaling and shifting as
//! separate broadcasts), and its gradient the same way: about ten passes over the activation forward and
//! fifteen backward, with the transposes as full copies (issue 14's profile). Here the per-channel mean and
//! (biased) variance are summed in `f64`, one pass each, and the output is one pass; the gradient is the
//! textbook one, `dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy · x̂))`, with its two per-channel sums in one pass.
//! Results do not depend on the thread count (per-channel sums in a fixed order).

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use crate::kernels::flex_io::{contiguous, floats, on_flex, tensor};

/// `(images, channels, values per channel and image)` of an `[N, C, …]` tensor.
type Layout3 = (usize, usize, usize);

fn layout(shape: &[usize]) -> Layout3 {
    (shape[0], shape[1], shape[2..].iter().product())
}

/// Per-channel mean and biased variance, summed in `f64` (two passes: exact where `E[x²] − E[x]²` loses digits).
fn statistics(x: &[f32], (n, c, s): Layout3) -> (Vec<f32>, Vec<f32>) {
    let count = (n * s) as f64;
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let runs = || (0..n).map(move |i| &x[(i * c + ch) * s..][..s]);
            let mean = runs().flatten().map(|&v| f64::from(v)).sum::<f64>() / count;
            let var = runs()
                .flatten()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / count;
            (mean as f32, var as f32)
        })
        .unzip()
}

fn inverse_std(var: &[f32], epsilon: f64) -> Vec<f32> {
    var.iter()
        .map(|&v| (1.0 / (f64::from(v) + epsilon).sqrt()) as f32)
        .collect()
}

/// `y = γ (x − μ) / σ + β`, as `a · (x − μ) + β` per channel (not `a · x + b`, which loses digits when
/// `|μ| / σ` is large).
fn normalize(
    x: &[f32],
    l: Layout3,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    inv_std: &[f32],
) -> Vec<f32> {
    let (_, c, s) = l;
    let a: Vec<f32> = gamma.iter().zip(inv_std).map(|(g, i)| g * i).collect();
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(c * s)
        .zip(x.par_chunks(c * s))
        .for_each(|(y, x)| {
            for ch in 0..c {
                for (o, &v) in y[ch * s..][..s].iter_mut().zip(&x[ch * s..][..s]) {
                    *o = a[ch] * (v - mean[ch]) + beta[ch];
                }
            }
        });
    y
}

/// The gradients of `x`, `γ` and `β` for the output gradient `dy`.
fn gradients(
    x: &[f32],
    dy: &[f32],
    l: Layout3,
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (n, c, s) = l;
    let count = (n * s) as f64;
    // Per channel: Σ dy and Σ dy · x̂.
    let (sum_dy, sum_dy_xhat): (Vec<f64>, Vec<f64>) = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (m, is) = (mean[ch], inv_std[ch]);
            (0..n).fold((0f64, 0f64), |(a, b), i| {
                let at = (i * c + ch) * s;
                let (xs, gs) = (&x[at..][..s], &dy[at..][..s]);
                let (da, db) = xs.iter().zip(gs).fold((0f64, 0f64), |(da, db), (&v, &g)| {
                    let g = f64::from(g);
                    (da + g, db + g * f64::from((v - m) * is))
                });
                (a + da, b + db)
            })
        })
        .unzip();
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(c * s)
        .zip(x.par_chunks(c * s).zip(dy.par_chunks(c * s)))
        .for_each(|(dx, (x, dy))| {
            for ch in 0..c {
                let (m, is) = (mean[ch], inv_std[ch]);
                let scale = gamma[ch] * is;
                let (mean_dy, mean_dy_xhat) = (
                    (sum_dy[ch] / count) as f32,
                    (sum_dy_xhat[ch] / count) as f32,
                );
                let range = ch * s..(ch + 1) * s;
                for ((o, &v), &g) in dx[range.clone()]
                    .iter_mut()
                    .zip(&x[range.clone()])
                    .zip(&dy[range])
                {
                    *o = scale * (g - mean_dy - (v - m) * is * mean_dy_xhat);
                }
            }
        });
    let as_f32 = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    (dx, as_f32(sum_dy_xhat), as_f32(sum_dy))
}

/// Batch norm in training mode as a backend operation: implemented for `Flex` and for autodiff over it.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait FusedBatchNorm: Backend {
    /// `x: [N, C, …]` normalised with the batch's own per-channel mean and biased variance, scaled by `gamma`
    /// and shifted by `beta`: the output, and the mean and variance (constants, for the running statistics).
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// The gradients of [`FusedBatchNorm::fused_batch_norm_train`] on a backend without autodiff: `x`, `γ`, `β`.
pub(crate) trait FusedBatchNormBackward: Backend {
    fn fused_batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        grad: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3];
}

impl FusedBatchNorm for Flex {
    fn fused_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = x.layout().shape().to_vec();
        let l = layout(&shape);
        let [x, gamma, beta] = [&x, &gamma, &beta].map(contiguous);
        let (mean, variance) = statistics(floats(&x), l);
        let inv_std = inverse_std(&variance, epsilon);
        let y = normalize(
            floats(&x),
            l,
            floats(&gamma),
            floats(&beta),
            &mean,
            &inv_std,
        );
        (
            tensor(y, shape),
            tensor(mean, vec![l.1]),
            tensor(variance, vec![l.1]),
        )
    }
}

impl FusedBatchNormBackward for Flex {
    fn fused_batch_norm_train_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        grad: FlexTensor,
    ) -> [FlexTensor; 3] {
        let shape = x.layout().shape().to_vec();
        let [x, gamma, mean, variance, grad] =
            [&x, &gamma, &mean, &variance, &grad].map(contiguous);
        let inv_std = inverse_std(floats(&variance), epsilon);
        let (dx, dgamma, dbeta) = gradients(
            floats(&x),
            floats(&grad),
            layout(&shape),
            floats(&gamma),
            floats(&mean),
            &inv_std,
        );
        let c = shape[1];
        [
            tensor(dx, shape),
            tensor(dgamma, vec![c]),
            tensor(dbeta, vec![c]),
        ]
    }
}

#[derive(Debug)]
struct FusedBatchNormGrad;

impl<B: Backend + FusedBatchNormBackward> Backward<B, 3> for FusedBatchNormGrad {
    type State = (
        NodeId,
        NodeId,
        B::FloatTensorPrimitive,
        B::FloatTensorPrimitive,
        f64,
    );

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, mean, variance, epsilon) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let gamma = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(gamma_state);
        let [dx, dgamma, dbeta] =
            B::fused_batch_norm_train_backward(x, gamma, mean, variance, epsilon, grad);
        for (node, g) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: Backend + FusedBatchNorm + FusedBatchNormBackward, C: CheckpointStrategy> FusedBatchNorm
    for Autodiff<B, C>
{
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let prep = FusedBatchNormGrad
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (y, mean, variance) = match prep {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let (y, mean, variance) = B::fused_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                let state = (
                    x_state,
                    gamma_state,
                    mean.clone(),
                    variance.clone(),
                    epsilon,
                );
                (prep.finish(state, y), mean, variance)
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, variance) = B::fused_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                (prep.finish(y), mean, variance)
            }
        };
        // The statistics leave as constants: the output's gradient already accounts for them.
        (
            y,
            <FloatTensor<Self>>::new(mean),
            <FloatTensor<Self>>::new(variance),
        )
    }
}

/// Inference-mode batch norm (running statistics) as one pass, on the `flex` device without autodiff.
#[backend_extension(Flex)]
pub(crate) trait FusedBatchNormEval: Backend {
    /// `γ (x − mean) / sqrt(variance + ε) + β` per channel of `x: [N, C, …]`.
    fn fused_batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

impl FusedBatchNormEval for Flex {
    fn fused_batch_norm_eval(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        let [x, gamma, beta, mean, variance] =
            [&x, &gamma, &beta, &mean, &variance].map(contiguous);
        let inv_std = inverse_std(floats(&variance), epsilon);
        let y = normalize(
            floats(&x),
            layout(&shape),
            floats(&gamma),
            floats(&beta),
            floats(&mean),
            &inv_std,
        );
        tensor(y, shape)
    }
}

/// Whether the fused kernels take `x: [N, C, …]` with per-channel `params` on this device.
fn fits<const D: usize>(x: &Tensor<D>, params: &[&Tensor<1>]) -> bool {
    D >= 2
        && on_flex(x.device())
        && x.dtype() == DType::F32
        && x.shape().num_elements() > 0
        && params
            .iter()
            .all(|p| on_flex(p.device()) && p.dtype() == DType::F32 && p.dims()[0] == x.dims()[1])
}

/// Inference-mode batch norm of `x: [N, C, …]` through one fused pass on the `flex` device without autodiff;
/// `None` elsewhere (any tensor with autodiff keeps Burn's, whose gradient a frozen layer still needs).
pub(crate) fn batch_norm_eval<const D: usize>(
    x: &Tensor<D>,
    [gamma, beta, mean, variance]: [&Tensor<1>; 4],
    epsilon: f64,
) -> Option<Tensor<D>> {
    let params = [gamma, beta, mean, variance];
    if x.is_autodiff() || params.iter().any(|p| p.is_autodiff()) || !fits(x, &params) {
        return None;
    }
    let y = <Dispatch as FusedBatchNormEval>::fused_batch_norm_eval(
        x.clone().into_dispatch(),
        gamma.clone().into_dispatch(),
        beta.clone().into_dispatch(),
        mean.clone().into_dispatch(),
        variance.clone().into_dispatch(),
        epsilon,
    );
    Some(Tensor::<D>::from_dispatch(y))
}

/// Training-mode batch norm of `x: [N, C, …]` with `gamma`, `beta` (`[C]`): the output and the batch's mean and
/// biased variance (for the running statistics), through the fused kernels on the `flex` device with autodiff
/// (`f32`); `None` elsewhere, where the caller uses Burn's.
pub(crate) fn batch_norm_train<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
) -> Option<(Tensor<D>, Tensor<1>, Tensor<1>)> {
    if !x.device().is_autodiff() || !fits(x, &[gamma, beta]) {
        return None;
    }
    let (y, mean, variance) = <Dispatch as FusedBatchNorm>::fused_batch_norm_train(
        x.clone().into_dispatch(),
        gamma.clone().into_dispatch(),
        beta.clone().into_dispatch(),
        epsilon,
    );
    Some((
        Tensor::<D>::from_dispatch(y),
        Tensor::<1>::from_dispatch(mean).detach(),
        Tensor::<1>::from_dispatch(variance).detach(),
    ))
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::{BatchNorm, BatchNormConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Distribution, TensorData};

    use super::*;
    use crate::shard::forward_one;

    fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn assert_close(what: &str, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let gap = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale;
        assert!(gap < 2e-5, "{what} differ: relative gap {gap}");
    }

    /// A layer with non-trivial γ and β, the same on every call (tests run in parallel, so a seeded random
    /// layer could differ between two calls).
    fn layer(c: usize, device: &Device) -> BatchNorm {
        let mut bn = BatchNormConfig::new(c).with_momentum(0.3).init(device);
        let values = |offset: f32| {
            let v: Vec<f32> = (0..c)
                .map(|i| offset + 0.37 * i as f32 - 0.1 * (i * i % 5) as f32)
                .collect();
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [c]), device))
        };
        bn.gamma = values(0.8);
        bn.beta = values(-0.5);
        bn
    }

    /// The fused path gives Burn's training-mode batch norm: output, the gradients of x, γ and β (for a loss
    /// that weights every output differently), and the running statistics after the step; on 4-d activations
    /// (a mean far from zero, as after a ReLU) and 2-d ones (the projection head's).
    fn same_as_burn<const D: usize>(shape: [usize; D]) {
        let device = Device::flex().autodiff();
        device.seed(9);
        let c = shape[1];
        // Two layers with the same values (a clone would share the running statistics).
        let (ours, burns) = (layer(c, &device), layer(c, &device));
        let x = (Tensor::<D>::random(shape, Distribution::Normal(0.0, 2.0), &device) + 3.0)
            .require_grad();
        let w = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let gamma = ours.gamma.val();
        assert!(batch_norm_train(&x, &gamma, &ours.beta.val(), ours.epsilon).is_some());
        let run = |bn: &BatchNorm, fused: bool| {
            let y = if fused {
                forward_one(bn, x.clone(), true)
            } else {
                bn.forward(x.clone())
            };
            let raw = (y.clone() * w.clone()).sum().backward();
            let dx = to_vec(x.grad(&raw).unwrap());
            let g = GradientsParams::from_grads(raw, bn);
            let dgamma = to_vec(g.get::<1>(bn.gamma.id).unwrap());
            let dbeta = to_vec(g.get::<1>(bn.beta.id).unwrap());
            // value_sync: value() lags one update behind.
            let running = [
                to_vec(bn.running_mean.value_sync()),
                to_vec(bn.running_var.value_sync()),
            ];
            (to_vec(y), dx, dgamma, dbeta, running)
        };
        let (a, b) = (run(&ours, true), run(&burns, false));
        assert_close("outputs", &a.0, &b.0);
        assert_close("input gradients", &a.1, &b.1);
        assert_close("gamma gradients", &a.2, &b.2);
        assert_close("beta gradients", &a.3, &b.3);
        assert_close("running means", &a.4[0], &b.4[0]);
        assert_close("running variances", &a.4[1], &b.4[1]);
        // And by the formula, from the batch's statistics computed here: momentum 0.3 from 0 and 1.
        let (mean, var) = statistics(&to_vec(x.clone().inner()), layout(&shape));
        let expected_mean: Vec<f32> = mean.iter().map(|m| 0.3 * m).collect();
        let expected_var: Vec<f32> = var.iter().map(|v| 0.7 + 0.3 * v).collect();
        assert_close("running means by formula", &a.4[0], &expected_mean);
        assert_close("running variances by formula", &a.4[1], &expected_var);
        assert!(
            a.4[0].iter().all(|m| m.abs() > 0.1),
            "the running means moved"
        );
    }

    #[test]
    fn fused_batch_norm_is_burns_on_activations() {
        same_as_burn([6, 5, 4, 3]);
        same_as_burn([3, 16, 8, 8]);
    }

    #[test]
    fn fused_batch_norm_is_burns_on_features() {
        same_as_burn([32, 7]);
    }

    /// Statistics by hand: one channel holding 1, 2, 3, 4 over two images has mean 2.5 and biased variance 1.25.
    #[test]
    fn statistics_by_hand() {
        let x = [1.0, 2.0, 10.0, 10.0, 3.0, 4.0, 10.0, 10.0];
        let (mean, var) = statistics(&x, (2, 2, 2));
        assert_eq!(mean, vec![2.5, 10.0]);
        assert_eq!(var, vec![1.25, 0.0]);
    }

    /// Outside training: the fused pass on the inference device is Burn's inference batch norm (running
    /// statistics); on the autodiff device (a frozen layer, whose input gradient attacks need) Burn's own runs,
    /// bit for bit.
    #[test]
    fn outside_training_uses_the_running_statistics() {
        let device = Device::flex();
        // As the networks run inference: the module's plain copy (`valid`), whose parameters have no autodiff.
        let mut bn = layer(3, &device.clone().autodiff()).valid();
        let stats = |v: [f32; 3]| {
            burn::module::RunningState::new(Tensor::<1>::from_data(
                TensorData::new(v.to_vec(), [3]),
                &device,
            ))
        };
        bn.running_mean = stats([0.5, -0.2, 1.5]);
        bn.running_var = stats([0.3, 2.0, 0.9]);
        let x = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        assert!(
            batch_norm_eval(
                &x,
                [
                    &bn.gamma.val(),
                    &bn.beta.val(),
                    &bn.running_mean.value(),
                    &bn.running_var.value()
                ],
                bn.epsilon
            )
            .is_some()
        );
        assert_close(
            "inference outputs",
            &to_vec(forward_one(&bn, x.clone(), false)),
            &to_vec(bn.forward(x.clone())),
        );
        // A frozen layer (training off) on the autodiff device: the running statistics, Burn's path, unchanged
        // statistics, and a gradient for the input (what an attack through a frozen network needs).
        let ad = device.clone().autodiff();
        let mut frozen = layer(3, &ad);
        frozen.running_mean = stats([0.5, -0.2, 1.5]).to_device(&ad);
        frozen.running_var = stats([0.3, 2.0, 0.9]).to_device(&ad);
        let frozen = frozen.freeze();
        let xa = Tensor::<4>::from_data(x.to_data(), &ad).require_grad();
        let training = xa.device().is_autodiff() && frozen.training.is_enabled();
        assert!(!training);
        let y = forward_one(&frozen, xa.clone(), training);
        assert_close(
            "frozen layer outputs",
            &to_vec(y.clone()),
            &to_vec(forward_one(&bn, x, false)),
        );
        assert!(xa.grad(&y.sum().backward()).is_some());
        assert_eq!(
            to_vec(frozen.running_mean.value_sync()),
            vec![0.5, -0.2, 1.5]
        );
    }
}
