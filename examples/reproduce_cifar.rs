//! The paper's experiments at CIFAR scale on real data (the layout of `../shared/data`): CIFAR-10 (JPEG) in
//! distribution, Tiny-ImageNet at 32 px as unseen classes, PGD / CW / FGSM against the pretrained ResNet-20.
//!
//! ```text
//! # the supervised-backbone variant: ResNet-20's 64-d features as the embedder
//! cargo run --release --example reproduce_cifar -- --data ../shared/data --encoder supervised
//! # a SimCLR encoder: a checkpoint folder of train_simclr / SimClrTrainer, or train one first
//! cargo run --release --example reproduce_cifar -- --data ../shared/data --encoder out/simclr-cifar
//! cargo run --release --example reproduce_cifar -- --data ../shared/data --train-epochs 100 \
//!     --train-minutes 60 --encoder out/simclr-cifar      # resumes from the folder if it holds a checkpoint
//! ```
//! Writes a Markdown report (`--markdown`, default `out/reproduce_cifar/results.md`) with the command line,
//! Table 1 style rejection rates (n = 50 … 2000: the same-source null, lossless vs JPEG CIFAR-10, CIFAR-10 vs
//! Tiny-ImageNet), Table 2 style small-set AUROCs (n = 3 … 20), Table 4/5 style CADet detection and m_in / m_out,
//! Figure 2 style AUROC against n_trs, and PNG figures beside it.
//!
//! Rules kept (see `../shared/data/README.md`): in-distribution calibration and test images and the attacked
//! images are all JPEG test images, disjoint; the lossless images appear only as the "subtle shift" side.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::prelude::*;
use cadet::attacks::{
    Attack, CarliniWagner, EotPgd, Fgsm, Goal, ImageEncoder, Pgd, SurrogateReference,
    SurrogateTerms,
};
use cadet::augment::simclr_train;
use cadet::data::Dataset;
use cadet::data::formats::{ImageFolder, cifar10_lossless, tiny_imagenet_val};
use cadet::detect::comparison::{compared_methods, headline_scores};
use cadet::detect::features_layout::FeaturesLayout;
use cadet::detect::{Cadet, EmbedderIdentity, Stream};
use cadet::model::{
    BurnEmbedder, CifarResNet, CifarResNetConfig, LarsConfig, Normalization, Normalized,
    ResNetConfig, SimClrConfig, SimClrTrainer, StopAfter, TrainConfig, ViewPairs,
    pretrained_weights,
};
use cadet::training::SimclrPairs;
use cadet_core::{Embedder, Progress};
use cadet_report::adaptive::{AdaptiveAttackTable, AttackedImages, score_by_each};
use cadet_report::paper_tables::{
    Scored, auroc_against_transforms, paper_calibration_at, small_set_table, two_sample_table,
};
use cadet_report::progress::{Lines, Notes};
use cadet_report::report::{CadetReport, cadet_pictures, compare_methods, push_feature_baselines};
use clap::Parser;
use ndarray::{Array2, Array3, Array4, Axis, s};

