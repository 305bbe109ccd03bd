//! The data sets, decoded once; SimCLR training on them; the embedder the experiments use.

use std::path::Path;
use std::time::Duration;

use burn::prelude::*;
use cadet::attacks::ImageEncoder;
use cadet::augment::simclr_train;
use cadet::data::Dataset;
use cadet::data::formats::{ImageFolder, cifar10_lossless, tiny_imagenet_val};
use cadet::detect::Stream;
use cadet::model::{
    BurnEmbedder, CifarResNet, LarsConfig, Normalization, Normalized, ResNetConfig, SimClrConfig,
    SimClrTrainer, StopAfter, TrainConfig, ViewPairs,
};
use cadet::training::SimclrPairs;
use cadet_core::Embedder;
use cadet_report::progress::Lines;
use ndarray::{Array4, Axis, s};

use super::{Args, BoxError};

/// Images through a JPEG encoder at `quality` and back, as RGB: the in-distribution CIFAR-10 images are
/// 32-pixel JPEGs of quality 75, and an unseen set that skipped that step would differ by its compression
/// alone (`../shared/data/README.md`); quality 0 keeps them as decoded.
fn jpeg_round_trip(data: &Dataset, quality: u8) -> Result<Dataset, BoxError> {
    Ok(if quality == 0 {
        data.to_rgb()
    } else {
        data.jpeg_round_trip(quality)?
    })
}

/// The data, decoded once.
pub(super) struct Data {
    pub jpeg_train: Dataset,
    pub jpeg_test: Dataset,
    pub lossless: Dataset,
    pub tiny: Dataset,
    /// `--ood` sets, named.
    pub ood: Vec<(String, Dataset)>,
}

/// An unseen set from `NAME=DIR`: Tiny-ImageNet layout when `DIR/val_annotations.txt` exists, class folders
/// otherwise; 32 × 32, RGB, re-encoded at `quality`. A set that shares images with the in-distribution ones
/// (`seen`, named), half of it or more, is refused (it is no unseen set: the in-distribution test folder given
/// as `--ood` scored X1's and X2's own images as anomalies); fewer shared images are said.
fn load_ood(
    spec: &str,
    quality: u8,
    seen: &[(&str, &Dataset)],
) -> Result<(String, Dataset), BoxError> {
    let (name, dir) = spec
        .split_once('=')
        .ok_or_else(|| format!("--ood: expected NAME=DIR, got {spec:?}"))?;
    let (name, dir) = (name.trim(), Path::new(dir));
    let data = if dir.join("val_annotations.txt").exists() {
        tiny_imagenet_val(dir, Some((32, 32)))?
    } else {
        ImageFolder::new(dir).resize(32, 32).load()?
    };
    if data.len() < 2 {
        return Err(format!(
            "--ood {name}: {} image(s) in {}; a set needs at least 2 (AUROC, variances)",
            data.len(),
            dir.display()
        )
        .into());
    }
    for (seen_name, seen) in seen {
        let shared = seen.images_in(&data);
        if 2 * shared >= data.len() {
            return Err(format!(
                "--ood {name}: {shared} of its {} images are images of {seen_name}: an unseen set must be other \
                 images than the in-distribution ones",
                data.len()
            )
            .into());
        }
        if shared > 0 {
            eprintln!(
                "warning: --ood {name}: {shared} of its {} images are images of {seen_name}",
                data.len()
            );
        }
    }
    Ok((name.to_string(), jpeg_round_trip(&data, quality)?))
}

