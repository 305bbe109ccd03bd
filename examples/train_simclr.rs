//! SimCLR training on the CPU: the synthetic data set (or an image folder) through `simclr_train` views into
//! `SimClrTrainer`, with progress, periodic checkpoints and resume, for a bounded time.
//!
//! ```text
//! cargo run --release --example train_simclr -- [--folder DIR] [--minutes 5] [--epochs 50] [--batch 64]
//!     [--depth 18] [--base-width 16] [--checkpoints out/simclr] [--resume] [--device cpu|cuda:0]
//!     [--devices cuda:0,cuda:1] [--no-sync-bn] [--knn-every 50] [--probe DIR] [--overwrite]
//! ```
//! `--devices` trains data-parallel: each step's batch is cut into one shard per listed device, NT-Xent sees
//! the embeddings of all shards, and batch norm is synchronised across them (unless `--no-sync-bn`); `cpu`
//! may be listed several times (the shards then take turns on the CPU).
//! Prints one line per step (loss, learning rate, images per second), the k-NN accuracy of the features on a
//! labelled probe set every `--knn-every` steps, and a summary; `--resume` continues from the latest
//! checkpoint in `--checkpoints`. A fresh run refuses a checkpoint folder that is not empty, unless
//! `--overwrite` (which removes the old run's checkpoints, and nothing else, just before training starts).
//!
//! Exit codes: 0 success, 1 an input or run error (bad file, folder in use, diverged run), 2 a usage error.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use cadet_report::device::{DeviceArgs, PrecisionArg};
use cadet_report::progress::{Lines, Notes};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cadet::augment::simclr_train;
use cadet::data::formats::ImageFolder;
use cadet::data::{Dataset, Synthetic};
use cadet::model::{
    KnnMonitor, LarsConfig, Normalization, ResNetConfig, SimClrConfig, SimClrTrainer, StopAfter,
    TrainConfig, ViewPairs,
};
use cadet::training::SimclrPairs;
use clap::Parser;

#[derive(Parser)]
#[command(about = "SimCLR training on the CPU with checkpoints")]
struct Args {
    /// Image folder (one subfolder per class); the synthetic data set when absent.
    #[arg(long)]
    folder: Option<PathBuf>,
    /// Time budget in minutes (0 to 525600, i.e. a year).
    #[arg(long, default_value_t = 5.0, value_parser = cadet_report::cli::minutes, allow_negative_numbers = true)]
    minutes: f64,
    /// Epochs of the schedule (a resumed run keeps its checkpoint's).
    #[arg(long, default_value_t = 50, conflicts_with = "resume")]
    epochs: usize,
    /// Images per step (a resumed run keeps its checkpoint's).
    #[arg(long, default_value_t = 64, conflicts_with = "resume")]
    batch: usize,
    /// ResNet depth (18, 34, 50), CIFAR stem (a resumed run keeps its checkpoint's).
    #[arg(long, default_value_t = 18, conflicts_with = "resume")]
    depth: usize,
    /// Base width of the ResNet (torchvision: 64; a resumed run keeps its checkpoint's).
    #[arg(long, default_value_t = 16, conflicts_with = "resume")]
    base_width: usize,
    /// Checkpoint folder.
    #[arg(long, default_value = "out/simclr")]
    checkpoints: PathBuf,
    /// Continue from the latest checkpoint.
    #[arg(long)]
    resume: bool,
    /// Start a fresh run in a checkpoint folder that holds another run, removing that run's checkpoints.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    precision: PrecisionArg,
    /// Data-parallel training: one shard of each batch per device, comma-separated (e.g. cuda:0,cuda:1 or
    /// cpu,cpu). The batch must divide into them.
    #[arg(long, value_delimiter = ',', conflicts_with = "device")]
    devices: Vec<String>,
    /// With `--devices`: each shard's batch norm uses its own statistics (default: synchronised, SyncBN). A
    /// resumed run keeps its checkpoint's setting.
    #[arg(long, requires = "devices", conflicts_with = "resume")]
    no_sync_bn: bool,
    /// k-NN accuracy of the features every this many steps (0: off). Neighbours: up to 2000 training images
    /// with their labels; queries: `--probe`, or a fresh draw of the synthetic set.
    #[arg(long, default_value_t = 50)]
    knn_every: u64,
    /// Labelled query images for the k-NN monitor (one subfolder per class, the classes of `--folder`).
    #[arg(long)]
    probe: Option<PathBuf>,
}

