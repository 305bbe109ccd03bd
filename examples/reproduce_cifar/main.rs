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

mod adaptive;
mod attacks;
mod baselines;
mod checks;
mod data;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cadet::detect::FeatureFolder;
use cadet::detect::comparison::headline_scores;
use cadet::detect::{Cadet, EmbedderIdentity, Stream};
use cadet::model::{CifarResNetConfig, Normalization, Normalized, pretrained_weights};
use cadet_core::Progress;
use cadet_report::device::{DeviceArgs, PrecisionArg};
use cadet_report::paper_tables::{
    Scored, auroc_against_transforms, paper_calibration_at, small_set_table, two_sample_table,
};
use cadet_report::progress::{Lines, Notes};
use cadet_report::report::{CadetReport, cadet_pictures, compare_methods, push_feature_baselines};
use clap::Parser;
use ndarray::{Array2, Array3, Array4};

use baselines::set_file;
use data::{Parts, embedder, load, other_sets, train_simclr};

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
    /// Device for training, embedding and the attacks.
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    precision: PrecisionArg,
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
    /// Repeats per Table 1 cell (the paper: 100; 1 to 100,000).
    #[arg(long, default_value_t = 100, value_parser = cadet_report::cli::count_between(1, 100_000))]
    repeats: usize,
    /// Trials per Table 2 cell (the paper: 500; 1 to 100,000).
    #[arg(long, default_value_t = 200, value_parser = cadet_report::cli::count_between(1, 100_000))]
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

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(Args::parse()))
}

fn run(args: Args) -> Result<(), BoxError> {
    let progress = Lines::new().with_notes(Notes::Containing("0 loss"));
    let out = checks::check_outputs(&args)?;
    checks::check_args(&args)?;
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
    let device = cadet::model::device(&args.device.device)?;
    let resnet20 = CifarResNetConfig::new(20)
        .init(&device)?
        .load_safetensors(pretrained_weights(args.data.join("resnet-cifar10"), 20)?)?;
    let (embedder, surrogate_encoder) = embedder(&args, &resnet20)?;
    let mut md = String::new();
    writeln!(
        md,
        "# CIFAR-10 reproduction\n\nCommand: `cargo run --release --example reproduce_cifar -- {}`\n\nEmbedder: `{}` ({}-d). Device: `{}`, {} CPU threads.\n",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        embedder.name(),
        embedder.dim(),
        args.device.device,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    )?;

    let n = args.n_test;
    let Parts {
        x1,
        x2,
        test,
        to_attack,
        mmd_pool: mmd_pool_data,
    } = &data.split(&args)?;

    // Adversarial examples against ResNet-20 (on the autodiff device: input gradients).
    let ad = device.autodiff();
    let target = Normalized::new(
        CifarResNetConfig::new(20)
            .init(&ad)?
            .load_safetensors(pretrained_weights(args.data.join("resnet-cifar10"), 20)?)?,
        Normalization::imagenet(),
        ad,
    );
    let attack_images = to_attack.images_f32();
    let (adversarial, pgd) = attacks::attack_all(
        &target,
        (attack_images.view(), to_attack.labels()),
        &progress,
        &mut md,
    )?;

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
    // The scored sets after the in-distribution test set, in the tables' order, with their streams.
    let others = other_sets(&data, n, &adversarial)?;
    let mut sets: Vec<(String, Array3<f32>)> = vec![(
        "CIFAR-10 test (in-distribution)".into(),
        tf(&test.images_f32(), Stream::Scored)?,
    )];
    // Single-view features of the same images, for the baselines.
    let mut single: Vec<Array2<f32>> = vec![emb(&test.images_f32())?];
    for (name, stream, images) in &others {
        sets.push((name.clone(), tf(images, *stream)?));
        single.push(emb(images)?);
    }
    if let Some(dir) = &args.save_features {
        let folder = FeatureFolder::create(dir, cadet.settings().layout(), args.n_trs)?;
        folder.save_reference(f1.view())?;
        folder.save("x2", f2.view())?;
        for (i, (name, f)) in sets.iter().enumerate() {
            folder.save(&set_file(i, name), f.view())?;
        }
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
    // ODIN and Hu et al. on the attacked ResNet-20 (`target`: input gradients), self-calibrated on X2.
    if !args.skip_classifier_baselines {
        baselines::classifier_baselines(&args, &target, (x2, test), &others, &sets, &mut table)?;
    }
    if let Some(dir) = &args.save_features {
        baselines::save_single_views(dir, (&knn_features, &knn_train), &x2_single, &sets, &single)?;
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
        let table = adaptive::adaptive_table(
            &args,
            adaptive::Inputs {
                pgd,
                sets: &sets,
                results: &results,
                headline,
                reference: &f1,
                x2_images: f2.dim().0,
                attacked: (attack_images.view(), to_attack.labels()),
                target: &target,
                surrogate: surrogate_encoder.as_ref(),
                tf: &tf,
                progress: &progress,
            },
        )?;
        writeln!(md, "## Adaptive attacks\n\n{table}")?;
    }

    writeln!(md, "Run time: {:.0} s.", progress.elapsed())?;
    cadet_core::io::write_atomic(&args.markdown, md.as_bytes())?;
    print!("{md}");
    eprintln!("report: {}", args.markdown.display());
    Ok(())
}
