//! The measurements `--what` names, each printed as one JSON line.

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use cadet::attacks::{Attack, Goal, Pgd};
use cadet::model::kernels::conv as cpu_conv;
use cadet::model::{FeatureModel, LarsConfig, Normalization, Normalized, ResNetConfig, nt_xent};
use cadet_core::NoProgress;

use super::{Args, BoxError, QUICKSTART_CONVS, encoder, sync, time, training_setup};

/// ResNet-50 features on the device against the CPU's, same weights and inputs (relative L2 error).
pub(super) fn compare(_args: &Args, dev: &Device) -> Result<(), BoxError> {
    // Same weights and inputs on the CPU and on the device (small, so the CPU side stays quick).
    let cpu = Device::flex();
    cpu.seed(1);
    let net = ResNetConfig::new(50).init(&cpu)?;
    let x = Tensor::<4>::random([4, 3, 64, 64], Distribution::Uniform(0.0, 1.0), &cpu);
    let want = net.forward_features(x.clone());
    let got = net
        .to_device(dev)
        .forward_features(x.to_device(dev))
        .to_device(&cpu);
    let err = (got - want.clone())
        .square()
        .sum()
        .sqrt()
        .into_scalar::<f32>()
        / want.square().sum().sqrt().into_scalar::<f32>();
    println!(
        "{}",
        serde_json::json!({"check": "resnet50 features, device vs cpu", "relative_l2_error": err})
    );
    Ok(())
}

/// Inference throughput of the chosen encoder.
pub(super) fn infer(args: &Args, dev: &Device) -> Result<(), BoxError> {
    let (b, s) = (args.batch, args.size);
    let (config, name) = encoder(args);
    let net = args.precision.cast_model(config.init(dev)?);
    let x = Tensor::<4>::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), dev);
    let x = args.precision.cast_input(x);
    let (per, warm) = time(dev, args.warmup, args.steps, || {
        let _ = net.forward_features(x.clone());
        Ok(())
    })?;
    println!(
        "{}",
        serde_json::json!({"bench": format!("{name} inference"), "batch": b, "size": s,
            "precision": args.precision.to_string(), "images_per_s": b as f64 / per, "warmup_s": warm})
    );
    Ok(())
}

/// SimCLR steps (encoder, head, NT-Xent, LARS) per second.
pub(super) fn train(args: &Args, dev: &Device) -> Result<(), BoxError> {
    let (b, s) = (args.batch, args.size);
    let ad = dev.clone().autodiff();
    let (mut model, name, v1, v2) = training_setup(args, &ad)?;
    let mut optim = LarsConfig::new().init()?;
    let mut last = f32::NAN;
    let (per, warm) = time(&ad, args.warmup, args.steps, || {
        // Mixed precision: the forward pass on a cast copy, f32 gradients for the f32 weights.
        let (p, compute) = (args.precision, args.precision.cast_model(model.clone()));
        let loss = compute.loss(p.cast_input(v1.clone()), p.cast_input(v2.clone()), 0.1);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.3, model.clone(), grads);
        last = loss.into_scalar::<f32>();
        Ok(())
    })?;
    println!(
        "{}",
        serde_json::json!({"bench": format!("simclr step {name}"), "optimizer": "lars", "batch": b, "size": s,
            "precision": args.precision.to_string(),
            "source_images_per_s": b as f64 / per, "warmup_s": warm, "last_loss": last})
    );
    Ok(())
}

/// One SimCLR step's time split into encoder forward, head and loss, backward, optimizer (device syncs between).
pub(super) fn phases(args: &Args, dev: &Device) -> Result<(), BoxError> {
    let (b, s) = (args.batch, args.size);
    let ad = dev.clone().autodiff();
    let (mut model, name, v1, v2) = training_setup(args, &ad)?;
    let mut optim = LarsConfig::new().init()?;
    // Seconds per phase, summed over the timed steps.
    let mut spent = [0.0f64; 4];
    for i in 0..args.warmup + args.steps {
        let t = Instant::now();
        let features = model
            .encoder
            .forward_features(Tensor::cat(vec![v1.clone(), v2.clone()], 0));
        let _ = features.clone().sum().into_scalar::<f32>();
        let encoder_s = t.elapsed().as_secs_f64();
        let z = model.head.forward(features);
        let loss = nt_xent(z.clone().narrow(0, 0, b), z.narrow(0, b, b), 0.1);
        let _ = loss.clone().into_scalar::<f32>();
        let forward_s = t.elapsed().as_secs_f64();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        sync(&ad)?;
        let backward_s = t.elapsed().as_secs_f64();
        model = optim.step(0.3, model.clone(), grads);
        sync(&ad)?;
        let total_s = t.elapsed().as_secs_f64();
        if i >= args.warmup {
            let phases = [
                encoder_s,
                forward_s - encoder_s,
                backward_s - forward_s,
                total_s - backward_s,
            ];
            spent.iter_mut().zip(phases).for_each(|(a, p)| *a += p);
        }
    }
    let total: f64 = spent.iter().sum();
    let ms = |k: usize| 1e3 * spent[k] / args.steps.max(1) as f64;
    println!(
        "{}",
        serde_json::json!({"bench": format!("simclr step phases {name}"), "batch": b, "size": s,
            "ms_per_step": {"encoder_forward": ms(0), "head_and_loss_forward": ms(1), "backward": ms(2),
                "optimizer": ms(3)},
            "share": {"encoder_forward": spent[0] / total, "head_and_loss_forward": spent[1] / total,
                "backward": spent[2] / total, "optimizer": spent[3] / total},
            "source_images_per_s": b as f64 * args.steps as f64 / total})
    );
    Ok(())
}

