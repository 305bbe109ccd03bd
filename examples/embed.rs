//! Encoder features of images, to `.npy`: plain features `(N, d)`, or the features of `n_trs` CADet evaluation
//! transforms per image `(N, n_trs, d)` that `detect --x1/--x2/--set` takes; with `--identity-view`, each
//! image's un-augmented view first, `(N, 1 + n_trs, d)`, for `detect --identity-view --method views`.
//!
//! ```text
//! # the encoder of a SimCLR checkpoint folder (train_simclr --checkpoints DIR)
//! cargo run --release --example embed -- --checkpoint out/simclr --images DIR_OR_NPY --out feats.npy [--n-trs 50]
//! # torchvision-layout weights (safetensors), e.g. a SimCLR ResNet-50 converted from PyTorch
//! cargo run --release --example embed -- --torchvision r50.safetensors --depth 50 [--prefix encoder.] \
//!     --normalization imagenet --images DIR --size 224 --out feats.npy
//! # a released SimCLRv2 checkpoint converted to safetensors (docs/guide.md); the architecture comes from the
//! # file's metadata or name (r50_1x_sk1…), --arch overrides it; inputs in [0, 1], no normalisation
//! cargo run --release --example embed -- --simclrv2 r50_1x_sk1.safetensors --images DIR --size 224 --out feats.npy
//! ```
//! `--images` is an image folder (one subfolder per class, PNG/JPEG) or a `uint8` `.npy` `(N, H, W, C)`.
//!
//! Requests whose buffers (images as `f32`, features, one batch of views) would exceed 16 GiB are refused before
//! any work starts. Exit codes: 0 success, 1 an input error (bad file, too large a request), 2 a usage error.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use cadet_report::progress::Lines;
use std::path::PathBuf;

use burn::prelude::*;
use cadet::data::Dataset;
use cadet::data::formats::{ImageFolder, save_npy, unlabelled_npy_images};
use cadet::detect::features::{FeaturesLayout, LAYOUT_FILE};
use cadet::detect::{Cadet, Stream, ViewLayout};
use cadet::model::{
    BurnEmbedder, Encoder, Normalization, ResNetConfig, SimClrTrainer, SimClrV2Config,
};
use cadet_core::Embedder;
use cadet_core::limits::Limits;
use cadet_report::device::{DeviceArgs, PrecisionArg};
use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(about = "Encoder features of images to .npy")]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    precision: PrecisionArg,
    /// A SimCLR checkpoint folder (its `latest` checkpoint is used; the folder records its network, so the
    /// architecture flags are refused with it).
    #[arg(long, conflicts_with_all = ["torchvision", "simclrv2"])]
    checkpoint: Option<PathBuf>,
    /// torchvision-layout ResNet weights (.safetensors).
    #[arg(long, conflicts_with = "simclrv2")]
    torchvision: Option<PathBuf>,
    /// A SimCLRv2 checkpoint in the converter's layout (.safetensors, see docs/guide.md).
    #[arg(long)]
    simclrv2: Option<PathBuf>,
    /// The SimCLRv2 architecture (`r50_1x_sk1`, …), instead of the file's metadata or name.
    #[arg(long, requires = "simclrv2", conflicts_with = "checkpoint")]
    arch: Option<String>,
    /// Depth of the torchvision ResNet (18, 34, 50).
    #[arg(long, default_value_t = 50, conflicts_with_all = ["simclrv2", "checkpoint"])]
    depth: usize,
    /// Prefix of the encoder's keys in the torchvision or SimCLRv2 file (e.g. `encoder.`, `resnet.`).
    #[arg(long, default_value = "", conflicts_with = "checkpoint")]
    prefix: String,
    /// Base width of the ResNet (64 in torchvision and the released SimCLRv2 checkpoints; for SimCLRv2 files,
    /// the default is the file's metadata, else 64).
    #[arg(long, conflicts_with = "checkpoint")]
    base_width: Option<usize>,
    /// The torchvision ResNet uses the CIFAR stem (3 × 3, no max-pool).
    #[arg(long, conflicts_with_all = ["simclrv2", "checkpoint"])]
    cifar_stem: bool,
    /// Input normalisation: default ImageNet's for torchvision weights, none for SimCLRv2 (as its released
    /// checkpoints expect); SimCLR checkpoint folders record their own (so it is refused with --checkpoint).
    #[arg(long, value_enum, conflicts_with = "checkpoint")]
    normalization: Option<Norm>,
    /// Image folder or uint8 `.npy` `(N, H, W, C)`.
    #[arg(long)]
    images: PathBuf,
    /// Resize folder images to `size × size` (needed when their sizes differ; 1 to 4096).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    size: Option<u32>,
    /// At most this many images per class folder (at least 1).
    #[arg(long, value_parser = cadet_report::cli::count_up_to(usize::MAX))]
    limit_per_class: Option<usize>,
    /// CADet evaluation transforms per image (2 to 4096); 0 for plain features.
    #[arg(long, default_value_t = 0,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10_000))]
    n_trs: usize,
    /// Seed of the transforms.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Put each image's un-augmented view before its transforms, `(N, 1 + n_trs, d)` (needs `--n-trs`; give
    /// `detect` the same flag).
    #[arg(long)]
    identity_view: bool,
    /// Output `.npy`.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Norm {
    Imagenet,
    Identity,
}