#[derive(Parser)]
#[command(about = "CADet and MMD-CC on CIFAR-10 vs Tiny-ImageNet and adversarial examples")]
struct Args {
    /// The data folder (layout of ../shared/data); defaults to $CADET_DATA.
    #[arg(long, env = "CADET_DATA")]
    data: PathBuf,
    /// `supervised` (ResNet-20's features), or a SimCLR checkpoint folder.
    #[arg(long, default_value = "supervised")]
    encoder: String,
    /// Train (or resume) SimCLR on the CIFAR-10 JPEG training set into `--encoder` for this many epochs of
    /// schedule first.
    #[arg(long)]
    train_epochs: Option<usize>,
    /// Time budget of that training in minutes, 0 to 525600 (it resumes on the next run).
    #[arg(long, default_value_t = 60.0, value_parser = cadet_report::cli::minutes, allow_negative_numbers = true)]
    train_minutes: f64,
    /// Device for training and embedding: cpu, or cuda / cuda:N (built with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// SimCLR batch size.
    #[arg(long, default_value_t = 256)]
    train_batch: usize,
    /// Images per tested set for CADet (in-distribution test, Tiny-ImageNet, each attack).
    #[arg(long, default_value_t = 500)]
    n_test: usize,
    /// |X(2)| (the paper: 2000).
    #[arg(long, default_value_t = 2000)]
    x2: usize,
    /// |X(1)|, CADet's reference (the paper: 300).
    #[arg(long, default_value_t = 300)]
    x1: usize,
    /// Transforms per X(1) image (default: --n-trs). The local statistics use each reference image's mean
    /// feature, which a few transforms estimate well: a large reference costs less this way.
    #[arg(long)]
    x1_trs: Option<usize>,
    /// Where X(1) comes from: `test` (held-out JPEG test images, the paper's) or `train` (JPEG training images).
    #[arg(long, default_value = "test")]
    reference: String,
    /// Nearest reference images averaged by the local statistics (local m_out, local cos).
    #[arg(long, default_value_t = 1)]
    k: usize,
    /// Extra unseen sets, `NAME=DIR`: a folder of class folders, or a Tiny-ImageNet-layout folder (`images/` and
    /// `val_annotations.txt`); resized to 32 × 32. Repeatable.
    #[arg(long = "ood", value_name = "NAME=DIR")]
    ood: Vec<String>,
    /// JPEG quality at which the unseen sets are re-encoded after resizing to 32 × 32, so that they pass through
    /// the same compression as the in-distribution CIFAR-10 JPEGs (quality 75); 0 keeps them as decoded.
    #[arg(long, default_value_t = 75, value_parser = clap::value_parser!(u8).range(0..=100))]
    ood_jpeg: u8,
    /// The largest number of CADet transforms (Figure 2 uses prefixes of them).
    #[arg(long, default_value_t = 50)]
    n_trs: usize,
    /// Repeats per Table 1 cell (the paper: 100).
    #[arg(long, default_value_t = 100)]
    repeats: usize,
    /// Trials per Table 2 cell (the paper: 500).
    #[arg(long, default_value_t = 200)]
    trials: usize,
    /// Largest Table 1 sample size.
    #[arg(long, default_value_t = 2000)]
    max_n: usize,
    /// Save the CADet features of X1, X2 and every scored set as (n, 1 + n_trs, d) .npy files here, each image's
    /// un-augmented view first (the input of the `detect` example, with `--identity-view`), and the single-view
    /// features the baselines use, (n, d), under `single/` (the sets, X2, and the k-NN training images as
    /// `knn_train.npy` with their labels as `knn_train_labels.npy`: X1's images with `--reference train`, 10,000
    /// training images otherwise); with the classifier baselines, their scores under `classifier/` (n, 3: ODIN,
    /// Hu et al.'s noise and boundary steps), for the `validity` example.
    #[arg(long)]
    save_features: Option<PathBuf>,
    /// Markdown report; figures go beside it.
    #[arg(long, default_value = "out/reproduce_cifar/results.md")]
    markdown: PathBuf,
    /// Leave out the ODIN and Hu et al. baselines (ResNet-20 forward and backward passes on X2 and every scored
    /// set: about 6-10 s per 100 images on 2 busy CPU cores, some 5-7 minutes in a default run).
    #[arg(long)]
    skip_classifier_baselines: bool,
    /// Seed of the split of the JPEG test images into X1, X2, the test set, the attacked images and the MMD pool
    /// (another seed, another split: for checking that a result is not one split's luck).
    #[arg(long, default_value_t = 11)]
    split_seed: u64,
    /// Attack the first N of the attacked images adaptively too (EOT-PGD through CADet's transforms, then with a
    /// surrogate of the headline's statistics on the embedder against X1; 4 transforms per step) and add the
    /// table: about 7 s per image on 2 busy cores. CPU only.
    #[arg(long, default_value_t = 0)]
    adaptive: usize,
}

type BoxError = Box<dyn std::error::Error>;
/// EOT transforms per image and step of the adaptive attacks (the library's default is 8; 4 halves the time).
const EOT_SAMPLES: usize = 4;

/// The data, decoded once.
struct Data {
    jpeg_train: Dataset,
    jpeg_test: Dataset,
    lossless: Dataset,
    tiny: Dataset,
    /// `--ood` sets, named.
    ood: Vec<(String, Dataset)>,
}

