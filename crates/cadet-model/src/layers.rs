//! Building blocks shared by the ResNets: a convolution with its batch norm, torchvision's initialisation.

use burn::module::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;

/// A `k × k` convolution without bias, torchvision's initialisation (Kaiming normal, fan-out, ReLU gain).
pub(crate) fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: 2f64.sqrt(),
            fan_out_only: true,
        })
        .init(device)
}

/// The largest width multiplier a configuration may ask for (the released SimCLRv2 checkpoints use 1 to 3).
pub(crate) const MAX_WIDTH_MULTIPLIER: usize = 16;
/// The largest base width a configuration may ask for (64 in torchvision and the released checkpoints).
pub(crate) const MAX_BASE_WIDTH: usize = 1024;
/// The most classes of a linear head, and the widest projection head layer.
pub(crate) const MAX_HEAD_WIDTH: usize = 1 << 20;

/// Refuses a model of `params` parameters (f32) over [`Limits::max_alloc_bytes`](cadet_core::limits::Limits):
/// settings come from flags and from checkpoints' settings files, and a typo or a hostile file must not
/// allocate hundreds of gigabytes (or overflow a size) before anything checks them.
/// It is also refused when the weights and one working copy of them (a forward pass reorders convolution
/// kernels) exceed what this process may still map (`cadet_core::limits::memory_budget`: `MemAvailable`,
/// `ulimit -v`), so that building it fails with a message instead of aborting in the allocator.
pub(crate) fn check_model_size(name: &'static str, what: &str, params: u128) -> crate::Result<()> {
    let limit = cadet_core::limits::Limits::default().max_alloc_bytes;
    let bytes = params.saturating_mul(4);
    if bytes > u128::from(limit) {
        return Err(crate::Error::InvalidConfig {
            name,
            reason: format!(
                "{what}: {params} parameters, {bytes} bytes, over the limit of {limit} bytes \
                 (Limits::max_alloc_bytes)"
            ),
        });
    }
    cadet_core::limits::check_memory(
        &format!("{what}: {params} parameters and a working copy"),
        bytes.saturating_mul(2),
        limit,
        "a smaller model, or more memory",
    )
    .map_err(|e| crate::Error::InvalidConfig {
        name,
        reason: e.to_string(),
    })
}

/// Batch norm with PyTorch's defaults (momentum 0.1, ε 1e-5).
pub(crate) fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

/// `bn.forward(x)`; in training on the CPU backend through fused kernels (the same output, gradients and running
/// statistics: [`shard::forward_one`](crate::shard)).
pub(crate) fn bn_forward<const D: usize>(bn: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    let training = x.device().is_autodiff() && bn.training.is_enabled();
    crate::shard::forward_one(bn, x, training)
}

