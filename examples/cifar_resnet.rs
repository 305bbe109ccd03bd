//! Real-data check of the pretrained CIFAR-10 ResNets in `../shared/data/resnet-cifar10/`: loads the weights into
//! `cadet_model::CifarResNet` and measures accuracy on the lossless CIFAR-10 test images 0–999 (and, with
//! `--jpeg`, on the 10,000 JPEG test images).
//!
//! ```text
//! cargo run --release --example cifar_resnet -- --data ../shared/data [--depth 20] [--jpeg]
//! ```
//! Expected (upstream README of the data): ResNet-20 91.5%, -32 92.8%, -44 93.3%, -56 92.6% on lossless 0–999.

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use cadet::data::Dataset;
use cadet::data::formats::{ImageFolder, cifar10_lossless};
use cadet::model::{CifarResNet, CifarResNetConfig, Normalization, pretrained_weights};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Accuracy of the pretrained CIFAR-10 ResNets")]
struct Args {
    /// The data folder (layout of ../shared/data); defaults to $CADET_DATA.
    #[arg(long, env = "CADET_DATA")]
    data: PathBuf,
    /// 20, 32, 44 or 56.
    #[arg(long, default_value_t = 20)]
    depth: usize,
    /// Also evaluate on the 10,000 JPEG test images.
    #[arg(long)]
    jpeg: bool,
}

fn accuracy(
    model: &CifarResNet,
    data: &Dataset,
    device: &Device,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut correct = 0usize;
    for start in (0..data.len()).step_by(250) {
        let idx: Vec<usize> = (start..(start + 250).min(data.len())).collect();
        let batch = data.batch_f32(&idx)?;
        let (n, c, h, w) = batch.dim();
        let x = Tensor::<4>::from_data(
            TensorData::new(batch.into_raw_vec_and_offset().0, [n, c, h, w]),
            device,
        );
        let predicted = model
            .forward(Normalization::imagenet().apply(x))
            .argmax(1)
            .into_data();
        let predicted: Vec<i64> = predicted
            .convert::<i64>()
            .as_slice::<i64>()
            .map_err(|e| format!("{e:?}"))?
            .to_vec();
        correct += predicted
            .iter()
            .zip(&idx)
            .filter(|(p, i)| **p as u32 == data.labels()[**i])
            .count();
    }
    Ok(correct as f64 / data.len() as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let device = Device::flex();
    let dir = args.data.join("resnet-cifar10");
    let file = pretrained_weights(&dir, args.depth)?;
    let model = CifarResNetConfig::new(args.depth)
        .init(&device)?
        .load_safetensors(&file)?;
    let (_, test) = cifar10_lossless(args.data.join("cifar10-lossless"))?;
    let t = Instant::now();
    let acc = accuracy(&model, &test, &device)?;
    println!(
        "ResNet-{} on lossless CIFAR-10 test 0–999: {:.1}% ({:.1} s)",
        args.depth,
        100.0 * acc,
        t.elapsed().as_secs_f64()
    );
    if args.jpeg {
        let jpeg = ImageFolder::new(args.data.join("cifar10-jpeg/test")).load()?;
        let t = Instant::now();
        let acc = accuracy(&model, &jpeg, &device)?;
        println!(
            "ResNet-{} on JPEG CIFAR-10 test (10,000): {:.1}% ({:.1} s)",
            args.depth,
            100.0 * acc,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
