//! The whole method on a fresh machine, no download: README's first command (on the CPU; `--device cuda:0` runs
//! the training, the attacks and the embeddings on a GPU in a `--features cuda` build).
//!
//! ```text
//! cargo run --release --example quickstart [-- --out out/quickstart] [--simclr-steps 3000]
//!     [--size 32] [--base-width 16] [--cifar-stem] [--held-out 8,9] [--reference train|x1] [--k 1]
//!     [--save-features DIR] [--adaptive] [--device cpu|cuda:0] [--tune-cache DIR]
//! ```
//!
//! 1. The synthetic shapes of cadet-data (plain style, grayscale, 32 px): 8 shapes in distribution, 2 held out.
//! 2. Trains a small SimCLR encoder (ResNet-18 layout, ImageNet stem, base width 16) on the 8 shapes.
//! 3. Trains a small supervised classifier (same layout) on the same images and labels.
//! 4. Attacks the classifier on in-distribution test images with PGD, CW and FGSM.
//! 5. Computes CADet's features (each image's un-augmented view, then its transforms) of the reference X1 (the
//!    training images, or 100 held-out images with `--reference x1`), of X2 and of every scored set once;
//!    calibrates the paper's method and the extensions (local m_out, local cos, local m_in, feature norm, view
//!    agreement, identity cos; weighted sums, Fisher, min p) on them; prints the paper's table, the headline
//!    method's table (Fisher of local m_in two-sided, local cos and identity cos at k = 1 and 10, and view
//!    agreement), the share of MMD-CC two-sample tests that reject on sets of 20, and every method beside two
//!    baselines (k-NN, Mahalanobis) with AUROC intervals.
//! 6. Writes ROC curves and histograms (PNG) and, last, the headline calibration into `--out`.
//! 7. With `--adaptive`: attacks the classifier again as an attacker who knows the detector would (EOT-PGD
//!    through CADet's transforms; then also rewarded by a differentiable surrogate of the headline's statistics
//!    on the SimCLR encoder, against the same reference) and prints how often each detector still catches it
//!    (`adaptive_attack.md` in `--out`).
//!
//! Everything is seeded: the same command prints the same table on the same machine.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

mod adaptive;
mod attacks;
mod checks;
mod mmd;
mod training;

use std::path::PathBuf;

use cadet::data::{SHAPES, Synthetic, save_grid};
use cadet::detect::FeatureFolder;
use cadet::detect::comparison::headline_scores;
use cadet::detect::{Cadet, EmbedderIdentity, ImageScore, Stream};
use cadet::model::{BurnEmbedder, Normalization, Normalized, accuracy};
use cadet_core::Embedder;
use cadet_report::device::{DeviceArgs, PrecisionArg};
use cadet_report::progress::{Lines, Notes};
use cadet_report::report::{CadetReport, cadet_pictures, compare_methods, push_feature_baselines};
use clap::Parser;
use ndarray::{Array3, Array4, s};

use training::{train_classifier, train_simclr};

#[derive(Parser)]
#[command(about = "CADet end to end on synthetic shapes: SimCLR, a classifier, attacks, detection")]
struct Args {
    /// Output folder (pictures, adversarial examples, calibration).
    #[arg(long, default_value = "out/quickstart")]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    precision: PrecisionArg,
    /// SimCLR optimizer steps (batch 128). 3000 since the CPU kernels of issue 14 (docs/performance.md): the
    /// same time as 1500 took before, a better encoder (MMD-CC power on held-out shapes 14% → 40%).
    #[arg(long, default_value_t = 3000)]
    simclr_steps: u64,
    /// Supervised epochs.
    #[arg(long, default_value_t = 3)]
    classifier_epochs: usize,
    /// CADet transforms per image.
    #[arg(long, default_value_t = 20)]
    n_trs: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// ResNet base width (torchvision: 64).
    #[arg(long, default_value_t = 16)]
    base_width: usize,
    /// CIFAR stem (3 × 3, stride 1, no max-pool: full resolution, slower) instead of the ImageNet stem.
    #[arg(long)]
    cifar_stem: bool,
    /// Level α of the p-value test.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// The held-out shapes, as indices into cadet-data's `SHAPES` (0 disk … 7 ell, 8 crescent, 9 pair).
    #[arg(long, value_delimiter = ',', default_value = "8,9")]
    held_out: Vec<u32>,
    /// CADet's reference X1: `train` (the training images; local m_out compares with the nearest of them) or
    /// `x1` (100 held-out images, the paper's X1).
    #[arg(long, default_value = "train")]
    reference: String,
    /// Nearest reference images averaged by the local statistics (local m_out, local cos).
    #[arg(long, default_value_t = 1)]
    k: usize,
    /// Save the features of X1, X2 and every scored set as (n, 1 + n_trs, d) .npy files here, each image's
    /// un-augmented view first (the input of the `detect` example, with `--identity-view`), 2400 more
    /// in-distribution images as `pool.npy` and the training images' single-view features and labels under
    /// `single/` (the input of the `validity` example).
    #[arg(long)]
    save_features: Option<PathBuf>,
    /// Also run the adaptive attacks (EOT-PGD, and EOT-PGD with a surrogate of the headline's statistics) on
    /// the test images and print their table; adds about 10 minutes on 2 cores.
    #[arg(long)]
    adaptive: bool,
}
const TRAIN_PER_CLASS: usize = 500;
const TEST_IMAGES: usize = 200;
/// Extra in-distribution images per seen shape saved as `pool.npy` with `--save-features`.
const VALIDITY_POOL_PER_CLASS: usize = 300;