type BoxError = Box<dyn std::error::Error>;

/// The most memory a request may need (images as `f32`, the features, one batch of views).
const MEMORY_LIMIT: u64 = 16 << 30;

/// Refuses a request whose buffers exceed [`MEMORY_LIMIT`], the memory available now or the address space
/// left under `ulimit -v`, naming the sizes and which bound holds.
fn check_memory(what: &str, bytes: u128) -> Result<(), BoxError> {
    let mut limit = cadet_core::limits::memory_budget(MEMORY_LIMIT);
    if limit.0 == MEMORY_LIMIT {
        limit.1 = "embed's ceiling";
    }
    if bytes > u128::from(limit.0) {
        return Err(format!(
            "{what} would need {:.1} GiB, more than the limit of {:.1} GiB ({}): use fewer or smaller images \
             (--size, --limit-per-class) or fewer --n-trs",
            bytes as f64 / (1u64 << 30) as f64,
            limit.0 as f64 / (1u64 << 30) as f64,
            limit.1
        )
        .into());
    }
    Ok(())
}

/// `--out` must be a file path in an existing folder and none of the inputs (nor inside the image folder):
/// checked before any work.
fn check_out(args: &Args) -> Result<(), BoxError> {
    if args.n_trs > 0 && args.out.file_name().is_some_and(|n| n == LAYOUT_FILE) {
        return Err(format!(
            "--out {}: {LAYOUT_FILE} is the sidecar written beside transform features; name the .npy otherwise",
            args.out.display()
        )
        .into());
    }
    let inputs: Vec<&std::path::Path> = [
        Some(&args.images),
        args.checkpoint.as_ref(),
        args.torchvision.as_ref(),
        args.simclrv2.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(PathBuf::as_path)
    .collect();
    Ok(cadet_report::cli::check_output_file(
        "--out", &args.out, &inputs,
    )?)
}

/// The `layout.json` sidecar of `--out`'s folder for transform features (`--n-trs`): what a reader such as
/// `detect` checks its `--identity-view` against. A folder whose sidecar records another layout, or fewer
/// transforms than these features have, is refused (a reference X1 may have fewer; no set more); checked before
/// any work, written after the features.
fn features_sidecar(args: &Args) -> Result<Option<(PathBuf, FeaturesLayout)>, BoxError> {
    if args.n_trs == 0 {
        return Ok(None);
    }
    let dir = match args.out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let layout = if args.identity_view {
        ViewLayout::IdentityFirst
    } else {
        ViewLayout::Transforms
    };
    match FeaturesLayout::load(&dir)? {
        Some(saved) if saved.layout != layout || saved.n_trs < args.n_trs => Err(format!(
            "--out {}: {} records features with {} and {} transforms; these have {} and {} transforms: write \
             them to another folder",
            args.out.display(),
            dir.join(LAYOUT_FILE).display(),
            has(saved.layout),
            saved.n_trs,
            has(layout),
            args.n_trs
        )
        .into()),
        Some(saved) => {
            if saved.n_trs > args.n_trs {
                eprintln!(
                    "note: {} promises {} transforms per image; these {} serve as a reference X1 only (detect \
                     refuses them as X2 or as a scored set)",
                    dir.join(LAYOUT_FILE).display(),
                    saved.n_trs,
                    args.n_trs
                );
            }
            Ok(None)
        }
        None => Ok(Some((
            dir,
            FeaturesLayout {
                layout,
                n_trs: args.n_trs,
            },
        ))),
    }
}

/// How a layout's views begin, in words.
fn has(layout: ViewLayout) -> &'static str {
    match layout {
        ViewLayout::IdentityFirst => "the un-augmented view first",
        ViewLayout::Transforms => "transforms only",
    }
}

