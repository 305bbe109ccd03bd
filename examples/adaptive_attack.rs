//! Adaptive attacks on CADet (issue 24): plain PGD, EOT-PGD through CADet's evaluation transforms (objective
//! (a)), and EOT-PGD with a differentiable surrogate of CADet's statistics (objective (b)), against the
//! pretrained ResNet-20 on JPEG CIFAR-10, judged by two calibrated detectors on the ResNet-20's features: the
//! paper's (`m_in + γ·m_out`) and the headline method (Fisher over local m_in, local/identity cos, view agreement).
//!
//! ```text
//! cargo run --release --example adaptive_attack -- --data ../shared/data [--n 100] [--n-trs 20] [--samples 4]
//!     [--x1 300] [--x2 1000] [--n-clean 500] [--lambda 1] [--markdown out/adaptive_attack/results.md]
//! ```
//! Disjoint JPEG CIFAR-10 test images: X1 (reference, also the surrogate's), X2 (calibration), the clean test
//! set (AUROC's in-distribution side) and the attacked images. Per attack and detector: the classifier's attack
//! success rate, the detection rate (p ≤ 0.05), the success at the detector's threshold (misclassified and
//! p > 0.05) and the AUROC against the clean test set. The Markdown table is written atomically and printed.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use std::path::PathBuf;
use std::time::Instant;

use cadet::attacks::{Attack, EotPgd, Goal, Pgd, SurrogateReference, SurrogateTerms};
use cadet::detect::comparison::headline_method;
use cadet::detect::{Cadet, Calibration, DetectionMethod, EmbedderIdentity, ImageScore, Stream};
use cadet::model::{
    BurnEmbedder, CifarResNetConfig, Normalization, Normalized, pretrained_weights,
};
use cadet_core::Progress;
use cadet_report::adaptive::{AdaptiveAttackTable, AttackedImages};
use cadet_report::device::DeviceArgs;
use cadet_report::progress::Lines;
use clap::Parser;
use ndarray::{Array3, s};

#[derive(Parser)]
#[command(about = "PGD, EOT-PGD and detector-aware EOT-PGD against CADet on CIFAR-10")]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,
    /// The data folder (layout of ../shared/data); defaults to $CADET_DATA.
    #[arg(long, env = "CADET_DATA")]
    data: PathBuf,
    /// Attacked images (100 by default: EOT with the detector costs about 7 s per image on 2 shared cores).
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// In-distribution test images (the AUROC's clean side).
    #[arg(long, default_value_t = 500)]
    n_clean: usize,
    /// |X1|, the detectors' and the surrogate's reference (≥ 50: the headline method's local m_in).
    #[arg(long, default_value_t = 300)]
    x1: usize,
    /// |X2|, the calibration set.
    #[arg(long, default_value_t = 1000)]
    x2: usize,
    /// CADet transforms per image.
    #[arg(long, default_value_t = 20)]
    n_trs: usize,
    /// EOT transforms per image and step, 2 to 1024 (the library's default is 8; 4 halves the run time).
    #[arg(long, default_value_t = 4)]
    samples: usize,
    /// Weight λ of the detector terms in objective (b).
    #[arg(long, default_value_t = 1.0, value_parser = cadet_report::cli::finite_f32)]
    lambda: f32,
    /// Images per attack batch (1 to 4096).
    #[arg(long, default_value_t = 20, value_parser = cadet_report::cli::count_up_to(4096))]
    batch: usize,
    /// Markdown report.
    #[arg(long, default_value = "out/adaptive_attack/results.md")]
    markdown: PathBuf,
}

type BoxError = Box<dyn std::error::Error>;

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(Args::parse()))
}

/// A detector: its name, its calibration, and whether it reads the un-augmented view (features laid out with it
/// first) or the transforms only.
struct Detector {
    name: String,
    calibration: Calibration,
    identity_view: bool,
}