pub(super) fn load(dir: &Path, args: &Args) -> Result<Data, BoxError> {
    let (lossless_train, lossless_test) = cifar10_lossless(dir.join("cifar10-lossless"))?;
    let lossless = Dataset::new(
        ndarray::concatenate(Axis(0), &[lossless_train.images(), lossless_test.images()])?,
        [lossless_train.labels(), lossless_test.labels()].concat(),
        lossless_train.classes().to_vec(),
    )?;
    let jpeg_train = cadet::data::formats::cifar10_folder(dir.join("cifar10-jpeg/train"))?;
    let jpeg_test = cadet::data::formats::cifar10_folder(dir.join("cifar10-jpeg/test"))?;
    let seen = [
        ("the JPEG training set", &jpeg_train),
        ("the JPEG test set", &jpeg_test),
        ("the lossless CIFAR-10 images", &lossless),
    ];
    let ood = args
        .ood
        .iter()
        .map(|spec| load_ood(spec, args.ood_jpeg, &seen))
        .collect::<Result<_, _>>()?;
    Ok(Data {
        jpeg_train,
        jpeg_test,
        lossless,
        tiny: jpeg_round_trip(
            &tiny_imagenet_val(dir.join("tinyimagenet-val"), Some((32, 32)))?,
            args.ood_jpeg,
        )?,
        ood,
    })
}

/// SimCLR on the JPEG training set (ResNet-18, CIFAR stem; SimCLR's CIFAR augmentations: strength 0.5, no
/// blur), resuming from `dir` when it holds a checkpoint.
pub(super) fn train_simclr(
    args: &Args,
    data: &Data,
    dir: &Path,
    progress: &Lines,
) -> Result<(), BoxError> {
    let device = cadet::model::device(&args.device.device)?;
    let mut pipeline = simclr_train(32, 0.5);
    pipeline.blur.p = 0.0;
    let source = SimclrPairs {
        images: data.jpeg_train.images_f32(),
        pipeline,
    };
    let epochs = args.train_epochs.unwrap_or(100);
    let mut trainer = if dir.join("latest").exists() {
        SimClrTrainer::resume(dir, &device)?
    } else {
        let model = SimClrConfig::new(ResNetConfig::new(18).with_cifar_stem(true).into())
            .with_hidden(512)
            .with_output(128);
        let config = TrainConfig::new(args.train_batch, epochs, LarsConfig::new())
            .with_warmup_epochs(epochs as f64 / 20.0)
            .with_temperature(0.5);
        SimClrTrainer::new(
            model,
            config,
            Normalization::imagenet(),
            &device,
            source.len(),
        )?
    }
    .with_precision(args.precision.precision)?;
    trainer.train(
        &source,
        progress,
        StopAfter {
            steps: None,
            time: Some(Duration::from_secs_f64(args.train_minutes * 60.0)),
        },
        Some((dir, 200)),
    )?;
    eprintln!(
        "SimCLR: step {} of {}, last loss {:.3}",
        trainer.state().step,
        trainer.total_steps(),
        trainer.state().losses.last().copied().unwrap_or(f32::NAN)
    );
    eprintln!("{}", trainer.waits().summary());
    Ok(())
}

/// The embedder the experiments use, and the same encoder on the autodiff device for the adaptive attacks'
/// surrogate.
pub(super) type EmbedderAndSurrogate = (Box<dyn Embedder>, Box<dyn ImageEncoder>);

/// The embedder, and the same encoder on the autodiff device for the adaptive attacks' surrogate.
pub(super) fn embedder(
    args: &Args,
    classifier: &CifarResNet,
) -> Result<EmbedderAndSurrogate, BoxError> {
    if args.encoder == "supervised" {
        let device = cadet::model::device(&args.device.device)?;
        let net: CifarResNet = classifier.clone();
        let surrogate = Normalized::new(
            net.clone().to_device(&device.clone().autodiff()),
            Normalization::imagenet(),
            device.clone().autodiff(),
        );
        return Ok((
            Box::new(
                BurnEmbedder::new(
                    net,
                    device,
                    Normalization::imagenet(),
                    "resnet20-cifar10-supervised",
                )
                .with_batch_size(500)
                .with_precision(args.precision.precision)?,
            ),
            Box::new(surrogate),
        ));
    }
    let dir = Path::new(&args.encoder);
    let trainer = SimClrTrainer::resume(dir, &cadet::model::device(&args.device.device)?)?;
    let encoder = trainer.model().encoder.clone();
    let device = encoder
        .devices()
        .into_iter()
        .next()
        .ok_or("the encoder has no parameters")?;
    let surrogate = Normalized::new(encoder.clone(), trainer.normalization(), device.clone());
    Ok((
        Box::new(
            BurnEmbedder::new(
                encoder,
                device,
                trainer.normalization(),
                format!("simclr:{}@{}", dir.display(), trainer.state().step),
            )
            .with_batch_size(256)
            .with_precision(args.precision.precision)?,
        ),
        Box::new(surrogate),
    ))
}

