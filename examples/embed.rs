//! Encoder features of images, to `.npy`: plain features `(N, d)`, or the features of `n_trs` CADet evaluation
//! transforms per image `(N, n_trs, d)` that `detect --x1/--x2/--set` takes.
//!
//! ```text
//! # the encoder of a SimCLR checkpoint folder (train_simclr --checkpoints DIR)
//! cargo run --release --example embed -- --checkpoint out/simclr --images DIR_OR_NPY --out feats.npy [--n-trs 50]
//! # torchvision-layout weights (safetensors), e.g. a SimCLR ResNet-50 converted from PyTorch
//! cargo run --release --example embed -- --torchvision r50.safetensors --depth 50 [--prefix encoder.] \
//!     --normalization imagenet --images DIR --size 224 --out feats.npy
//! ```
//! `--images` is an image folder (one subfolder per class, PNG/JPEG) or a `uint8` `.npy` `(N, H, W, C)`.

use std::path::PathBuf;

use burn::prelude::*;
use cadet::data::Dataset;
use cadet::data::formats::{ImageFolder, save_npy};
use cadet::detect::Cadet;
use cadet::model::{BurnEmbedder, Normalization, ResNet, ResNetConfig, SimClrTrainer};
use cadet_core::{Embedder, Progress};
use clap::{Parser, ValueEnum};
use ndarray::Array4;

#[derive(Parser)]
#[command(about = "Encoder features of images to .npy")]
struct Args {
    /// A SimCLR checkpoint folder (its `latest` checkpoint is used).
    #[arg(long, conflicts_with = "torchvision")]
    checkpoint: Option<PathBuf>,
    /// torchvision-layout ResNet weights (.safetensors).
    #[arg(long)]
    torchvision: Option<PathBuf>,
    /// Depth of the torchvision ResNet (18, 34, 50).
    #[arg(long, default_value_t = 50)]
    depth: usize,
    /// Prefix of the encoder's keys in the torchvision file (e.g. `encoder.`).
    #[arg(long, default_value = "")]
    prefix: String,
    /// Base width of the torchvision ResNet (64 in torchvision).
    #[arg(long, default_value_t = 64)]
    base_width: usize,
    /// The torchvision ResNet uses the CIFAR stem (3 × 3, no max-pool).
    #[arg(long)]
    cifar_stem: bool,
    /// Input normalisation of the torchvision encoder (SimCLR checkpoints record their own).
    #[arg(long, value_enum, default_value_t = Norm::Imagenet)]
    normalization: Norm,
    /// Image folder or uint8 `.npy` `(N, H, W, C)`.
    #[arg(long)]
    images: PathBuf,
    /// Resize folder images to `size × size` (needed when their sizes differ).
    #[arg(long)]
    size: Option<u32>,
    /// At most this many images per class folder.
    #[arg(long)]
    limit_per_class: Option<usize>,
    /// CADet evaluation transforms per image; 0 for plain features.
    #[arg(long, default_value_t = 0)]
    n_trs: usize,
    /// Seed of the transforms.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output `.npy`.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Norm {
    Imagenet,
    Identity,
}

/// A line per batch on stderr.
struct Lines;
impl Progress for Lines {
    fn start(&self, what: &str, total: u64) {
        eprintln!("{what}: {total} images");
    }
    fn advance(&self, steps: u64) {
        eprint!("{steps} ");
    }
    fn finish(&self) {
        eprintln!();
    }
}

type BoxError = Box<dyn std::error::Error>;

fn load_images(args: &Args) -> Result<Dataset, BoxError> {
    let (path, size) = (args.images.as_path(), args.size);
    if path.extension().is_some_and(|e| e == "npy") {
        let hwc: Array4<u8> = ndarray_npy::read_npy(path)
            .map_err(|e| format!("{}: expected uint8 (N, H, W, C): {e}", path.display()))?;
        let n = hwc.dim().0;
        let nchw = hwc
            .permuted_axes([0, 3, 1, 2])
            .as_standard_layout()
            .to_owned();
        Ok(Dataset::new(nchw, vec![0; n], vec!["images".into()])?.to_rgb())
    } else {
        let mut folder = ImageFolder::new(path);
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

fn encoder(args: &Args, device: &Device) -> Result<(ResNet, Normalization, String), BoxError> {
    match (&args.checkpoint, &args.torchvision) {
        (Some(dir), None) => {
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
                .with_base_width(args.base_width)
                .init(device)?;
            let (net, report) = net.load_torchvision(file, &args.prefix)?;
            eprintln!(
                "loaded {} tensors; unused in the file: {}",
                report.loaded,
                report.unused.len()
            );
            let normalization = match args.normalization {
                Norm::Imagenet => Normalization::imagenet(),
                Norm::Identity => Normalization::identity(),
            };
            Ok((
                net,
                normalization,
                format!("torchvision:{}", file.display()),
            ))
        }
        _ => Err("give --checkpoint DIR or --torchvision FILE".into()),
    }
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let device = Device::flex();
    let (net, normalization, name) = encoder(&args, &device)?;
    // A checkpoint's encoder lives on the autodiff device; embedding freezes it either way.
    let device = net.devices().into_iter().next().unwrap_or(device);
    let embedder = BurnEmbedder::new(net, device, normalization, name).with_batch_size(128);
    let data = load_images(&args)?;
    let images = data.images_f32();
    eprintln!("{} images {:?}", data.len(), data.image_shape());
    if args.n_trs == 0 {
        let features = embedder.embed(images.view())?;
        save_npy(&features, &args.out)?;
        println!("{:?} features → {}", features.dim(), args.out.display());
    } else {
        let size = data.image_shape().1;
        let cadet = Cadet::params(size)
            .n_trs(args.n_trs)
            .seed(args.seed)
            .check()?;
        let features = cadet.transform_features(&embedder, images.view(), 0, &Lines)?;
        save_npy(&features, &args.out)?;
        println!(
            "{:?} transform features → {}",
            features.dim(),
            args.out.display()
        );
    }
    Ok(())
}
