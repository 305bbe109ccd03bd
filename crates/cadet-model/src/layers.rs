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

/// Batch norm with PyTorch's defaults (momentum 0.1, ε 1e-5).
pub(crate) fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

/// `conv.forward(x)`, routed around a slow kernel of Burn's CPU backend.
///
/// burn-flex sends every convolution with at most 4 input and at most 16 output channels to a direct loop tuned
/// for 3 × 3 filters (`should_use_small_channel_conv` in `burn-flex-0.22.1/src/ops/conv.rs`); for the ImageNet
/// stem of a narrow ResNet (7 × 7 over 3 channels, 16 filters: the quickstart's) that loop is about 2× slower
/// than the backend's im2col + GEMM path (docs/performance.md, issue 14). On that backend, such a convolution with
/// a kernel larger than 3 × 3 and 8 to 16 filters gets all-zero filters up to 17, which takes it off the
/// small-channel path, and the extra output channels are dropped: the same convolution (sums in another order),
/// the gradients unchanged (the zero filters are constants). Below 8 filters the direct loop's cost, which grows
/// with the filters, wins over the GEMM's 17 (measured: 4 filters are 10% slower rerouted, 8 are 25% faster for
/// inference). Elsewhere, and for every other shape, it is `conv.forward(x)`.
/// `scripts/burn-flex/small-channel-large-kernel.patch` is the same fix inside burn-flex, for upstream.
pub(crate) fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(padding) = rerouted_padding(conv, &x) else {
        return conv.forward(x);
    };
    let [cout, cin, kh, kw] = conv.weight.dims();
    let options = burn::tensor::ops::ConvOptions::new_with_padding(
        conv.stride,
        padding,
        conv.dilation,
        conv.groups,
    );
    // burn-flex's small-channel path takes at most 16 output channels.
    let extra = 17 - cout;
    let weight = conv.weight.val();
    let zero_filters = Tensor::zeros([extra, cin, kh, kw], &weight.device());
    let bias = conv.bias.as_ref().map(|b| {
        let b = b.val();
        let zeros = Tensor::zeros([extra], &b.device());
        Tensor::cat(vec![b, zeros], 0)
    });
    let y =
        burn::tensor::module::conv2d(x, Tensor::cat(vec![weight, zero_filters], 0), bias, options);
    y.narrow(1, 0, cout)
}

/// When [`conv_forward`] takes `conv` off burn-flex's small-channel path for input `x`: its padding as
/// `[(top, bottom), (left, right)]`; `None` when Burn's own forward runs.
fn rerouted_padding(conv: &Conv2d, x: &Tensor<4>) -> Option<[(usize, usize); 2]> {
    let [cout, cin, kh, kw] = conv.weight.dims();
    // The layers here pad explicitly (`conv`); other padding modes keep Burn's own forward.
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return None;
    };
    let small_channel_large_kernel =
        conv.groups == 1 && cin <= 4 && (8..=16).contains(&cout) && kh * kw > 9;
    (small_channel_large_kernel && x.device() == Device::flex())
        .then_some([(top, bottom), (left, right)])
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

    /// A convolution that is rerouted gives Burn's: the same output and the same weight, bias and input gradients,
    /// to f32 rounding; and it is rerouted (the output differs from Burn's in the last bits, as sums in another
    /// order do), so the test exercises the new path. Cases: the quickstart's stem (7 × 7, 3 → 16, stride 2), with
    /// a bias, 3 → 8, and an asymmetric one (7 × 5 kernel, stride 2 × 1, padding 3 / 2 / 1 / 0, dilation 1 × 2,
    /// a 20 × 24 input) that would catch a height / width or top / bottom mix-up.
    #[test]
    fn rerouted_convolution_is_the_same_convolution() {
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
            (conv(3, 8, 7, 2, &device), [2, 3, 32, 32]),
            (asymmetric(&device), [2, 3, 20, 24]),
        ];
        for (layer, shape) in cases {
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
            assert!(rerouted_padding(&layer, &x).is_some());
            let (burn, ours) = (layer.forward(x.clone()), conv_forward(&layer, x.clone()));
            assert_eq!(burn.dims(), ours.dims());
            let (b, o) = (to_vec(burn.clone()), to_vec(ours.clone()));
            assert_close("outputs", &b, &o);
            assert!(
                b != o,
                "not rerouted (bit-identical to Burn's small-channel path)"
            );
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
        // The inference device reroutes too.
        let plain = Device::flex();
        let stem = conv(3, 16, 7, 2, &device).valid();
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &plain);
        let (b, o) = (
            to_vec(stem.forward(x.clone())),
            to_vec(conv_forward(&stem, x)),
        );
        assert_close("outputs", &b, &o);
        assert!(b != o, "not rerouted on the inference device");
    }

    /// Shapes that stay on Burn's own forward, bit for bit: 3 × 3 kernels, fewer than 8 filters, more than 16,
    /// more than 4 input channels.
    #[test]
    fn other_convolutions_keep_burns_forward() {
        let device = Device::flex();
        device.seed(3);
        for (cin, cout, k) in [(3, 16, 3), (3, 4, 7), (3, 32, 7), (8, 16, 7)] {
            let layer = conv(cin, cout, k, 2, &device);
            let x = Tensor::<4>::random([2, cin, 16, 16], Distribution::Normal(0.0, 1.0), &device);
            assert!(rerouted_padding(&layer, &x).is_none());
            assert_eq!(
                to_vec(layer.forward(x.clone())),
                to_vec(conv_forward(&layer, x))
            );
        }
    }
}
