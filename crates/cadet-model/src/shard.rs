//! Data parallelism: a batch cut into shards, one per device, that trains as one batch.
//!
//! Every layer of the SimCLR model but batch norm treats images independently, so each shard runs it on its own
//! device with its own replica of the layer. Batch norm and the loss are where shards meet: synchronised batch
//! norm (SyncBN) normalises every shard with the statistics of the whole batch, and NT-Xent sees the embeddings
//! of every shard. Both exchanges are ordinary differentiable tensor operations (a transfer to shard 0's
//! device, a sum or a concatenation, a transfer back), so one backward pass carries every shard's share of the
//! gradient back to the shard (and, through the replicas' transfers, to the one model) that produced it.
//!
//! A forward pass written over shards is also the single-device forward: one shard, where every batch norm is
//! Burn's own.

use burn::nn::BatchNorm;
use burn::prelude::*;

/// What batch norm normalises a sharded batch with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShardNorm {
    /// Synchronised batch norm: the statistics of the whole batch, as on one device. The running statistics
    /// follow the whole batch too.
    #[default]
    Synchronized,
    /// Each shard's own statistics (data parallelism without SyncBN). The running statistics follow shard 0,
    /// as when every replica keeps its own and shard 0's are broadcast.
    PerShard,
}

/// The replicas of one layer: `field` of every shard's model.
pub(crate) fn each<'a, M, T: 'a>(replicas: &[&'a M], field: impl Fn(&'a M) -> &'a T) -> Vec<&'a T> {
    replicas.iter().map(|&m| field(m)).collect()
}

/// `f(layer_s, x_s)` for every shard `s`.
pub(crate) fn apply<L, const D: usize, const E: usize>(
    layers: &[&L],
    xs: Vec<Tensor<D>>,
    f: impl Fn(&L, Tensor<D>) -> Tensor<E>,
) -> Vec<Tensor<E>> {
    layers.iter().zip(xs).map(|(&l, x)| f(l, x)).collect()
}

/// `f(x_s)` for every shard `s`.
pub(crate) fn map<const D: usize, const E: usize>(
    xs: Vec<Tensor<D>>,
    f: impl Fn(Tensor<D>) -> Tensor<E>,
) -> Vec<Tensor<E>> {
    xs.into_iter().map(f).collect()
}

/// `a_s + b_s` for every shard `s`.
pub(crate) fn add<const D: usize>(a: Vec<Tensor<D>>, b: Vec<Tensor<D>>) -> Vec<Tensor<D>> {
    a.into_iter().zip(b).map(|(a, b)| a + b).collect()
}

/// Batch norm of a batch given as shards: `layers[s]` is shard `s`'s replica of the layer, `xs[s]` its rows.
/// Computed in `f32` whatever the activations' type (mixed precision: [`crate::Precision`]).
pub(crate) fn batch_norm<const D: usize>(
    layers: &[&BatchNorm],
    xs: Vec<Tensor<D>>,
    norm: ShardNorm,
) -> Vec<Tensor<D>> {
    crate::precision::in_f32(xs, |xs| batch_norm_f32(layers, xs, norm))
}

fn batch_norm_f32<const D: usize>(
    layers: &[&BatchNorm],
    xs: Vec<Tensor<D>>,
    norm: ShardNorm,
) -> Vec<Tensor<D>> {
    let training = xs
        .first()
        .is_some_and(|x| x.device().is_autodiff() && layers[0].training.is_enabled());
    if xs.len() < 2 || !training {
        // One shard is the whole batch; outside training the running statistics are used.
        return apply(layers, xs, |bn, x| forward_one_f32(bn, x, training));
    }
    match norm {
        ShardNorm::Synchronized => synchronized(layers, xs),
        ShardNorm::PerShard => layers
            .iter()
            .zip(xs)
            .enumerate()
            .map(|(s, (bn, x))| match s {
                // Shard 0's layer updates the running statistics; the others only normalise.
                0 => forward_one_f32(bn, x, true),
                _ => {
                    let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
                    match crate::kernels::batch_norm::batch_norm_train(
                        &x, &gamma, &beta, bn.epsilon,
                    ) {
                        Some((y, _, _)) => y,
                        None => {
                            burn::tensor::module::batch_norm_train(x, gamma, beta, bn.epsilon)
                                .output
                        }
                    }
                }
            })
            .collect(),
    }
}

/// Per-channel sum `(C)` of `x` `(N, C, …)`.
fn channel_sum<const D: usize>(x: Tensor<D>, channels: usize) -> Tensor<1> {
    let mut x = x;
    for dim in (0..D).filter(|&d| d != 1) {
        x = x.sum_dim(dim);
    }
    x.reshape([channels])
}

/// `(C)` as `(1, C, 1, …)`, for broadcasting against `(N, C, …)`, on `device`.
fn per_channel<const D: usize>(v: Tensor<1>, channels: usize, device: &Device) -> Tensor<D> {
    let mut dims = [1usize; D];
    dims[1] = channels;
    v.to_device(device).reshape(dims)
}

/// The sum over shards of `parts`, on `home`.
fn all_sum(parts: Vec<Tensor<1>>, home: &Device) -> Tensor<1> {
    parts
        .into_iter()
        .map(|p| p.to_device(home))
        .reduce(|a, b| a + b)
        .expect("at least two shards")
}

/// SyncBN: mean and (biased) variance over every shard's rows, in two exchanges (the mean, then the squared
/// deviations from it: exact where the one-pass `E[x²] − E[x]²` loses digits), then each shard normalised.
fn synchronized<const D: usize>(layers: &[&BatchNorm], xs: Vec<Tensor<D>>) -> Vec<Tensor<D>> {
    let home = xs[0].device();
    let channels = layers[0].gamma.val().dims()[0];
    let count: usize = xs.iter().map(|x| x.shape().num_elements() / channels).sum();
    let sums = xs
        .iter()
        .map(|x| channel_sum(x.clone(), channels))
        .collect();
    let mean = all_sum(sums, &home) / count as f64;
    let centred: Vec<Tensor<D>> = map(xs, |x| {
        let device = x.device();
        x - per_channel::<D>(mean.clone(), channels, &device)
    });
    let squares = centred
        .iter()
        .map(|c| channel_sum(c.clone().square(), channels))
        .collect();
    let variance = all_sum(squares, &home) / count as f64;
    // Running statistics as Burn's layer keeps them (biased variance), once, on shard 0's layer.
    update_running(layers[0], &mean, &variance, &home);
    let inv_std = (variance + layers[0].epsilon).sqrt().recip();
    apply(layers, centred, |layer, c| {
        let device = c.device();
        c * per_channel::<D>(inv_std.clone(), channels, &device)
            * per_channel::<D>(layer.gamma.val(), channels, &device)
            + per_channel::<D>(layer.beta.val(), channels, &device)
    })
}

/// Moves `bn`'s running statistics towards a batch's `mean` and biased `variance`, as Burn's layer does.
fn update_running(bn: &BatchNorm, mean: &Tensor<1>, variance: &Tensor<1>, device: &Device) {
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: &Tensor<1>| {
        let old = state.value_sync().to_device(device);
        state.update((old * (1.0 - bn.momentum) + batch.clone().detach() * bn.momentum).detach());
    };
    update(&bn.running_mean, mean);
    update(&bn.running_var, variance);
}

/// `bn.forward(x)` on one whole batch (`training` must be what Burn's layer decides: the device has autodiff and
/// the layer trains), through the fused kernels of [`kernels::batch_norm`](crate::kernels::batch_norm) on the CPU
/// backend: in training (the same output, gradients and running statistics), and for inference on the device
/// without autodiff (the same output). Computed in `f32` whatever the activations' type.
pub(crate) fn forward_one<const D: usize>(
    bn: &BatchNorm,
    x: Tensor<D>,
    training: bool,
) -> Tensor<D> {
    crate::precision::in_f32_one(x, |x| forward_one_f32(bn, x, training))
}

fn forward_one_f32<const D: usize>(bn: &BatchNorm, x: Tensor<D>, training: bool) -> Tensor<D> {
    if training {
        let (gamma, beta) = (bn.gamma.val(), bn.beta.val());
        if let Some((y, mean, variance)) =
            crate::kernels::batch_norm::batch_norm_train(&x, &gamma, &beta, bn.epsilon)
        {
            update_running(bn, &mean, &variance, &x.device());
            return y;
        }
    }
    if !training {
        let stats = [bn.running_mean.value(), bn.running_var.value()];
        let params = [&bn.gamma.val(), &bn.beta.val(), &stats[0], &stats[1]];
        if let Some(y) = crate::kernels::batch_norm::batch_norm_eval(&x, params, bn.epsilon) {
            return y;
        }
    }
    bn.forward(x)
}