type BoxError = Box<dyn std::error::Error>;

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(Args::parse()))
}

fn run(args: Args) -> Result<(), BoxError> {
    checks::check_args(&args)?;
    let held_out = &args.held_out;
    let progress = Lines::new().with_notes(Notes::Every(50));

    // 1. Data. Grayscale: colour is the first shortcut a small contrastive encoder learns, and shapes are the
    //    point here.
    let all = Synthetic {
        classes: SHAPES.len(),
        per_class: TRAIN_PER_CLASS + 100,
        size: args.size,
        seed: 0,
        plain: true,
    }
    .generate()?
    .to_grayscale();
    let seen = all.without_classes(held_out);
    let n_seen = SHAPES.len() - held_out.len();
    let parts = seen.split(&[n_seen * TRAIN_PER_CLASS, 100, 200, 100, TEST_IMAGES], 1)?;
    let (train, x1, x2, mmd_pool, test) = (&parts[0], &parts[1], &parts[2], &parts[3], &parts[4]);
    let unseen = all
        .with_classes(held_out)
        .split(&[TEST_IMAGES], 2)?
        .remove(0);
    let held: Vec<&str> = held_out.iter().map(|&c| SHAPES[c as usize]).collect();
    eprintln!(
        "data: {} training images of {} shapes, held out: {}",
        train.len(),
        SHAPES.len() - held_out.len(),
        held.join(", ")
    );
    save_grid(
        train.images_f32().slice(s![..32, .., .., ..]),
        16,
        args.out.join("training_images.png"),
    )?;

    // 2. SimCLR.
    let device = args.device.open()?;
    let encoder = train_simclr(&args, train, &device, &progress)?;
    // The encoder lives on the autodiff device it was trained on; the embedder freezes it (inference mode).
    let embedder = BurnEmbedder::new(
        encoder.clone(),
        device.clone().autodiff(),
        Normalization::identity(),
        format!("quickstart-simclr-{}", args.simclr_steps),
    )
    .with_batch_size(256)
    .with_precision(args.precision.precision)?;

    // 3. The supervised classifier (the attacks' target).
    let classifier = train_classifier(&args, train, &device, &progress)?;

    // 4. Attacks on the in-distribution test images.
    let test_images = test.images_f32();
    let labels = test.labels();
    let clean_accuracy = accuracy(&classifier, test_images.view(), labels, 200)?;
    println!(
        "classifier accuracy on the in-distribution test set: {:.1}%",
        100.0 * clean_accuracy
    );
    let (attacked, pgd) = attacks::attack_all(
        &classifier,
        (test_images.view(), labels),
        &args.out,
        &progress,
    )?;

    // 5. CADet: the transform features of every set once, then the paper's method and the extensions side by
    //    side on the same features.
    // With each image's un-augmented view first: the headline's identity cos and view agreement use it.
    let cadet = Cadet::params(args.size)
        .n_trs(args.n_trs)
        .identity_view(true)
        .batch_images(64)
        .check()?;
    let tf = |images: &Array4<f32>, stream: Stream| {
        cadet.transform_features(&embedder, images.view(), stream, &progress)
    };
    // X1, the reference: the training images themselves (`--reference train`, the default: local m_out then
    // compares an image with its nearest training images) or 100 held-out images (the paper's X1).
    let f1 = match args.reference.as_str() {
        "train" => tf(&train.images_f32(), Stream::X1)?,
        "x1" => tf(&x1.images_f32(), Stream::X1)?,
        _ => unreachable!("checked at the start"),
    };
    let f2 = tf(&x2.images_f32(), Stream::X2)?;
    let mut named: Vec<(String, Array3<f32>)> = vec![
        (
            "in-distribution test".into(),
            tf(&test_images, Stream::Scored)?,
        ),
        (
            format!("held-out shapes ({})", held.join(", ")),
            tf(&unseen.images_f32(), Stream::Scored)?,
        ),
    ];
    for (name, adversarial) in &attacked {
        named.push((
            format!("{name} adversarial"),
            tf(adversarial, Stream::Scored)?,
        ));
    }
    if let Some(dir) = &args.save_features {
        let folder = FeatureFolder::create(dir, cadet.settings().layout(), args.n_trs)?;
        folder.save_reference(f1.view())?;
        folder.save("x2", f2.view())?;
        for (name, (_, f)) in ["test", "heldout", "pgd", "cw", "fgsm"].iter().zip(&named) {
            folder.save(name, f.view())?;
        }
        // More in-distribution images for the `validity` example's re-splits (|X2| up to 2000): the same
        // generator with another seed, the seen shapes only; drawn apart so that the run's own data and model
        // stay as they are.
        let extra = Synthetic {
            classes: SHAPES.len(),
            per_class: VALIDITY_POOL_PER_CLASS,
            size: args.size,
            seed: 1,
            plain: true,
        }
        .generate()?
        .to_grayscale()
        .without_classes(held_out);
        folder.save("pool", tf(&extra.images_f32(), Stream::Extra(0))?.view())?;
        eprintln!("transform features saved in {}", dir.display());
    }
    let shape = test_images.shape();
    let identity = EmbedderIdentity::of(&embedder, [shape[1], shape[2], shape[3]])?;
    let named_views: Vec<(String, _)> = named.iter().map(|(n, f)| (n.clone(), f.view())).collect();
    let (mut table, results) = compare_methods(
        &cadet,
        args.k,
        Some(&identity),
        f1.view(),
        f2.view(),
        &named_views,
        format!(
            "\nDetectors side by side: AUROC % [95% interval] against the in-distribution test set ({} images); \
             last column: in-distribution share with p ≤ α ('!': outside the 99% interval of a valid detector's count, calibration set's randomness included). \
             CADet rows: {} transforms, |X1| = {} ({}), |X2| = {}",
            named[0].1.dim().0,
            args.n_trs,
            f1.dim().0,
            if args.reference == "train" {
                "the training images"
            } else {
                "held-out images"
            },
            f2.dim().0
        ),
        args.alpha,
    )?;
    let headline = headline_scores(&results)
        .ok_or("the headline method needs a reference of at least 50 images")?;
    let sets: Vec<(String, Vec<ImageScore>)> = named
        .iter()
        .map(|(n, _)| n.clone())
        .zip(headline.scores.clone())
        .collect();
    let paper_sets: Vec<(String, Vec<ImageScore>)> = named
        .iter()
        .map(|(n, _)| n.clone())
        .zip(results[0].scores.clone())
        .collect();
    println!();
    print!(
        "{}",
        CadetReport::new(&results[0].calibration, &paper_sets, args.alpha)?
    );
    println!();
    print!(
        "{}",
        CadetReport::new(&headline.calibration, &sets, args.alpha)?
    );
    let mmd_sets = mmd::small_sets(
        &args,
        &embedder,
        mmd_pool,
        [test_images.view(), unseen.images_f32().view()],
        &attacked,
    )?;

    // Baselines on the same encoder's single-view features, calibrated on X2.
    let train_features = embedder.embed(train.images_f32().view())?;
    let x2_features = embedder.embed(x2.images_f32().view())?;
    if let Some(dir) = &args.save_features {
        // The baselines' reference, for the `validity` example.
        let dir = dir.join("single");
        std::fs::create_dir_all(&dir)?;
        cadet::data::formats::save_npy(&train_features, dir.join("knn_train.npy"))?;
        cadet::data::formats::save_npy(
            &ndarray::Array1::from(train.labels().to_vec()),
            dir.join("knn_train_labels.npy"),
        )?;
    }
    let others: Vec<_> = mmd_sets[1..].iter().map(|(_, f)| f.view()).collect();
    push_feature_baselines(
        &mut table,
        "training set",
        (train_features.view(), train.labels()),
        x2_features.view(),
        mmd_sets[0].1.view(),
        &others,
    )?;
    print!("{table}");
    println!(
        "Headline: {} ({}). The paper's method is the first row; the headline's scales and combination were \
         chosen on the held-out shapes and six synthetic CIFAR-10 anomaly sets (docs/results.md); PGD, CW and \
         FGSM are held out from that choice.",
        headline.name,
        headline.calibration.method().label()
    );

    if args.adaptive {
        adaptive::adaptive_table(
            &args,
            adaptive::Inputs {
                pgd,
                results: &results,
                headline,
                reference: &f1,
                x2_images: f2.dim().0,
                attacked: (test_images.view(), labels, clean_accuracy),
                classifier: &classifier,
                surrogate: &Normalized::new(
                    encoder,
                    Normalization::identity(),
                    device.clone().autodiff(),
                ),
                tf: &tf,
                progress: &progress,
            },
        )?;
    }

    let pictures = cadet_pictures(&args.out, &sets)?;
    // Written last, once everything else succeeded.
    headline
        .calibration
        .save(args.out.join("calibration.json"))?;
    eprintln!(
        "\n[{:>5.0}s] done; pictures: {}",
        progress.elapsed(),
        pictures
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
