//! Real-data check of the pretrained CIFAR-10 ResNets in `../shared/data/resnet-cifar10/`: loads the weights into
//! `cadet_model::CifarResNet` and measures accuracy on the lossless CIFAR-10 test images 0–999 (and, with
//! `--jpeg`, on the JPEG test images, 10,000 in `../shared/data`).
//!
//! ```text
//! cargo run --release --example cifar_resnet -- --data ../shared/data [--depth 20] [--jpeg]
//! ```
//! Expected (upstream README of the data): ResNet-20 91.5%, -32 92.8%, -44 93.3%, -56 92.6% on lossless 0–999.
//!
//! Exit codes: 0 success, 1 an input error (missing data, weights of another architecture), 2 a usage error.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use std::path::PathBuf;
use std::time::Instant;

use cadet::data::formats::cifar10_lossless;
use cadet::model::{CifarResNetConfig, Normalization, Normalized, accuracy, pretrained_weights};
use cadet_report::device::DeviceArgs;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Accuracy of the pretrained CIFAR-10 ResNets")]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,
    /// The data folder (layout of ../shared/data); defaults to $CADET_DATA.
    #[arg(long, env = "CADET_DATA")]
    data: PathBuf,
    /// 20, 32, 44 or 56.
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Also evaluate on the JPEG test images (cifar10-jpeg/test, 10,000 images).
    #[arg(long)]
    jpeg: bool,
}

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(&Args::parse()))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let device = args.device.open()?;
    let dir = args.data.join("resnet-cifar10");
    let file = pretrained_weights(&dir, args.depth)?;
    let model = CifarResNetConfig::new(args.depth)
        .init(&device)?
        .load_safetensors(&file)?;
    let model = Normalized::new(model, Normalization::imagenet(), device);
    let (_, test) = cifar10_lossless(args.data.join("cifar10-lossless"))?;
    let t = Instant::now();
    let acc = accuracy(&model, test.images_f32().view(), test.labels(), 250)?;
    // The upstream sheet holds test images 0–999; a shorter one is named as what it is.
    println!(
        "ResNet-{} on lossless CIFAR-10 test 0–{}: {:.1}% ({:.1} s)",
        args.depth,
        test.len().saturating_sub(1),
        100.0 * acc,
        t.elapsed().as_secs_f64()
    );
    if args.jpeg {
        let jpeg = cadet::data::formats::cifar10_folder(args.data.join("cifar10-jpeg/test"))?;
        let t = Instant::now();
        let acc = accuracy(&model, jpeg.images_f32().view(), jpeg.labels(), 250)?;
        println!(
            "ResNet-{} on JPEG CIFAR-10 test ({} images): {:.1}% ({:.1} s)",
            args.depth,
            jpeg.len(),
            100.0 * acc,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