/// `conv.forward(x)`, through [`kernels::conv::conv2d`](crate::kernels::conv::conv2d): on Burn's CPU backend an `f32`
/// convolution without groups runs as one matrix product per chunk of images (forward and backward), over the
/// quickstart encoder's convolutions 4× faster than burn-flex's own kernel forward and 3× with gradients
/// (docs/performance.md, issue 14); elsewhere, and for padding other than explicit, it is `conv.forward(x)`.
pub(crate) fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    // The layers here pad explicitly (`conv`); other padding modes keep Burn's own forward, which resolves them.
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return conv.forward(x);
    };
    let options = burn::tensor::ops::ConvOptions::new_with_padding(
        conv.stride,
        [(top, bottom), (left, right)],
        conv.dilation,
        conv.groups,
    );
    crate::kernels::conv::conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::conv::Conv2dConfig;
    use burn::optim::GradientsParams;
    use burn::tensor::Distribution;

    use super::*;

    fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn relative_gap(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
        a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    fn assert_close(what: &str, a: &[f32], b: &[f32]) {
        let gap = relative_gap(a, b);
        assert!(gap < 1e-5, "{what} differ: relative gap {gap}");
    }

    fn burn_conv(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        layer.forward(x)
    }

    /// The GEMM path gives Burn's convolution: the same output and the same weight, bias and input gradients, to
    /// f32 rounding; and it is taken (the output differs from Burn's in the last bits, as sums in another order
    /// do). Cases: the quickstart's stem (7 × 7, 3 → 16, stride 2), with a bias; 3 × 3 blocks at 8, 2 and 1
    /// pixels; a strided 1 × 1 shortcut; an asymmetric one (7 × 5 kernel, stride 2 × 1, padding 3 / 2 / 1 / 0,
    /// dilation 1 × 2, a 20 × 24 input) that would catch a height / width or top / bottom mix-up.
    #[test]
    fn gemm_path_is_burns_convolution() {
        let device = Device::flex().autodiff();
        device.seed(7);
        let asymmetric = |device: &Device| {
            Conv2dConfig::new([3, 12], [7, 5])
                .with_stride([2, 1])
                .with_dilation([1, 2])
                .with_padding(PaddingConfig2d::Explicit(3, 2, 1, 0))
                .init(device)
        };
        let cases: Vec<(Conv2d, [usize; 4])> = vec![
            (conv(3, 16, 7, 2, &device), [4, 3, 32, 32]),
            (
                Conv2d {
                    bias: Some(Param::from_tensor(Tensor::random(
                        [16],
                        Distribution::Normal(0.0, 1.0),
                        &device,
                    ))),
                    ..conv(3, 16, 7, 2, &device)
                },
                [2, 3, 32, 32],
            ),
            (conv(16, 16, 3, 1, &device), [6, 16, 8, 8]),
            (conv(32, 64, 3, 2, &device), [5, 32, 4, 4]),
            (conv(64, 64, 3, 1, &device), [3, 64, 1, 1]),
            (conv(16, 32, 1, 2, &device), [4, 16, 8, 8]),
            (asymmetric(&device), [2, 3, 20, 24]),
        ];
        for (layer, shape) in cases {
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
            let options = burn::tensor::ops::ConvOptions::new_with_padding(
                layer.stride,
                match layer.padding {
                    PaddingConfig2d::Explicit(t, l, b, r) => [(t, b), (l, r)],
                    _ => unreachable!("the cases pad explicitly"),
                },
                layer.dilation,
                layer.groups,
            );
            assert!(crate::kernels::conv::takes_gemm_path(
                &x,
                &layer.weight.val(),
                &options
            ));
            let (burn, ours) = (
                burn_conv(&layer, x.clone()),
                conv_forward(&layer, x.clone()),
            );
            assert_eq!(burn.dims(), ours.dims());
            let (b, o) = (to_vec(burn.clone()), to_vec(ours.clone()));
            assert_close("outputs", &b, &o);
            // Same gradients for a loss that weights every output differently.
            let w = Tensor::<4>::random(burn.dims(), Distribution::Normal(0.0, 1.0), &device);
            let grads = |y: Tensor<4>| {
                let raw = (y * w.clone()).sum().backward();
                let mut out = vec![to_vec(x.grad(&raw).expect("input gradient"))];
                let g = GradientsParams::from_grads(raw, &layer);
                out.push(to_vec(g.get::<4>(layer.weight.id).unwrap()));
                if let Some(b) = &layer.bias {
                    out.push(to_vec(g.get::<1>(b.id).unwrap()));
                }
                out
            };
            for (gb, go) in grads(burn).iter().zip(&grads(ours)) {
                assert_close("gradients", gb, go);
            }
        }
        // On the inference device too (the assertion above covers the training one): bit-identical to Burn
        // would mean the path was not taken, since the GEMM path sums in another order.
        let plain = Device::flex();
        let stem = conv(3, 16, 7, 2, &device).valid();
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &plain);
        let (b, o) = (
            to_vec(burn_conv(&stem, x.clone())),
            to_vec(conv_forward(&stem, x)),
        );
        assert_close("outputs", &b, &o);
        assert!(
            b != o,
            "the GEMM path was not taken on the inference device"
        );
    }

    /// A weight that does not take part in autodiff (a frozen layer) and an input that does: only the input's
    /// gradient is asked for, and it is Burn's.
    #[test]
    fn gemm_path_gradient_of_the_input_alone() {
        let device = Device::flex().autodiff();
        device.seed(11);
        let layer = conv(8, 8, 3, 1, &device).no_grad();
        let x = Tensor::<4>::random([3, 8, 5, 5], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let gb = x.grad(&burn_conv(&layer, x.clone()).powi_scalar(2).sum().backward());
        let go = x.grad(
            &conv_forward(&layer, x.clone())
                .powi_scalar(2)
                .sum()
                .backward(),
        );
        assert_close(
            "input gradients",
            &to_vec(gb.unwrap()),
            &to_vec(go.unwrap()),
        );
    }

    /// A non-contiguous input (a transposed view) and the same tensor as input and weight give Burn's results.
    #[test]
    fn gemm_path_takes_views_and_shared_tensors() {
        let device = Device::flex().autodiff();
        device.seed(13);
        let layer = conv(6, 5, 3, 1, &device);
        let x = Tensor::<4>::random([3, 7, 6, 6], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        // A fresh view per pass: a backward pass consumes the graph of the view's own operations.
        let view = || x.clone().swap_dims(1, 2).narrow(2, 1, 6);
        let grads = |y: Tensor<4>| to_vec(x.grad(&y.powi_scalar(2).sum().backward()).unwrap());
        assert_close(
            "outputs of a view",
            &to_vec(conv_forward(&layer, view())),
            &to_vec(burn_conv(&layer, view())),
        );
        assert_close(
            "gradients through a view",
            &grads(conv_forward(&layer, view())),
            &grads(burn_conv(&layer, view())),
        );
        // x convolved with itself: both gradients land on x and add up.
        let w = Tensor::<4>::random([4, 4, 4, 4], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let options = burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let twice = |f: fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, _) -> Tensor<4>| {
            let y = f(w.clone(), w.clone(), None, options.clone());
            to_vec(w.grad(&y.powi_scalar(2).sum().backward()).unwrap())
        };
        assert_close(
            "gradients of a self-convolution",
            &twice(crate::kernels::conv::conv2d),
            &twice(burn::tensor::module::conv2d),
        );
    }

    /// Convolutions the GEMM path does not take (groups) are Burn's own, bit for bit.
    #[test]
    fn grouped_convolutions_keep_burns_forward() {
        let device = Device::flex();
        device.seed(3);
        let layer = Conv2dConfig::new([8, 8], [3, 3])
            .with_groups(2)
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x = Tensor::<4>::random([2, 8, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(
            to_vec(burn_conv(&layer, x.clone())),
            to_vec(conv_forward(&layer, x))
        );
    }

    /// The same bits whatever the number of threads (the chunks are fixed by the shapes).
    #[test]
    fn gemm_path_does_not_depend_on_the_thread_count() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let layer = conv(16, 16, 3, 1, &device);
        let x = Tensor::<4>::random([64, 16, 8, 8], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let y = conv_forward(&layer, x.clone());
                let raw = y.clone().powi_scalar(2).sum().backward();
                let dx = to_vec(x.grad(&raw).unwrap());
                let g = GradientsParams::from_grads(raw, &layer);
                let mut grads = to_vec(g.get::<4>(layer.weight.id).unwrap());
                grads.extend(dx);
                (to_vec(y), grads)
            })
        };
        let (y1, g1) = run(1);
        for threads in [2, 3, 8] {
            let (y, g) = run(threads);
            assert!(y1.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
            assert!(g1.iter().zip(&g).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
