//! LARS steps and the schedule against values worked out by hand.

use approx::assert_relative_eq;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use cadet_model::{LarsConfig, WarmupCosine};

fn t(v: &[f32]) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Device::flex())
}

fn values(x: Tensor<1>) -> Vec<f32> {
    x.into_data().as_slice::<f32>().unwrap().to_vec()
}

#[test]
fn two_lars_steps_by_hand() {
    let cfg = LarsConfig::new()
        .with_weight_decay(0.1)
        .with_momentum(0.9)
        .with_trust_coefficient(0.001);
    let lars = cfg.build(true);
    let (lr, g) = (2.0, [0.6f64, 0.8]);
    // Step 1: g' = g + 0.1 w = (0.9, 1.2), ‖w‖ = 5, ‖g'‖ = 1.5, trust = 0.001 · 5 / 1.5, v = lr · trust · g'.
    let (w1, state) = lars.step(lr, t(&[3.0, 4.0]), t(&[0.6, 0.8]), None);
    let w1 = values(w1);
    let trust = 0.001 * 5.0 / 1.5;
    let v1 = [lr * trust * 0.9, lr * trust * 1.2];
    assert_relative_eq!(f64::from(w1[0]), 3.0 - v1[0], epsilon = 1e-6);
    assert_relative_eq!(f64::from(w1[1]), 4.0 - v1[1], epsilon = 1e-6);
    // Step 2 from w1 with the same gradient: v2 = 0.9 v1 + lr · trust2 · g2'.
    let (w1x, w1y) = (3.0 - v1[0], 4.0 - v1[1]);
    let g2 = [g[0] + 0.1 * w1x, g[1] + 0.1 * w1y];
    let trust2 = 0.001 * (w1x * w1x + w1y * w1y).sqrt() / (g2[0] * g2[0] + g2[1] * g2[1]).sqrt();
    let v2 = [
        0.9 * v1[0] + lr * trust2 * g2[0],
        0.9 * v1[1] + lr * trust2 * g2[1],
    ];
    let (w2, _) = lars.step(lr, t(&[w1[0], w1[1]]), t(&[0.6, 0.8]), state);
    let w2 = values(w2);
    assert_relative_eq!(f64::from(w2[0]), w1x - v2[0], epsilon = 1e-6);
    assert_relative_eq!(f64::from(w2[1]), w1y - v2[1], epsilon = 1e-6);
}

#[test]
fn excluded_parameters_get_plain_momentum_and_zero_weights_trust_one() {
    let cfg = LarsConfig::new().with_weight_decay(0.5);
    // Without adaptation: no decay, step = lr · g.
    let (w, _) = cfg
        .build(false)
        .step(0.1, t(&[1.0, 1.0]), t(&[2.0, -4.0]), None);
    assert_eq!(values(w), vec![0.8, 1.4]);
    // A zero weight (‖w‖ = 0) keeps the plain learning rate.
    let (w, _) = cfg
        .build(true)
        .step(0.1, t(&[0.0, 0.0]), t(&[2.0, -4.0]), None);
    assert_eq!(values(w), vec![-0.2, 0.4]);
}

#[derive(Module, Debug)]
struct Tiny {
    fc: Linear,
    bn: BatchNorm,
}

#[test]
fn batch_norm_and_bias_parameters_are_excluded_from_decay() {
    let device = Device::flex().autodiff();
    let tiny = Tiny {
        fc: LinearConfig::new(3, 2).init(&device),
        bn: BatchNormConfig::new(2).init(&device),
    };
    let x = Tensor::<2>::ones([4, 3], &device);
    // A loss with zero gradient: only weight decay (through the trust ratio) can move a parameter.
    let loss = tiny.bn.forward(tiny.fc.forward(x)).sum() * 0.0;
    let grads = GradientsParams::from_grads(loss.backward(), &tiny);
    let (w0, b0, g0) = (
        tiny.fc.weight.val(),
        tiny.fc.bias.as_ref().unwrap().val(),
        tiny.bn.gamma.val(),
    );
    let mut optim = LarsConfig::new()
        .with_weight_decay(1e-4)
        .with_trust_coefficient(0.001)
        .init()
        .unwrap();
    let tiny = optim.step(1.0, tiny, grads);
    // Weights: g' = wd·w, trust = η‖w‖/(wd‖w‖) → w ← w − lr·η·w.
    let ratio: f32 = (tiny.fc.weight.val() / w0).mean().into_scalar();
    assert_relative_eq!(ratio, 1.0 - 0.001, epsilon = 1e-6);
    let unchanged = |a: Tensor<1>, b: Tensor<1>| -> f32 { (a - b).abs().max().into_scalar() };
    assert_eq!(unchanged(tiny.fc.bias.as_ref().unwrap().val(), b0), 0.0);
    assert_eq!(unchanged(tiny.bn.gamma.val(), g0), 0.0);
}

#[test]
fn warmup_then_cosine_at_known_steps() {
    let s = WarmupCosine {
        base_lr: 1.2,
        warmup_steps: 10,
        total_steps: 110,
    };
    assert_relative_eq!(s.lr(0), 0.12, epsilon = 1e-12);
    assert_relative_eq!(s.lr(9), 1.2, epsilon = 1e-12);
    assert_relative_eq!(s.lr(10), 1.2, epsilon = 1e-12);
    assert_relative_eq!(s.lr(60), 0.6, epsilon = 1e-12);
    assert_relative_eq!(
        s.lr(35),
        0.6 * (1.0 + (std::f64::consts::PI / 4.0).cos()),
        epsilon = 1e-12
    );
    assert_eq!(s.lr(110), 0.0);
    assert_eq!(s.lr(500), 0.0);
    assert_relative_eq!(WarmupCosine::simclr_base_lr(1024), 1.2, epsilon = 1e-12);
}