/// The JPEG test images in disjoint parts (and X1 from the training images with `--reference train`).
pub(super) struct Parts {
    /// The reference X1.
    pub x1: Dataset,
    /// CADet's X2.
    pub x2: Dataset,
    /// The in-distribution test set.
    pub test: Dataset,
    /// The images the attacks start from.
    pub to_attack: Dataset,
    /// The rest, the MMD tables' in-distribution pool.
    pub mmd_pool: Dataset,
}

impl Data {
    /// The parts of one run, drawn with `--split-seed`.
    pub(super) fn split(&self, args: &Args) -> Result<Parts, BoxError> {
        // Disjoint JPEG test parts: X1 (unless it comes from the training images), X2, the CADet in-distribution
        // test set, the attacked images, and the rest as the MMD pool.
        let n = args.n_test;
        let x1_from_test = if args.reference == "test" { args.x1 } else { 0 };
        let used = x1_from_test + args.x2 + 2 * n;
        if used >= self.jpeg_test.len() {
            return Err(format!(
                "--x1 {} + --x2 {} + 2 × --n-test {n} leave no JPEG test image for the MMD pool",
                x1_from_test, args.x2
            )
            .into());
        }
        let parts = if x1_from_test > 0 {
            self.jpeg_test
                .split(&[x1_from_test, args.x2, n, n], args.split_seed)?
        } else {
            let mut parts = self.jpeg_test.split(&[args.x2, n, n], args.split_seed)?;
            parts.insert(0, self.jpeg_train.split(&[args.x1], 12)?.remove(0));
            parts
        };
        let mmd_pool = self
            .jpeg_test
            .split(&[used, self.jpeg_test.len() - used], args.split_seed)?
            .remove(1);
        let mut parts = parts.into_iter();
        let mut next = || parts.next().ok_or("internal: four parts");
        Ok(Parts {
            x1: next()?,
            x2: next()?,
            test: next()?,
            to_attack: next()?,
            mmd_pool,
        })
    }
}

/// A scored set after the in-distribution test set: its name, its views' stream, its images.
pub(super) type OtherSet = (String, Stream, Array4<f32>);

/// The scored sets after the in-distribution test set, in the tables' order: Tiny-ImageNet, the `--ood` sets,
/// the adversarial sets; `n` images each (fewer where a set holds fewer).
pub(super) fn other_sets(
    data: &Data,
    n: usize,
    adversarial: &[(String, Array4<f32>)],
) -> Result<Vec<OtherSet>, BoxError> {
    let mut sets = vec![(
        "Tiny-ImageNet (unseen classes)".to_string(),
        Stream::Extra(0),
        data.tiny.images_f32().slice(s![..n, .., .., ..]).to_owned(),
    )];
    for (i, (name, ood)) in data.ood.iter().enumerate() {
        sets.push((
            format!("{name} (unseen, --ood)"),
            Stream::Extra(13 + i as u32),
            ood.split(&[n.min(ood.len())], 13)?.remove(0).images_f32(),
        ));
    }
    for (i, (name, adv)) in adversarial.iter().enumerate() {
        sets.push((
            format!("{name} adversarial"),
            Stream::Extra(1 + i as u32),
            adv.clone(),
        ));
    }
    Ok(sets)
}