/// The quickstart encoder's convolutions: cadet-rs's path against Burn's own conv2d, forward and backward.
pub(super) fn convs(args: &Args, dev: &Device) -> Result<(), BoxError> {
    let b = args.batch;
    let ad = dev.clone().autodiff();
    let n = 2 * b;
    // A filter that matches nothing would print nothing and exit 0.
    if let Some(filter) = &args.conv_filter
        && !QUICKSTART_CONVS
            .iter()
            .any(|c| c.0.contains(filter.as_str()))
    {
        return Err(format!(
            "--conv-filter {filter:?}: no convolution of the quickstart encoder matches (names: {})",
            QUICKSTART_CONVS.map(|c| c.0).join(", ")
        )
        .into());
    }
    for (name, cin, side, cout, k, stride, pad, count) in QUICKSTART_CONVS {
        if args
            .conv_filter
            .as_ref()
            .is_some_and(|f| !name.contains(f.as_str()))
        {
            continue;
        }
        let options = ConvOptions::new([stride; 2], [pad; 2], [1; 2], 1);
        let x = Tensor::<4>::random([n, cin, side, side], Distribution::Normal(0.0, 1.0), dev);
        let w = Tensor::<4>::random([cout, cin, k, k], Distribution::Normal(0.0, 0.1), dev);
        // cadet-rs's path (cadet_model::kernels::conv::conv2d, which every network of the crate calls) and
        // Burn's own conv2d, forward then forward + backward, and how far apart their outputs are.
        let ours = |x: Tensor<4>, w: Tensor<4>| cpu_conv::conv2d(x, w, None, options.clone());
        let burns = |x: Tensor<4>, w: Tensor<4>| conv2d(x, w, None, options.clone());
        let diff = (ours(x.clone(), w.clone()) - burns(x.clone(), w.clone()))
            .abs()
            .max()
            .into_scalar::<f32>();
        let xa = Tensor::<4>::random([n, cin, side, side], Distribution::Normal(0.0, 1.0), &ad)
            .require_grad();
        let wa = Tensor::<4>::random([cout, cin, k, k], Distribution::Normal(0.0, 0.1), &ad)
            .require_grad();
        let mut ms = Vec::new();
        for conv in [&ours as &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>, &burns] {
            let (forward, _) = time(dev, args.warmup, args.steps, || {
                let _ = conv(x.clone(), w.clone()).sum().into_scalar::<f32>();
                Ok(())
            })?;
            let (both, _) = time(&ad, args.warmup, args.steps, || {
                let grads = conv(xa.clone(), wa.clone()).sum().backward();
                let _ = wa.grad(&grads).map(|g| g.sum().into_scalar::<f32>());
                Ok(())
            })?;
            ms.extend([1e3 * forward, 1e3 * both]);
        }
        println!(
            "{}",
            serde_json::json!({"bench": "conv", "conv": name, "batch": n, "count_in_encoder": count,
                "forward_ms": ms[0], "forward_backward_ms": ms[1],
                "burn_forward_ms": ms[2], "burn_forward_backward_ms": ms[3],
                "max_abs_diff_to_burn": diff})
        );
    }
    Ok(())
}

/// PGD-50 against a ResNet-50 classifier.
pub(super) fn pgd(args: &Args, dev: &Device) -> Result<(), BoxError> {
    let s = args.size;
    let ad = dev.clone().autodiff();
    let net = ResNetConfig::new(50)
        .with_num_classes(Some(1000))
        .init(&ad)?;
    let classifier = Normalized::new(net, Normalization::imagenet(), ad.clone());
    let n = args.pgd_batch;
    let images = ndarray::Array4::from_shape_fn((n, 3, s, s), |(i, c, y, x)| {
        (((i * 31 + c * 17 + y * 7 + x * 3) % 251) as f32) / 250.0
    });
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 1000).collect();
    let attack = Pgd::paper();
    let mut success = 0.0;
    let (per, warm) = time(&ad, 1, 1, || {
        let out = attack.attack(
            &classifier,
            images.view(),
            &labels,
            &Goal::Untargeted,
            &NoProgress,
        )?;
        success = out.success_rate();
        Ok(())
    })?;
    println!(
        "{}",
        serde_json::json!({"bench": "pgd-50 resnet50 f32", "batch": n, "size": s,
            "images_per_s": n as f64 / per, "seconds": per, "warmup_s": warm,
            "success_rate": success})
    );
    Ok(())
}
