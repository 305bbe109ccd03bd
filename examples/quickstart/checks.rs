//! Every flag checked, and the output folders made, before minutes of training.

use cadet::data::SHAPES;
use cadet::detect::Cadet;

use super::{Args, BoxError, TRAIN_PER_CLASS};

/// Settings that would fail after minutes of training are refused first; the output folders are made, so that
/// a bad path is refused at once.
pub(super) fn check_args(args: &Args) -> Result<(), BoxError> {
    // The device first: a typo (or no GPU) is said before any work, and CubeCL's cache is placed.
    let device = args.device.open().map_err(|e| format!("--device: {e}"))?;
    args.precision
        .on(&device)
        .map_err(|e| format!("--precision: {e}"))?;
    if !(1..=10_000_000).contains(&args.simclr_steps) {
        return Err(format!(
            "--simclr-steps: 1 to 10000000 (default 3000), got {}",
            args.simclr_steps
        )
        .into());
    }
    if !(16..=256).contains(&args.size) {
        return Err(format!(
            "--size: 16 to 256 pixels (the quickstart trains on its own synthetic images; default 32), got {}",
            args.size
        )
        .into());
    }
    let held_out = &args.held_out;
    // Each seen shape gives TRAIN_PER_CLASS training images and 100 to the 600 of X1, X2, the MMD pool and the
    // test set: at least 6 shapes stay in distribution.
    let mut distinct = held_out.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != held_out.len()
        || !(1..=4).contains(&held_out.len())
        || held_out.iter().any(|&c| c as usize >= SHAPES.len())
    {
        return Err(format!(
            "--held-out: 1 to 4 distinct shapes among 0..{}, got {held_out:?}",
            SHAPES.len() - 1
        )
        .into());
    }
    let reference_size = match args.reference.as_str() {
        "train" => (SHAPES.len() - args.held_out.len().min(SHAPES.len())) * TRAIN_PER_CLASS,
        "x1" => 100,
        other => return Err(format!("--reference: train or x1, got {other:?}").into()),
    };
    if args.k == 0 || args.k > reference_size {
        return Err(format!(
            "--k: 1 to {reference_size} (the reference's size), got {}",
            args.k
        )
        .into());
    }
    Cadet::paper(args.size).n_trs(args.n_trs).check()?;
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        return Err(format!("--alpha: in (0, 1), got {}", args.alpha).into());
    }
    if !(1..=1000).contains(&args.classifier_epochs) {
        return Err(format!(
            "--classifier-epochs: 1 to 1000 (default 3), got {}",
            args.classifier_epochs
        )
        .into());
    }
    // Output folders made first, so that a bad path is refused before minutes of training.
    std::fs::create_dir_all(&args.out).map_err(|e| {
        format!(
            "--out {}: cannot create the folder: {e}",
            args.out.display()
        )
    })?;
    if let Some(dir) = &args.save_features {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "--save-features {}: cannot create the folder: {e}",
                dir.display()
            )
        })?;
    }
    Ok(())
}