fn load_images(args: &Args) -> Result<Dataset, BoxError> {
    let (path, size) = (args.images.as_path(), args.size);
    // The u8 images and their f32 copy (5 bytes per value) within the memory limit, checked from headers
    // before anything is decoded.
    let limits = Limits {
        max_alloc_bytes: MEMORY_LIMIT / 5,
        ..Limits::default()
    };
    if path.extension().is_some_and(|e| e == "npy") {
        Ok(unlabelled_npy_images(path, &limits)?.to_rgb())
    } else {
        // Two u8 copies (decoded, then the array) are what the folder loader counts.
        let mut folder = ImageFolder::new(path).limits(Limits {
            max_alloc_bytes: limits.max_alloc_bytes * 2,
            ..limits
        });
        if let Some(n) = args.limit_per_class {
            folder = folder.limit_per_class(n);
        }
        let folder = match size {
            Some(s) => folder.resize(s, s),
            None => folder,
        };
        Ok(folder.load()?)
    }
}

fn normalization(norm: Option<Norm>, default: Norm) -> Normalization {
    match norm.unwrap_or(default) {
        Norm::Imagenet => Normalization::imagenet(),
        Norm::Identity => Normalization::identity(),
    }
}

fn encoder(args: &Args, device: &Device) -> Result<(Encoder, Normalization, String), BoxError> {
    if let Some(file) = &args.simclrv2 {
        // --arch is read exactly, and keeps the file's base width unless it names one (`_w4`).
        let mut config = match &args.arch {
            Some(arch) => SimClrV2Config::from_file_as(file, arch)?,
            None => SimClrV2Config::from_file(file)?,
        };
        if let Some(base) = args.base_width {
            config.base_width = base;
        }
        let (net, report) = config.load(file, &args.prefix, device)?;
        eprintln!(
            "{}: loaded {} tensors; left aside: {}",
            config.name(),
            report.loaded,
            report.skipped.len()
        );
        return Ok((
            Encoder::SimClrV2(net),
            match args.normalization {
                None => Normalization::simclrv2(),
                norm => normalization(norm, Norm::Identity),
            },
            format!("simclrv2-{}:{}", config.name(), file.display()),
        ));
    }
    match (&args.checkpoint, &args.torchvision) {
        (Some(dir), None) => {
            if dir.is_file() {
                return Err(format!(
                    "--checkpoint {}: a file; --checkpoint takes a checkpoint folder (train_simclr \
                     --checkpoints), a .safetensors file goes to --simclrv2 or --torchvision",
                    dir.display()
                )
                .into());
            }
            let trainer = SimClrTrainer::resume(dir, device)?;
            let name = format!("simclr:{}@{}", dir.display(), trainer.state().step);
            Ok((
                trainer.model().encoder.clone(),
                trainer.normalization(),
                name,
            ))
        }
        (None, Some(file)) => {
            let net = ResNetConfig::new(args.depth)
                .with_cifar_stem(args.cifar_stem)
                .with_base_width(args.base_width.unwrap_or(64))
                .init(device)?;
            let (net, report) = net.load_torchvision(file, &args.prefix)?;
            eprintln!(
                "loaded {} tensors; unused in the file: {}",
                report.loaded,
                report.skipped.len()
            );
            Ok((
                Encoder::Torchvision(net),
                normalization(args.normalization, Norm::Imagenet),
                format!("torchvision:{}", file.display()),
            ))
        }
        _ => Err("give --checkpoint DIR, --torchvision FILE or --simclrv2 FILE".into()),
    }
}

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(&Args::parse()))
}