/// Images through a JPEG encoder at `quality` and back (RGB, 4:2:0 as the `image` crate writes it): the
/// in-distribution CIFAR-10 images are 32-pixel JPEGs of quality 75, and an unseen set that skipped that step
/// would differ by its compression alone (`../shared/data/README.md`).
fn jpeg_round_trip(data: &Dataset, quality: u8) -> Result<Dataset, BoxError> {
    if quality == 0 {
        return Ok(data.clone());
    }
    let rgb = data.to_rgb();
    let images = rgb.images();
    let (n, _, h, w) = images.dim();
    let mut out = ndarray::Array4::<u8>::zeros((n, 3, h, w));
    for i in 0..n {
        let mut pixels = Vec::with_capacity(h * w * 3);
        for y in 0..h {
            for x in 0..w {
                pixels.extend((0..3).map(|c| images[[i, c, y, x]]));
            }
        }
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality).encode(
            &pixels,
            w as u32,
            h as u32,
            image::ExtendedColorType::Rgb8,
        )?;
        let decoded =
            image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)?.to_rgb8();
        for (x, y, p) in decoded.enumerate_pixels() {
            for c in 0..3 {
                out[[i, c, y as usize, x as usize]] = p[c];
            }
        }
    }
    Ok(Dataset::new(
        out,
        rgb.labels().to_vec(),
        rgb.classes().to_vec(),
    )?)
}

/// An unseen set from `NAME=DIR`: Tiny-ImageNet layout when `DIR/val_annotations.txt` exists, class folders
/// otherwise; 32 × 32, RGB, re-encoded at `quality`.
fn load_ood(spec: &str, quality: u8) -> Result<(String, Dataset), BoxError> {
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
    Ok((name.to_string(), jpeg_round_trip(&data.to_rgb(), quality)?))
}

fn load(dir: &Path, args: &Args) -> Result<Data, BoxError> {
    let (lossless_train, lossless_test) = cifar10_lossless(dir.join("cifar10-lossless"))?;
    let lossless = Dataset::new(
        ndarray::concatenate(Axis(0), &[lossless_train.images(), lossless_test.images()])?,
        [lossless_train.labels(), lossless_test.labels()].concat(),
        lossless_train.classes().to_vec(),
    )?;
    Ok(Data {
        jpeg_train: ImageFolder::new(dir.join("cifar10-jpeg/train")).load()?,
        jpeg_test: ImageFolder::new(dir.join("cifar10-jpeg/test")).load()?,
        lossless,
        tiny: jpeg_round_trip(
            &tiny_imagenet_val(dir.join("tinyimagenet-val"), Some((32, 32)))?.to_rgb(),
            args.ood_jpeg,
        )?,
        ood: args
            .ood
            .iter()
            .map(|spec| load_ood(spec, args.ood_jpeg))
            .collect::<Result<_, _>>()?,
    })
}

/// SimCLR on the JPEG training set (ResNet-18, CIFAR stem; SimCLR's CIFAR augmentations: strength 0.5, no
/// blur), resuming from `dir` when it holds a checkpoint.
fn train_simclr(args: &Args, data: &Data, dir: &Path, progress: &Lines) -> Result<(), BoxError> {
    let device = cadet::model::device(&args.device)?;
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
    };
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
    Ok(())
}

/// The embedder the experiments use, and the same encoder on the autodiff device for the adaptive attacks'
/// surrogate.
type EmbedderAndSurrogate = (Box<dyn Embedder>, Box<dyn ImageEncoder>);

/// The embedder, and the same encoder on the autodiff device for the adaptive attacks' surrogate.
fn embedder(args: &Args, classifier: &CifarResNet) -> Result<EmbedderAndSurrogate, BoxError> {
    if args.encoder == "supervised" {
        let device = Device::flex();
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
                .with_batch_size(500),
            ),
            Box::new(surrogate),
        ));
    }
    let dir = Path::new(&args.encoder);
    let trainer = SimClrTrainer::resume(dir, &cadet::model::device(&args.device)?)?;
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
            .with_batch_size(256),
        ),
        Box::new(surrogate),
    ))
}

fn main() -> std::process::ExitCode {
    cadet_report::exit_code(run(Args::parse()))
}

