//! What the model sees: PNG grids of SimCLR training views and CADet evaluation views of a few images.
//!
//! ```text
//! cargo run --release --example augment -- [--folder DIR] [--images 6] [--views 8] [--size 32] [--out out/augment]
//! ```
//! Images come from an image folder (one subfolder per class) or, by default, the synthetic data set. Writes
//! `originals.png` (one image per row), `train_views.png` and `eval_views.png` (row i: views of image i), and
//! with `--samples-per-class N`, `synthetic.png`: N synthetic images of each class, one class per row.
//!
//! Requests whose images and views would exceed 4 GiB are refused before any work starts. Exit codes: 0
//! success, 1 an input error, 2 a usage error.

// CUDA and CubeCL CPU builds link LLVM, which needs `arc4random` (glibc ≥ 2.36): this binary provides it.
#[cfg(any(feature = "cuda", feature = "jit-cpu"))]
cadet::model::define_arc4random!();

use std::path::PathBuf;

use cadet::augment::{cadet_eval, simclr_train, views};
use cadet::data::formats::ImageFolder;
use cadet::data::{Dataset, Synthetic, save_grid};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Render PNG grids of training and evaluation views")]
struct Args {
    /// Image folder (one subfolder per class); the synthetic data set when absent.
    #[arg(long)]
    folder: Option<PathBuf>,
    /// Number of source images (1 to 10000).
    #[arg(long, default_value_t = 6, value_parser = count(10_000))]
    images: usize,
    /// Views per image (1 to 1000).
    #[arg(long, default_value_t = 8, value_parser = count(1_000))]
    views: usize,
    /// Side of the views in pixels (8 to 1024).
    #[arg(long, default_value_t = 32,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(8..=1024))]
    size: usize,
    /// Colour-jitter strength of the training views.
    #[arg(long, default_value_t = 1.0, value_parser = cadet_report::cli::finite_f32)]
    strength: f32,
    /// Output folder.
    #[arg(long, default_value = "out/augment")]
    out: PathBuf,
    /// Also write a grid of this many synthetic images per class (1 to 1000).
    #[arg(long, value_parser = count(1_000))]
    samples_per_class: Option<usize>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// A count from 1 to `max`.
fn count(max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=max)
}

/// The most memory the images and views of a request may take.
const MEMORY_LIMIT: u64 = 4 << 30;

/// The program itself (code, allocator, threads), counted in every memory check.
const PROGRAM_BYTES: u128 = 256 << 20;

fn main() -> std::process::ExitCode {
    cadet_report::main_with(|| run(&Args::parse()))
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if !(0.0..=2.5).contains(&args.strength) {
        return Err(format!(
            "--strength: the colour-jitter strength, from 0 to 2.5 (the paper: 1.0), got {}",
            args.strength
        )
        .into());
    }
    // Images (u8 and f32), two sets of views, and the grids, before anything is allocated.
    let pixels = 3 * (args.size as u128).pow(2);
    let images = args.images as u128 + 10 * args.samples_per_class.unwrap_or(0) as u128;
    // (Half again for the transforms' working buffers, and the program itself.)
    let needed = pixels * (images * 5 + 2 * args.images as u128 * args.views as u128 * 4) * 3 / 2
        + PROGRAM_BYTES;
    cadet_core::limits::check_memory(
        &format!(
            "{images} images of {} px with {} views each",
            args.size, args.views
        ),
        needed,
        MEMORY_LIMIT,
        "use fewer --images or --views, or a smaller --size",
    )?;
    // Grids written into the image folder would become training images of a class.
    if let Some(folder) = &args.folder {
        cadet_report::cli::not_an_input("--out", &args.out, &[folder])?;
    }
    cadet_report::cli::output_folder("--out", &args.out)?;
    let data: Dataset = match &args.folder {
        Some(dir) => ImageFolder::new(dir)
            .resize(args.size as u32, args.size as u32)
            .limit_per_class(args.images)
            .load()?,
        None => Synthetic {
            per_class: args.images.div_ceil(10).max(1),
            size: args.size,
            ..Synthetic::default()
        }
        .generate()?,
    };
    let picked: Vec<usize> = (0..args.images.min(data.len()))
        .map(|i| i * data.len() / args.images.min(data.len()))
        .collect();
    let originals = data.batch_f32(&picked)?;
    save_grid(originals.view(), 1, args.out.join("originals.png"))?;
    let train = views(
        originals.view(),
        args.views,
        &simclr_train(args.size, args.strength),
        args.seed,
        0,
    )?;
    save_grid(train.view(), args.views, args.out.join("train_views.png"))?;
    let eval = views(
        originals.view(),
        args.views,
        &cadet_eval(args.size),
        args.seed,
        0,
    )?;
    save_grid(eval.view(), args.views, args.out.join("eval_views.png"))?;
    println!(
        "{} source images ({}): {}",
        picked.len(),
        if args.folder.is_some() {
            "folder"
        } else {
            "synthetic"
        },
        args.out.display()
    );
    if let Some(k) = args.samples_per_class {
        let synth = Synthetic {
            per_class: k,
            size: args.size,
            seed: args.seed,
            ..Synthetic::default()
        }
        .generate()?;
        // Rows = classes: image i has class i mod 10, so reorder class-major.
        let order: Vec<usize> = (0..10)
            .flat_map(|c| (0..k).map(move |j| j * 10 + c))
            .collect();
        let grid = synth.batch_f32(&order)?;
        save_grid(grid.view(), k, args.out.join("synthetic.png"))?;
        println!(
            "synthetic samples: {} (rows: {})",
            args.out.join("synthetic.png").display(),
            cadet::data::SHAPES.join(", ")
        );
    }
    Ok(())
}