fn run(args: &Args) -> Result<(), BoxError> {
    check_out(args)?;
    if args.n_trs == 1 {
        return Err(
            "--n-trs: CADet needs at least 2 transforms per image (or 0 for plain features)".into(),
        );
    }
    if args.n_trs > cadet::detect::MAX_TRANSFORMS {
        return Err(format!(
            "--n-trs: at most {} transforms per image (the paper: 50), got {}",
            cadet::detect::MAX_TRANSFORMS,
            args.n_trs
        )
        .into());
    }
    if args.identity_view && args.n_trs == 0 {
        return Err(
            "--identity-view: give --n-trs too (plain features are the un-augmented view)".into(),
        );
    }
    let sidecar = features_sidecar(args)?;
    if let Some(size) = args.size
        && args.images.extension().is_none_or(|e| e != "npy")
    {
        // Decoded u8 images and their f32 copy, counted before anything is decoded.
        let mut folder = ImageFolder::new(&args.images);
        if let Some(limit) = args.limit_per_class {
            folder = folder.limit_per_class(limit);
        }
        let n = folder.count_files()? as u128;
        check_memory(
            &format!("{n} images of 3 × {size} × {size}"),
            n * 3 * u128::from(size).pow(2) * 5,
        )?;
    }
    let device = args.device.open()?;
    let (net, normalization, name) = encoder(args, &device)?;
    // A checkpoint's encoder lives on the autodiff device; embedding freezes it either way.
    let device = net.devices().into_iter().next().unwrap_or(device);
    let embedder = BurnEmbedder::new(net, device, normalization, name)
        .with_precision(args.precision.precision)?;
    let data = load_images(args)?;
    let (c, h, w) = data.image_shape();
    let (n, pixels) = (data.len() as u128, (c * h * w) as u128);
    // Views per forward pass: 128 for small images, fewer for large ones (about 8 M pixels per pass), so that a
    // pass's activations stay bounded whatever the image size.
    let forward = ((8u128 << 20) / (h * w).max(1) as u128).clamp(1, 128);
    let embedder = embedder.with_batch_size(forward as usize);
    let d = embedder.dim() as u128;
    let views = args.n_trs + usize::from(args.identity_view);
    // Every copy, counted before the f32 images are made: the decoded u8 images and their f32 copy, the
    // features, one batch of views (16 images), and one forward pass: its input three times (tensor,
    // normalised, first activation's input) and the stem's activations (about d/8 channels for basic blocks,
    // d/32 for bottlenecks, at full resolution, three alive: convolution, batch norm, ReLU).
    let stem = if d > 512 { d / 32 } else { (d / 8).max(1) };
    let per_batch_views = 16 * views as u128 * pixels * 4;
    let per_forward = forward * pixels * 4 * 3 + forward * (h * w) as u128 * stem * 4 * 3;
    check_memory(
        &format!(
            "{n} images of {c} × {h} × {w} with {} transforms each ({d} features)",
            args.n_trs
        ),
        n * pixels * 5 + n * (views.max(1) as u128) * d * 4 + per_batch_views + per_forward,
    )?;
    let images = data.images_f32();
    eprintln!("{} images {:?}", data.len(), data.image_shape());
    if args.n_trs == 0 {
        let features = embedder.embed(images.view())?;
        save_npy(&features, &args.out)?;
        println!("{:?} features → {}", features.dim(), args.out.display());
    } else {
        let size = data.image_shape().1;
        // Only the views matter here, not a method: the paper's needs no un-augmented view, so the layout is
        // the user's choice (`detect` is given the same flag and its own method).
        let cadet = Cadet::paper(size)
            .n_trs(args.n_trs)
            .identity_view(args.identity_view)
            .seed(args.seed)
            .check()?;
        let features = cadet.transform_features(
            &embedder,
            images.view(),
            Stream::X1,
            &Lines::new().with_counts(),
        )?;
        save_npy(&features, &args.out)?;
        // The layout beside the features, so that a reader told another one refuses them.
        if let Some((dir, saved)) = sidecar {
            saved.save(&dir)?;
        }
        println!(
            "{:?} transform features → {}",
            features.dim(),
            args.out.display()
        );
    }
    Ok(())
}
