//! The two networks the quickstart trains on the seen shapes: the SimCLR encoder and the supervised classifier
//! the attacks target.

use burn::prelude::*;
use cadet::augment::simclr_train;
use cadet::data::Dataset;
use cadet::model::{
    InMemory, LarsConfig, Normalization, Normalized, ResNetConfig, SimClrConfig, SimClrTrainer,
    StopAfter, SupervisedConfig, TrainConfig, ViewPairs, train_supervised,
};
use cadet::training::SimclrPairs;
use cadet_report::progress::Lines;

use super::{Args, BoxError};

/// The encoder and classifier layout: ResNet-18 blocks, ImageNet stem (32 px → 8 × 8 after the stem), base
/// width 16 (256-d features).
pub(super) fn resnet(args: &Args) -> ResNetConfig {
    ResNetConfig::new(18)
        .with_cifar_stem(args.cifar_stem)
        .with_base_width(args.base_width)
}

/// SimCLR on `train`: batch 128, LARS (peak lr 0.8, square-root scaling for small batches), temperature 0.2,
/// crops of 25–100% of the image, strong colour jitter, no blur at 32 px.
pub(super) fn train_simclr(
    args: &Args,
    train: &Dataset,
    device: &Device,
    progress: &Lines,
) -> Result<cadet::model::Encoder, BoxError> {
    let mut pipeline = simclr_train(args.size, 1.0);
    pipeline.crop = pipeline.crop.with_scale(0.25, 1.0);
    pipeline.blur.p = 0.0;
    let source = SimclrPairs {
        images: train.images_f32(),
        pipeline,
    };
    let batch = 128;
    let per_epoch = (source.len() / batch) as u64;
    let steps = args.simclr_steps;
    let epochs = steps.div_ceil(per_epoch).max(1) as usize;
    let model = SimClrConfig::new(resnet(args).into())
        .with_hidden(256)
        .with_output(64);
    let config = TrainConfig::new(batch, epochs, LarsConfig::new())
        .with_base_lr(Some(0.8))
        .with_temperature(0.2)
        .with_warmup_epochs(1.0);
    let mut trainer = SimClrTrainer::new(
        model,
        config,
        Normalization::identity(),
        device,
        source.len(),
    )?
    .with_precision(args.precision.precision)?;
    trainer.train(
        &source,
        progress,
        StopAfter {
            steps: Some(steps),
            time: None,
        },
        None,
    )?;
    let losses = &trainer.state().losses;
    eprintln!(
        "[{:>5.0}s] SimCLR: {} steps, loss {:.3} → {:.3}",
        progress.elapsed(),
        losses.len(),
        losses.first().copied().unwrap_or(f32::NAN),
        losses.last().copied().unwrap_or(f32::NAN)
    );
    eprintln!(
        "[{:>5.0}s] {}",
        progress.elapsed(),
        trainer.waits().summary()
    );
    Ok(trainer.model().encoder.clone())
}

/// The supervised classifier on `train`, on the autodiff device (attacks need input gradients).
pub(super) fn train_classifier(
    args: &Args,
    train: &Dataset,
    device: &Device,
    progress: &Lines,
) -> Result<Normalized<cadet::model::ResNet>, BoxError> {
    let device = device.clone().autodiff();
    device.seed(5);
    let net = resnet(args)
        .with_num_classes(Some(train.classes().len()))
        .init(&device)?;
    let data = InMemory {
        images: train.images_f32(),
        labels: train.labels().to_vec(),
    };
    let config = SupervisedConfig::new(128, args.classifier_epochs)
        .with_lr(0.1)
        .with_seed(5);
    let (net, losses) =
        train_supervised(net, &data, &config, &Normalization::identity(), progress)?;
    eprintln!(
        "[{:>5.0}s] classifier: {} steps, loss {:.3} → {:.3}",
        progress.elapsed(),
        losses.len(),
        losses.first().copied().unwrap_or(f32::NAN),
        losses.last().copied().unwrap_or(f32::NAN)
    );
    Ok(Normalized::new(net, Normalization::identity(), device))
}