fn run(args: Args) -> Result<(), BoxError> {
    let progress = Lines::new().with_notes(Notes::Containing("0 loss"));
    let out = args
        .markdown
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    std::fs::create_dir_all(&out).map_err(|e| {
        format!(
            "--markdown {}: cannot create its folder: {e}",
            args.markdown.display()
        )
    })?;
    cadet_report::cli::check_output_file("--markdown", &args.markdown, &[])?;
    if let Some(dir) = &args.save_features {
        cadet_report::cli::output_folder("--save-features", dir)?;
    }
    // The device named, even when the default supervised encoder does not use it: a typo is said at once.
    cadet::model::device(&args.device).map_err(|e| format!("--device: {e}"))?;
    if !matches!(args.reference.as_str(), "test" | "train") {
        return Err(format!("--reference: test or train, got {}", args.reference).into());
    }
    // Settings that would fail after the attacks and the MMD tables are checked first.
    for (flag, value) in [
        ("--repeats", args.repeats),
        ("--trials", args.trials),
        ("--max-n", args.max_n),
        ("--n-test", args.n_test),
        ("--x2", args.x2),
    ] {
        if value == 0 {
            return Err(format!("{flag}: at least 1, got 0").into());
        }
    }
    if args.x1 == 0 {
        return Err("--x1: at least 1 reference image (the paper: 300)".into());
    }
    // Table 1's smallest sample size is 50: a smaller --max-n would leave it empty.
    if args.max_n < 50 {
        return Err(format!(
            "--max-n: at least 50 (Table 1's sample sizes are 50, 100, … up to it), got {}",
            args.max_n
        )
        .into());
    }
    // Table 2 draws sets of up to 20 images from every scored set, each --n-test images.
    if args.n_test < 20 {
        return Err(format!(
            "--n-test: at least 20 (Table 2 draws sets of up to 20 from each scored set), got {}",
            args.n_test
        )
        .into());
    }
    if args.train_batch < 2 {
        return Err(format!(
            "--train-batch: at least 2 (NT-Xent needs another image's views as negatives), got {}",
            args.train_batch
        )
        .into());
    }
    // Unseen sets named well before any of them is loaded, each name once (the tables' rows).
    let mut ood_names = std::collections::HashSet::new();
    for spec in &args.ood {
        if let Some((name, _)) = spec.split_once('=')
            && !name.trim().is_empty()
        {
            cadet_report::cli::set_name(name).map_err(|e| format!("--ood {spec:?}: {e}"))?;
        }
        match spec.split_once('=') {
            Some((name, _)) if !ood_names.insert(name.trim()) => {
                return Err(
                    format!("--ood {spec:?}: the name {:?} is given twice", name.trim()).into(),
                );
            }
            Some((name, dir)) if !name.trim().is_empty() && Path::new(dir).is_dir() => {}
            _ => {
                return Err(format!(
                    "--ood {spec:?}: expected NAME=DIR with a name and an existing folder"
                )
                .into());
            }
        }
    }
    if args.k == 0 || args.k > args.x1 {
        return Err(format!("--k: 1 to --x1 ({}), got {}", args.x1, args.k).into());
    }
    // Every compared method must fit the reference: the headline's local m_in averages 50 reference images.
    for (name, method) in compared_methods(args.k) {
        let needed = method.reference_images_needed();
        if needed > args.x1 {
            return Err(format!(
                "--x1 {}: the method \"{name}\" averages {needed} reference images; use --x1 {needed} or more",
                args.x1
            )
            .into());
        }
    }
    Cadet::paper(32).n_trs(args.n_trs).check()?;
    Cadet::paper(32)
        .n_trs(args.x1_trs.unwrap_or(args.n_trs))
        .check()
        .map_err(|e| format!("--x1-trs: {e}"))?;
    // The sizes drawn from the JPEG test images, summed without overflow before any data is loaded (the data
    // set's own size is checked once it is loaded).
    let drawn = [
        if args.reference == "test" { args.x1 } else { 0 },
        args.x2,
        args.n_test,
        args.n_test,
    ]
    .iter()
    .try_fold(0usize, |a, &n| a.checked_add(n));
    if drawn.is_none() {
        return Err(format!(
            "--x1 {} (with --reference test) + --x2 {} + 2 × --n-test {}: more images than any data set holds",
            args.x1, args.x2, args.n_test
        )
        .into());
    }
    if args.adaptive > args.n_test {
        return Err(format!(
            "--adaptive {}: at most --n-test ({}) attacked images",
            args.adaptive, args.n_test
        )
        .into());
    }
    if args.adaptive > 0 && args.device != "cpu" {
        return Err(format!(
            "--adaptive: the attacked ResNet-20 runs on the CPU; give --device cpu (got {})",
            args.device
        )
        .into());
    }
    if args.adaptive > 0 && args.x1_trs.unwrap_or(args.n_trs) < 2 {
        return Err(
            "--adaptive: the surrogate's local m_in needs at least 2 transforms per X1 image"
                .into(),
        );
    }
    let data = load(&args.data, &args)?;
    eprintln!(
        "data: JPEG train {}, JPEG test {}, lossless {}, Tiny-ImageNet {}",
        data.jpeg_train.len(),
        data.jpeg_test.len(),
        data.lossless.len(),
        data.tiny.len()
    );
    if args.train_epochs.is_some() {
        train_simclr(&args, &data, Path::new(&args.encoder), &progress)?;
    }
    let resnet20 = CifarResNetConfig::new(20)
        .init(&Device::flex())?
        .load_safetensors(pretrained_weights(args.data.join("resnet-cifar10"), 20)?)?;
    let (embedder, surrogate_encoder) = embedder(&args, &resnet20)?;
    let mut md = String::new();
    writeln!(
        md,
        "# CIFAR-10 reproduction\n\nCommand: `cargo run --release --example reproduce_cifar -- {}`\n\nEmbedder: `{}` ({}-d). Device: `{}`, {} CPU threads.\n",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        embedder.name(),
        embedder.dim(),
        args.device,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    )?;

    // Disjoint JPEG test parts: X1 (unless it comes from the training images), X2, the CADet in-distribution
    // test set, the attacked images, and the rest as the MMD pool.
    let n = args.n_test;
    let x1_from_test = if args.reference == "test" { args.x1 } else { 0 };
    let used = x1_from_test + args.x2 + 2 * n;
    if used >= data.jpeg_test.len() {
        return Err(format!(
            "--x1 {} + --x2 {} + 2 × --n-test {n} leave no JPEG test image for the MMD pool",
            x1_from_test, args.x2
        )
        .into());
    }
    let parts = if x1_from_test > 0 {
        data.jpeg_test
            .split(&[x1_from_test, args.x2, n, n], args.split_seed)?
    } else {
        let mut parts = data.jpeg_test.split(&[args.x2, n, n], args.split_seed)?;
        parts.insert(0, data.jpeg_train.split(&[args.x1], 12)?.remove(0));
        parts
    };
    let mmd_pool_data = data
        .jpeg_test
        .split(&[used, data.jpeg_test.len() - used], args.split_seed)?
        .remove(1);
    let (x1, x2, test, to_attack) = (&parts[0], &parts[1], &parts[2], &parts[3]);

    // Adversarial examples against ResNet-20 (on the autodiff device: input gradients).
    let ad = Device::flex().autodiff();
    let target = Normalized::new(
        CifarResNetConfig::new(20)
            .init(&ad)?
            .load_safetensors(pretrained_weights(args.data.join("resnet-cifar10"), 20)?)?,
        Normalization::imagenet(),
        ad,
    );
    let attack_images = to_attack.images_f32();
    let mut adversarial: Vec<(String, Array4<f32>)> = Vec::new();
    writeln!(
        md,
        "## Attacks on ResNet-20 ({n} JPEG test images)\n\n| attack | clean acc | adversarial acc | success | mean L∞ | mean L2 |\n|---|---|---|---|---|---|"
    )?;
    let attacks: Vec<(&str, Box<dyn Attack>)> = vec![
        ("PGD", Box::new(Pgd::paper())),
        ("CW", Box::new(CarliniWagner::paper())),
        ("FGSM", Box::new(Fgsm::paper())),
    ];
    // PGD's per-image success and time, the adaptive-attack table's first row.
    let mut pgd = None;
    for (name, attack) in attacks {
        let t = Instant::now();
        let r = attack.attack(
            &target,
            attack_images.view(),
            to_attack.labels(),
            &Goal::Untargeted,
            &progress,
        )?;
        let (linf, l2) = r.mean_norms();
        writeln!(
            md,
            "| {} | {:.1}% | {:.1}% | {:.1}% | {linf:.4} | {l2:.4} |",
            attack.name(),
            100.0 * r.clean_accuracy(to_attack.labels()),
            100.0 * r.adversarial_accuracy(to_attack.labels()),
            100.0 * r.success_rate()
        )?;
        eprintln!("{name}: {:.0} s", t.elapsed().as_secs_f64());
        if name == "PGD" {
            pgd = Some((
                attack.name(),
                r.samples.iter().map(|s| s.success).collect::<Vec<bool>>(),
                t.elapsed().as_secs_f64(),
            ));
        }
        adversarial.push((name.to_string(), r.adversarial));
    }
    writeln!(md)?;

    // Single-view embeddings for the MMD tables.
    progress.start("embeddings for MMD", 0);
    let emb = |d: &Array4<f32>| embedder.embed(d.view());
    let jpeg_pool = emb(&mmd_pool_data.images_f32())?;
    let lossless_pool = emb(&data.lossless.images_f32())?;
    let tiny_pool = emb(&data.tiny.images_f32())?;
    two_sample_table(
        &mut md,
        &jpeg_pool,
        &lossless_pool,
        &tiny_pool,
        args.repeats,
        args.max_n,
        &progress,
    )?;
    let mut out_pools: Vec<(String, Array2<f32>)> = vec![("Tiny-ImageNet".into(), tiny_pool)];
    for (name, adv) in &adversarial {
        out_pools.push((name.clone(), emb(adv)?));
    }
    small_set_table(&mut md, &jpeg_pool, &out_pools, args.trials, &progress)?;

    // CADet: features once, each image's un-augmented view first (the headline uses it) and n_trs transforms;
    // then every prefix of the transforms for Figure 2.
    let cadet = Cadet::params(32)
        .n_trs(args.n_trs)
        .identity_view(true)
        .batch_images(32)
        .check()?;
    let tf = |images: &Array4<f32>, stream: Stream| {
        cadet.transform_features(embedder.as_ref(), images.view(), stream, &progress)
    };
    let x1_cadet = Cadet::params(32)
        .n_trs(args.x1_trs.unwrap_or(args.n_trs))
        .identity_view(true)
        .batch_images(32)
        .check()?;
    let f1 = x1_cadet.transform_features(
        embedder.as_ref(),
        x1.images_f32().view(),
        Stream::X1,
        &progress,
    )?;
    let f2 = tf(&x2.images_f32(), Stream::X2)?;
    let mut sets: Vec<(String, Array3<f32>)> = vec![
        (
            "CIFAR-10 test (in-distribution)".into(),
            tf(&test.images_f32(), Stream::Scored)?,
        ),
        (
            "Tiny-ImageNet (unseen classes)".into(),
            tf(
                &data.tiny.images_f32().slice(s![..n, .., .., ..]).to_owned(),
                Stream::Extra(0),
            )?,
        ),
    ];
    // Single-view features of the same images, for the baselines.
    let mut single: Vec<Array2<f32>> = vec![
        emb(&test.images_f32())?,
        emb(&data.tiny.images_f32().slice(s![..n, .., .., ..]).to_owned())?,
    ];
    for (i, (name, ood)) in data.ood.iter().enumerate() {
        let pick = ood.split(&[n.min(ood.len())], 13)?.remove(0).images_f32();
        sets.push((
            format!("{name} (unseen, --ood)"),
            tf(&pick, Stream::Extra(13 + i as u32))?,
        ));
        single.push(emb(&pick)?);
    }
    for (i, (name, adv)) in adversarial.iter().enumerate() {
        sets.push((
            format!("{name} adversarial"),
            tf(adv, Stream::Extra(1 + i as u32))?,
        ));
        single.push(emb(adv)?);
    }
    if let Some(dir) = &args.save_features {
        std::fs::create_dir_all(dir)?;
        cadet::data::formats::save_npy(&f1, dir.join("x1.npy"))?;
        cadet::data::formats::save_npy(&f2, dir.join("x2.npy"))?;
        for (i, (name, f)) in sets.iter().enumerate() {
            cadet::data::formats::save_npy(f, dir.join(set_file(i, name)))?;
        }
        FeaturesLayout {
            layout: cadet.settings().layout(),
            n_trs: args.n_trs,
        }
        .save(dir)?;
        eprintln!("transform features saved in {}", dir.display());
    }
    let identity = EmbedderIdentity::of(embedder.as_ref(), [3, 32, 32])?;
    let full = paper_calibration_at(&identity, &f1, &f2, &sets, args.n_trs)?;
    let report = CadetReport::new(&full.0, &full.1, 0.05)?;
    writeln!(
        md,
        "## CADet (Table 4/5 style), {} transforms\n\n```\n{report}```\n",
        args.n_trs
    )?;
    cadet_pictures(&out, &full.1)?;
    writeln!(
        md,
        "![ROC](roc.png) ![scores](scores.png)\n\n![m_in](m_in.png) ![m_out](m_out.png)\n"
    )?;
    auroc_against_transforms(&identity, &f1, &f2, &sets, args.n_trs, &out, &mut md)?;

    // The paper's method, the extensions and the baselines side by side on the same features.
    let named_views: Vec<(String, _)> = sets.iter().map(|(n, f)| (n.clone(), f.view())).collect();
    let (mut table, results) = compare_methods(
        &cadet,
        args.k,
        Some(&identity),
        f1.view(),
        f2.view(),
        &named_views,
        format!(
            "AUROC % [95% interval] against the CIFAR-10 test set ({n} images); last column: in-distribution \
             share with p ≤ α ('!': outside the 99% interval of a valid detector's count, calibration set's randomness included). CADet rows: {} transforms, \
             |X1| = {} ({} images), |X2| = {}",
            args.n_trs,
            f1.dim().0,
            if args.reference == "test" {
                "JPEG test"
            } else {
                "JPEG training"
            },
            f2.dim().0
        ),
        0.05,
    )?;
    // With a reference of training images the baselines use the same images as X1, so that k-NN and the CADet
    // rows compare at equal references; otherwise 10,000 training images.
    let knn_train = if args.reference == "train" {
        x1.clone()
    } else {
        data.jpeg_train
            .split(&[10_000.min(data.jpeg_train.len())], 14)?
            .remove(0)
    };
    let knn_label = if args.reference == "train" {
        format!("{} training images = X1", knn_train.len())
    } else {
        format!("{} training images", knn_train.len())
    };
    let single_views: Vec<_> = single[1..].iter().map(|f| f.view()).collect();
    let (knn_features, x2_single) = (emb(&knn_train.images_f32())?, emb(&x2.images_f32())?);
    push_feature_baselines(
        &mut table,
        &knn_label,
        (knn_features.view(), knn_train.labels()),
        x2_single.view(),
        single[0].view(),
        &single_views,
    )?;
    // ODIN and Hu et al. on the attacked ResNet-20 (`target`: input gradients), self-calibrated on X2; the sets
    // in the table's order (Tiny-ImageNet, --ood, the adversarial sets), rebuilt as above.
    if !args.skip_classifier_baselines {
        let started = Instant::now();
        let odin = cadet::attacks::Odin::paper();
        // 4 noisy copies, not 20: measured on 100 JPEG test images with 2 busy cores, ODIN 1.9 s, 20 copies 10 s,
        // steps 2.5 s (clean, mean 1.1 steps) to 5.6 s (PGD, mean 3.3); 4,500 images in a default run.
        let noise = cadet::attacks::NoiseRobustness {
            n_noise: 4,
            ..cadet::attacks::NoiseRobustness::hu()
        };
        let steps = cadet::attacks::BoundarySteps::new();
        let score = |images: &Array4<f32>| -> Result<_, BoxError> {
            Ok(cadet_report::report::ClassifierScores {
                odin: odin.scores(&target, images.view())?,
                noise: noise.scores(&target, images.view())?.l1_change,
                steps: steps.scores(&target, images.view())?,
            })
        };
        let mut others = vec![score(
            &data.tiny.images_f32().slice(s![..n, .., .., ..]).to_owned(),
        )?];
        for (_, ood) in &data.ood {
            others.push(score(
                &ood.split(&[n.min(ood.len())], 13)?.remove(0).images_f32(),
            )?);
        }
        for (_, adv) in &adversarial {
            others.push(score(adv)?);
        }
        if others.len() + 1 != sets.len() {
            return Err(format!(
                "internal: {} sets for {} columns",
                others.len(),
                sets.len() - 1
            )
            .into());
        }
        let (x2_scores, test_scores) = (score(&x2.images_f32())?, score(&test.images_f32())?);
        cadet_report::report::push_classifier_baselines(
            &mut table,
            &odin.name(),
            &x2_scores,
            &test_scores,
            &others,
        )?;
        if let Some(dir) = &args.save_features {
            // Per image, for the `validity` example: the same file names as the transform features.
            let dir = dir.join("classifier");
            std::fs::create_dir_all(&dir)?;
            let mut files = vec![
                ("x2.npy".to_string(), &x2_scores),
                (set_file(0, &sets[0].0), &test_scores),
            ];
            for (i, ((name, _), s)) in sets.iter().skip(1).zip(&others).enumerate() {
                files.push((set_file(i + 1, name), s));
            }
            for (file, s) in files {
                cadet::data::formats::save_npy(&s.to_columns()?, dir.join(file))?;
            }
            eprintln!("ODIN and Hu et al. scores saved in {}", dir.display());
        }
        eprintln!(
            "ODIN and Hu et al.: {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(dir) = &args.save_features {
        if single.len() != sets.len() {
            return Err(format!(
                "internal: {} single-view feature sets for {} scored sets",
                single.len(),
                sets.len()
            )
            .into());
        }
        let dir = dir.join("single");
        std::fs::create_dir_all(&dir)?;
        cadet::data::formats::save_npy(&knn_features, dir.join("knn_train.npy"))?;
        cadet::data::formats::save_npy(
            &ndarray::Array1::from(knn_train.labels().to_vec()),
            dir.join("knn_train_labels.npy"),
        )?;
        cadet::data::formats::save_npy(&x2_single, dir.join("x2.npy"))?;
        for (i, ((name, _), f)) in sets.iter().zip(&single).enumerate() {
            cadet::data::formats::save_npy(f, dir.join(set_file(i, name)))?;
        }
        eprintln!("single-view features saved in {}", dir.display());
    }
    let headline = headline_scores(&results)
        .ok_or("the headline method needs a reference of at least 50 images")?;
    let headline_sets: Vec<Scored> = sets
        .iter()
        .map(|(n, _)| n.clone())
        .zip(headline.scores.clone())
        .collect();
    writeln!(
        md,
        "## Detectors side by side (baselines: {knn_label} as k-NN neighbours and for the class means)\n\n\
         ```\n{table}```\n\nHeadline method (ours): {}, chosen on the quickstart's held-out shapes and six \
         synthetic CIFAR-10 anomaly sets (docs/results.md). Its table:\n\n```\n{}```\n",
        headline.name,
        CadetReport::new(&headline.calibration, &headline_sets, 0.05)?
    )?;

    if args.adaptive > 0 {
        let (pgd_name, pgd_success, pgd_seconds) = pgd.ok_or("PGD runs first")?;
        let first = args.adaptive;
        let pgd_set = sets
            .iter()
            .position(|(name, _)| name == "PGD adversarial")
            .ok_or("the PGD set is scored")?;
        let detectors = [
            (results[0].name.clone(), &results[0]),
            (format!("headline: {}", headline.name), headline),
        ];
        let mut adaptive = AdaptiveAttackTable::new(
            format!(
                "The first {first} attacked images, judged by the detectors above ({} transforms, |X1| = {}, \
                 |X2| = {}; clean side: the {n} in-distribution test images); EOT: {EOT_SAMPLES} transforms per \
                 step; the surrogate rewards the headline's statistics (λ = 1) on the embedder against X1. PGD's \
                 time is for all {n} attacked images.",
                args.n_trs,
                f1.dim().0,
                f2.dim().0
            ),
            detectors
                .iter()
                .map(|(name, m)| (name.clone(), m.scores[0].clone()))
                .collect(),
            0.05,
        )?;
        adaptive.push(&AttackedImages {
            attack: pgd_name,
            success: pgd_success[..first].to_vec(),
            scores: detectors
                .iter()
                .map(|(_, m)| m.scores[pgd_set][..first].to_vec())
                .collect(),
            seconds: pgd_seconds,
        })?;
        let calibrations = detectors.map(|(_, m)| &m.calibration);
        let images = attack_images.slice(s![..first, .., .., ..]);
        adaptive.push_eot_attacks(
            &target,
            surrogate_encoder.as_ref(),
            SurrogateReference::from_features(f1.view())?,
            SurrogateTerms::headline(),
            &EotPgd {
                samples: EOT_SAMPLES,
                batch_size: 20,
                ..EotPgd::paper()
            },
            images,
            &to_attack.labels()[..first],
            |adversarial, i| {
                score_by_each(
                    &calibrations,
                    tf(adversarial, Stream::Extra(40 + i as u32))?.view(),
                )
            },
            &progress,
        )?;
        writeln!(md, "## Adaptive attacks\n\n{adaptive}")?;
    }

    writeln!(md, "Run time: {:.0} s.", progress.elapsed())?;
    cadet_core::io::write_atomic(&args.markdown, md.as_bytes())?;
    print!("{md}");
    eprintln!("report: {}", args.markdown.display());
    Ok(())
}

/// The `.npy` file name of scored set `i` called `name`: `3_blur.npy` for "blur (unseen, --ood)".
fn set_file(i: usize, name: &str) -> String {
    let stem: String = name
        .split(" (")
        .next()
        .unwrap_or(name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{i}_{stem}.npy")
}
