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
/// a kernel larger than 3 × 3 gets one extra all-zero filter, which takes it off the small-channel path, and the
/// extra output channel is dropped: the same convolution (sums in another order), the weight's gradient
/// unchanged (the zero filter is a constant). Elsewhere, and for every other shape, it is `conv.forward(x)`.
/// `scripts/burn-flex/small-channel-large-kernel.patch` is the same fix inside burn-flex, for upstream.
pub(crate) fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [cout, cin, kh, kw] = conv.weight.dims();
    let small_channel_path = cin <= 4 && cout <= 16 && conv.groups == 1;
    // The layers here pad explicitly (`conv`); any other padding takes Burn's own forward.
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        return conv.forward(x);
    };
    if !(small_channel_path && kh.max(kw) > 3 && x.device().without_autodiff() == Device::flex()) {
        return conv.forward(x);
    }
    let options = burn::tensor::ops::ConvOptions::new_with_padding(
        conv.stride,
        [(top, bottom), (left, right)],
        conv.dilation,
        conv.groups,
    );
    let weight = conv.weight.val();
    let zero_filter = Tensor::zeros([1, cin, kh, kw], &weight.device());
    let bias = conv.bias.as_ref().map(|b| {
        let b = b.val();
        let zero = Tensor::zeros([1], &b.device());
        Tensor::cat(vec![b, zero], 0)
    });
    let y =
        burn::tensor::module::conv2d(x, Tensor::cat(vec![weight, zero_filter], 0), bias, options);
    y.narrow(1, 0, cout)
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
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

    /// The rerouted stem (7 × 7, 3 → 16, stride 2: the quickstart's) gives Burn's convolution: the same output
    /// and the same weight gradient, to f32 rounding, with and without a bias; and it does reroute (the output
    /// differs from Burn's in the last bits, as sums in another order do), so the test checks the new path.
    #[test]
    fn rerouted_stem_is_the_same_convolution() {
        let device = Device::flex().autodiff();
        device.seed(7);
        for bias in [false, true] {
            let mut layer = conv(3, 16, 7, 2, &device);
            if bias {
                layer.bias = Some(Param::from_tensor(Tensor::random(
                    [16],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                )));
            }
            let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            let (burn, ours) = (layer.forward(x.clone()), conv_forward(&layer, x));
            assert_eq!(burn.dims(), ours.dims());
            let (b, o) = (to_vec(burn.clone()), to_vec(ours.clone()));
            assert!(
                relative_gap(&b, &o) < 1e-5,
                "outputs differ: {}",
                relative_gap(&b, &o)
            );
            assert!(
                b != o,
                "the stem was not rerouted (bit-identical to Burn's small-channel path)"
            );
            // Same weight (and bias) gradients for a loss that weights every output differently.
            let w = Tensor::<4>::random(burn.dims(), Distribution::Normal(0.0, 1.0), &device);
            let grads = |y: Tensor<4>| {
                let g = GradientsParams::from_grads((y * w.clone()).sum().backward(), &layer);
                let mut out = vec![to_vec(g.get::<4>(layer.weight.id).unwrap())];
                if let Some(b) = &layer.bias {
                    out.push(to_vec(g.get::<1>(b.id).unwrap()));
                }
                out
            };
            for (gb, go) in grads(burn).iter().zip(&grads(ours)) {
                assert!(
                    relative_gap(gb, go) < 1e-5,
                    "gradients differ: {}",
                    relative_gap(gb, go)
                );
            }
        }
        // Other shapes and the inference device: Burn's own forward, bit for bit.
        let plain = Device::flex();
        let layer = conv(3, 16, 3, 1, &plain);
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &plain);
        assert_eq!(
            to_vec(layer.forward(x.clone())),
            to_vec(conv_forward(&layer, x))
        );
        let stem = conv(3, 16, 7, 2, &device).valid();
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &plain);
        let (b, o) = (
            to_vec(stem.forward(x.clone())),
            to_vec(conv_forward(&stem, x)),
        );
        assert!(relative_gap(&b, &o) < 1e-5);
    }
}