impl Detector {
    fn score(&self, features: &Array3<f32>) -> Result<Vec<ImageScore>, cadet::detect::Error> {
        let f = if self.identity_view {
            features.clone()
        } else {
            features.slice(s![.., 1.., ..]).to_owned()
        };
        self.calibration.score_features(f.view())
    }
}

fn run(args: Args) -> Result<(), BoxError> {
    // Flags that the attack would refuse only after the data and the features are made, checked first.
    // The surrogate's local m_in compares an image's transforms with each other: two per step at least.
    if !(2..=1024).contains(&args.samples) {
        return Err(format!(
            "--samples: 2 to 1024 transforms per EOT step (default 4; the surrogate's local m_in needs 2), got {}",
            args.samples
        )
        .into());
    }
    if !(args.lambda.is_finite() && args.lambda >= 0.0) {
        return Err(format!(
            "--lambda: the detector term's weight, finite and ≥ 0, got {}",
            args.lambda
        )
        .into());
    }
    // The report's folder and path first: a bad path is refused before the attacks run, and the report never
    // goes into the data folder (checked before its folder is made).
    cadet_report::cli::not_an_input_file("--markdown", &args.markdown, &[&args.data])?;
    if let Some(dir) = args.markdown.parent().filter(|d| !d.as_os_str().is_empty()) {
        cadet_report::cli::output_folder("--markdown's folder", dir)?;
    }
    cadet_report::cli::check_output_file("--markdown", &args.markdown, &[])?;
    let progress = Lines::new().with_counts();
    if args.n == 0 || args.n_clean < 2 || args.x2 < 2 || args.x1 < 50 || args.batch == 0 {
        return Err("--n ≥ 1, --n-clean ≥ 2, --x2 ≥ 2, --x1 ≥ 50 and --batch ≥ 1".into());
    }
    if [args.x1, args.x2, args.n_clean, args.n]
        .iter()
        .try_fold(0usize, |a, &n| a.checked_add(n))
        .is_none()
    {
        return Err(format!(
            "--x1 {} + --x2 {} + --n-clean {} + --n {}: more images than any data set holds",
            args.x1, args.x2, args.n_clean, args.n
        )
        .into());
    }
    let weights = pretrained_weights(args.data.join("resnet-cifar10"), 20)?;
    // The embedder on the plain device; the classifier and the surrogate's encoder on the autodiff one.
    let device = args.device.open()?;
    let embedder = BurnEmbedder::new(
        CifarResNetConfig::new(20)
            .init(&device)?
            .load_safetensors(&weights)?,
        device.clone(),
        Normalization::imagenet(),
        "resnet20-cifar10-supervised",
    )
    .with_batch_size(500);
    let ad = device.autodiff();
    let target = Normalized::new(
        CifarResNetConfig::new(20)
            .init(&ad)?
            .load_safetensors(&weights)?,
        Normalization::imagenet(),
        ad.clone(),
    );

    progress.start("loading JPEG CIFAR-10 test images", 0);
    let test = cadet::data::formats::cifar10_folder(args.data.join("cifar10-jpeg/test"))?;
    let used = args.x1 + args.x2 + args.n_clean + args.n;
    if used > test.len() {
        return Err(format!(
            "--x1 {} + --x2 {} + --n-clean {} + --n {} = {used} images asked for, the JPEG test set has {}",
            args.x1,
            args.x2,
            args.n_clean,
            args.n,
            test.len()
        )
        .into());
    }
    let parts = test.split(&[args.x1, args.x2, args.n_clean, args.n], 11)?;
    let (x1, x2, clean, to_attack) = (&parts[0], &parts[1], &parts[2], &parts[3]);

    // CADet features: the un-augmented view first, then n_trs transforms.
    let cadet = Cadet::params(32)
        .n_trs(args.n_trs)
        .identity_view(true)
        .batch_images(32)
        .check()?;
    let features = |images: ndarray::ArrayView4<'_, f32>, stream: Stream| {
        cadet.transform_features(&embedder, images, stream, &progress)
    };
    let f1 = features(x1.images_f32().view(), Stream::X1)?;
    let f2 = features(x2.images_f32().view(), Stream::X2)?;
    let f_clean = features(clean.images_f32().view(), Stream::Scored)?;
    let identity = EmbedderIdentity::of(&embedder, [3, 32, 32])?;
    let cut = |f: &Array3<f32>| f.slice(s![.., 1.., ..]).to_owned();
    let detectors = [
        Detector {
            name: "paper: m_in + γ·m_out".into(),
            calibration: Cadet::params(32)
                .n_trs(args.n_trs)
                .method(DetectionMethod::paper())
                .check()?
                .calibrate_features(
                    Some(identity.clone()),
                    cut(&f1).view(),
                    cut(&f2).view(),
                    &progress,
                )?,
            identity_view: false,
        },
        Detector {
            name: format!("headline: {}", headline_method().0),
            calibration: Cadet::params(32)
                .n_trs(args.n_trs)
                .identity_view(true)
                .method(headline_method().1)
                .check()?
                .calibrate_features(Some(identity), f1.view(), f2.view(), &progress)?,
            identity_view: true,
        },
    ];
    let clean_scores: Vec<Vec<ImageScore>> = detectors
        .iter()
        .map(|d| d.score(&f_clean))
        .collect::<Result<_, _>>()?;

    // The attacks; the surrogate's reference is X1's features.
    let images = to_attack.images_f32();
    let labels = to_attack.labels();
    let alpha = 0.05;
    let mut table = AdaptiveAttackTable::new(
        String::new(),
        detectors
            .iter()
            .map(|d| d.name.clone())
            .zip(clean_scores)
            .collect(),
        alpha,
    )?;
    // Each attack's images embedded with a stream of their own (Extra(1) for PGD, then 2 and 3) and scored by
    // both detectors.
    let judge = |adversarial: &ndarray::Array4<f32>, i: usize| {
        let f = features(adversarial.view(), Stream::Extra(1 + i as u32))?;
        detectors.iter().map(|d| d.score(&f)).collect()
    };
    let pgd = Pgd {
        batch_size: args.batch,
        ..Pgd::paper()
    };
    let t = Instant::now();
    let out = pgd.attack(&target, images.view(), labels, &Goal::Untargeted, &progress)?;
    let seconds = t.elapsed().as_secs_f64();
    let clean_accuracy = out.clean_accuracy(labels);
    table.push(&AttackedImages {
        attack: pgd.name(),
        success: out.samples.iter().map(|s| s.success).collect(),
        scores: judge(&out.adversarial, 0)?,
        seconds,
    })?;
    table.push_eot_attacks(
        &target,
        &target,
        SurrogateReference::from_features(f1.view())?,
        SurrogateTerms {
            lambda: args.lambda,
            ..SurrogateTerms::headline()
        },
        &EotPgd {
            samples: args.samples,
            batch_size: args.batch,
            ..EotPgd::paper()
        },
        images.view(),
        labels,
        |adversarial, i| judge(adversarial, 1 + i),
        &progress,
    )?;
    table.header = format!(
        "Command: `cargo run --release --example adaptive_attack -- {}`\n\n\
         ResNet-20 (pretrained, supervised) as classifier and as CADet's encoder (its 64-d features); disjoint JPEG \
         CIFAR-10 test images: |X1| = {}, |X2| = {}, {} clean test images, {} attacked; {} CADet transforms; \
         EOT: {} transforms per step; λ = {}. Clean accuracy on the attacked images: {:.1}%.",
        std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        args.x1,
        args.x2,
        args.n_clean,
        args.n,
        args.n_trs,
        args.samples,
        args.lambda,
        100.0 * clean_accuracy
    );
    let md = format!(
        "{table}\nRun time: {:.0} s on {} CPU threads.\n",
        progress.elapsed(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    cadet_core::io::write_atomic(&args.markdown, md.as_bytes())?;
    print!("{md}");
    eprintln!("report: {}", args.markdown.display());
    Ok(())
}