/// The k-NN monitor's neighbours: 20 (SimCLR's k-NN probe), fewer when the training data has fewer images.
fn knn_k(images: usize) -> usize {
    20.min(images)
}

/// The k-NN monitor: `data` (evenly spaced, at most 2000) as neighbours, the probe images as queries.
fn monitor(args: &Args, data: &Dataset) -> Result<Option<KnnMonitor>, Box<dyn std::error::Error>> {
    let queries = match (&args.probe, &args.folder) {
        _ if args.knn_every == 0 => return Ok(None),
        (Some(dir), _) => ImageFolder::new(dir).resize(32, 32).load()?,
        (None, None) => synthetic(1, 25)?,
        (None, Some(_)) => {
            eprintln!("no --probe folder: k-NN monitor off");
            return Ok(None);
        }
    };
    if queries.classes() != data.classes() {
        return Err(format!(
            "--probe has classes {:?}, the training data {:?}",
            queries.classes(),
            data.classes()
        )
        .into());
    }
    // Probe images that are training images (a copy of --folder) measure memorisation, not features.
    let seen = data.images_in(&queries);
    if seen > 0 {
        let message = format!(
            "--probe: {seen} of its {} images are training images (pixel for pixel)",
            queries.len()
        );
        if 2 * seen >= queries.len() {
            return Err(format!("{message}; give held-out images").into());
        }
        eprintln!("warning: {message}; the k-NN accuracy counts them");
    }
    let stride = data.len().div_ceil(2000);
    let picked: Vec<usize> = (0..data.len()).step_by(stride).collect();
    let bank = data.select(&picked)?;
    let bank = (bank.images_f32(), bank.labels().to_vec());
    let queries = (queries.images_f32(), queries.labels().to_vec());
    let k = knn_k(data.len());
    Ok(Some(
        KnnMonitor::new(bank, queries, k, args.knn_every)
            .map_err(|e| format!("the k-NN monitor (--knn-every; --probe): {e}"))?,
    ))
}

/// The synthetic set the example trains on by default (8 classes).
fn synthetic(seed: u64, per_class: usize) -> cadet::data::Result<Dataset> {
    Synthetic {
        classes: 8,
        per_class,
        size: 32,
        seed,
        plain: false,
    }
    .generate()
}

/// A training step keeps every activation of both views for the backward pass: about this many times the
/// views' bytes at base width 16 and depth 18 (more with width and depth), checked against what the process
/// may map before anything is allocated — on the CPU, where running out aborts (a GPU reports its own error).
/// A resumed run's sizes are its checkpoint's, checked when the model is built.
const ACTIVATIONS_PER_VIEW_BYTE: u128 = 160;

fn check_memory(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let cpu = |d: &String| matches!(d.trim().to_ascii_lowercase().as_str(), "cpu" | "flex");
    let on_cpu = if args.devices.is_empty() {
        args.device.is_cpu()
    } else {
        args.devices.iter().all(cpu)
    };
    if args.resume || !on_cpu {
        return Ok(());
    }
    let views = 2 * 4 * 3 * 32 * 32 * args.batch as u128;
    let width = args.base_width.div_ceil(16).max(1) as u128;
    let depth = args.depth.div_ceil(18).max(1) as u128;
    let hidden = 32 * args.base_width as u128;
    let head = 16 * (hidden * hidden * 2 + hidden * 64);
    cadet_core::limits::check_memory(
        &format!(
            "a training step of batch {} (ResNet-{}, base width {})",
            args.batch, args.depth, args.base_width
        ),
        ACTIVATIONS_PER_VIEW_BYTE * views * width * depth + head + (256 << 20),
        cadet_core::limits::Limits::default().max_alloc_bytes,
        "use a smaller --batch or --base-width",
    )?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(&Args::parse()))
}

/// A fresh run needs an empty (or new) checkpoint folder, or `--overwrite`.
fn check_fresh_folder(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let dir = &args.checkpoints;
    if dir.exists() && !dir.is_dir() {
        return Err(format!("--checkpoints {}: not a folder", dir.display()).into());
    }
    // The folder's lock file is no run: a fresh run killed before its first checkpoint leaves only it.
    let held = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter(|e| e.as_ref().map_or(true, |e| e.file_name() != ".lock"))
            .count(),
        Err(_) => 0,
    };
    if held > 0 && !args.overwrite {
        // Only a small regular file is read: a FIFO named `latest` must not hang the message.
        let latest = cadet_core::limits::read_capped(&dir.join("latest"), 4096)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        return Err(format!(
            "--checkpoints {} is not empty{}: pass --resume to continue that run, or --overwrite to replace it",
            dir.display(),
            match latest.trim() {
                "" => String::new(),
                name => format!(" (it holds a run, latest {name})"),
            }
        )
        .into());
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // Checkpoints never go into an image folder the run reads: the next run would take them for a class.
    let image_folders: Vec<&std::path::Path> = [&args.folder, &args.probe]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    cadet_report::cli::not_an_input("--checkpoints", &args.checkpoints, &image_folders)?;
    // The k-NN monitor's queries must not be its neighbours: the training images score themselves.
    if let (Some(folder), Some(probe)) = (&args.folder, &args.probe) {
        cadet_report::cli::distinct_files(&[("--folder", folder), ("--probe", probe)]).map_err(
            |_| {
                format!(
                    "--probe {}: is the training folder; give held-out images",
                    probe.display()
                )
            },
        )?;
    }
    if !args.resume {
        check_fresh_folder(args)?;
    }
    check_memory(args)?;
    let data: Dataset = match &args.folder {
        Some(dir) => ImageFolder::new(dir).resize(32, 32).load()?,
        None => synthetic(0, 250)?,
    };
    let size = data.image_shape().1;
    let mut pipeline = simclr_train(size, 0.5);
    pipeline.blur.p = 0.0; // SimCLR's CIFAR setting: no blur at 32 px
    let source = SimclrPairs {
        images: data.images_f32(),
        pipeline,
    };
    let devices = match args.devices.as_slice() {
        [] => vec![args.device.open()?],
        names => args.device.open_each(names)?,
    };
    let device = devices[0].clone();
    let mut trainer = if args.resume {
        SimClrTrainer::resume(&args.checkpoints, &device)?
    } else {
        let encoder = ResNetConfig::new(args.depth)
            .with_cifar_stem(true)
            .with_base_width(args.base_width);
        let model = SimClrConfig::new(encoder.into())
            .with_hidden(args.base_width.saturating_mul(32))
            .with_output(64);
        let config = TrainConfig::new(args.batch, args.epochs, LarsConfig::new())
            .with_warmup_epochs(2.0)
            .with_shards(devices.len())
            .with_sync_batch_norm(!args.no_sync_bn);
        SimClrTrainer::new(
            model,
            config,
            Normalization::identity(),
            &device,
            source.len(),
        )?
    };
    if !args.devices.is_empty() {
        // (A resumed run keeps its shard count: the devices must match it.)
        trainer = trainer.with_shard_devices(&devices)?;
    }
    trainer = trainer.with_precision(args.precision.precision)?;
    if let Some(monitor) = monitor(args, &data)? {
        trainer = trainer.with_monitor(monitor);
    }
    if args.overwrite {
        // Everything is set up: only now does the old run go (its checkpoints only; anything else refuses).
        SimClrTrainer::clear_checkpoints(&args.checkpoints)?;
    }
    let start = Instant::now();
    let first_step = trainer.state().step;
    let stop = StopAfter {
        steps: None,
        time: Some(Duration::from_secs_f64(args.minutes * 60.0)),
    };
    trainer.train(
        &source,
        &Lines::new().with_notes(Notes::All),
        stop,
        Some((&args.checkpoints, 50)),
    )?;
    let steps = trainer.state().step - first_step;
    let secs = start.elapsed().as_secs_f64();
    let losses = &trainer.state().losses;
    println!(
        "{steps} steps in {secs:.0} s ({:.2} steps/s, {:.1} images/s); step {} of {}; {}; checkpoint in {}",
        steps as f64 / secs,
        steps as f64 * trainer.config().batch_size as f64 / secs,
        trainer.state().step,
        trainer.total_steps(),
        match (losses.first(), losses.last()) {
            (Some(first), Some(last)) => format!("loss {first:.3} → {last:.3}"),
            _ => "no step yet".to_string(),
        },
        args.checkpoints.display()
    );
    if let Some((step, accuracy)) = trainer.state().knn.last() {
        println!(
            "k-NN accuracy (k = {}) at step {step}: {:.1}%",
            knn_k(trainer.state().dataset_len),
            100.0 * accuracy
        );
    }
    Ok(())
}
