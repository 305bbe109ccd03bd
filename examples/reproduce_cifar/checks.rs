//! Every flag checked before any data is loaded: settings that would fail after the attacks and the MMD tables
//! are refused at once.

use std::path::{Path, PathBuf};

use cadet::detect::Cadet;
use cadet::detect::comparison::compared_methods;

use super::{Args, BoxError};

/// The flags' ranges and the sizes drawn from the data, checked together.
pub(super) fn check_args(args: &Args) -> Result<(), BoxError> {
    // Training writes a SimCLR encoder into --encoder's folder; the supervised ResNet-20 is not trained here.
    if args.train_epochs.is_some() && args.encoder == "supervised" {
        return Err(
            "--train-epochs trains a SimCLR encoder into the folder --encoder names; give --encoder DIR (the default `supervised` is the pretrained ResNet-20, which is not trained here)"
                .into(),
        );
    }
    // The device, opened first: a typo is said at once, and CubeCL's tuning cache is placed before any GPU work.
    args.device.open().map_err(|e| format!("--device: {e}"))?;
    if !matches!(args.reference.as_str(), "test" | "train") {
        return Err(format!("--reference: test or train, got {}", args.reference).into());
    }
    // Settings that would fail after the attacks and the MMD tables are checked first.
    for (flag, value) in [
        ("--repeats", args.repeats),
        ("--trials", args.trials),
        ("--max-n", args.max_n),
        ("--n-test", args.n_test),
    ] {
        if value == 0 {
            return Err(format!("{flag}: at least 1, got 0").into());
        }
    }
    // A calibration needs two X2 images (a p-value's denominator, the variances).
    if args.x2 < 2 {
        return Err(format!(
            "--x2: at least 2 calibration images (the paper: 2000), got {}",
            args.x2
        )
        .into());
    }
    if args.x1 == 0 {
        return Err("--x1: at least 1 reference image (the paper: 300)".into());
    }
    // Table 1's smallest sample size is 50: a smaller --max-n would leave it empty.
    if args.max_n < 50 {
        return Err(format!(
            "--max-n: at least 50 (Table 1's sample sizes are 50, 100, … up to it), got {}",
            args.max_n
        )
        .into());
    }
    // Table 2 draws sets of up to 20 images from every scored set, each --n-test images.
    if args.n_test < 20 {
        return Err(format!(
            "--n-test: at least 20 (Table 2 draws sets of up to 20 from each scored set), got {}",
            args.n_test
        )
        .into());
    }
    if args.train_batch < 2 {
        return Err(format!(
            "--train-batch: at least 2 (NT-Xent needs another image's views as negatives), got {}",
            args.train_batch
        )
        .into());
    }
    // Unseen sets named well before any of them is loaded, each name once (the tables' rows).
    let mut ood_names = std::collections::HashSet::new();
    for spec in &args.ood {
        if let Some((name, _)) = spec.split_once('=')
            && !name.trim().is_empty()
        {
            cadet_report::cli::set_name(name).map_err(|e| format!("--ood {spec:?}: {e}"))?;
        }
        match spec.split_once('=') {
            Some((name, _)) if !ood_names.insert(name.trim()) => {
                return Err(
                    format!("--ood {spec:?}: the name {:?} is given twice", name.trim()).into(),
                );
            }
            Some((name, dir)) if !name.trim().is_empty() && Path::new(dir).is_dir() => {}
            _ => {
                return Err(format!(
                    "--ood {spec:?}: expected NAME=DIR with a name and an existing folder"
                )
                .into());
            }
        }
    }
    if args.k == 0 || args.k > args.x1 {
        return Err(format!("--k: 1 to --x1 ({}), got {}", args.x1, args.k).into());
    }
    // Every compared method must fit the reference: the headline's local m_in averages 50 reference images.
    for (name, method) in compared_methods(args.k) {
        let needed = method.reference_images_needed();
        if needed > args.x1 {
            return Err(format!(
                "--x1 {}: the method \"{name}\" averages {needed} reference images; use --x1 {needed} or more",
                args.x1
            )
            .into());
        }
    }
    Cadet::paper(32).n_trs(args.n_trs).check()?;
    Cadet::paper(32)
        .n_trs(args.x1_trs.unwrap_or(args.n_trs))
        .check()
        .map_err(|e| format!("--x1-trs: {e}"))?;
    // The sizes drawn from the JPEG test images, summed without overflow before any data is loaded (the data
    // set's own size is checked once it is loaded).
    let drawn = [
        if args.reference == "test" { args.x1 } else { 0 },
        args.x2,
        args.n_test,
        args.n_test,
    ]
    .iter()
    .try_fold(0usize, |a, &n| a.checked_add(n));
    if drawn.is_none() {
        return Err(format!(
            "--x1 {} (with --reference test) + --x2 {} + 2 × --n-test {}: more images than any data set holds",
            args.x1, args.x2, args.n_test
        )
        .into());
    }
    if args.adaptive > args.n_test {
        return Err(format!(
            "--adaptive {}: at most --n-test ({}) attacked images",
            args.adaptive, args.n_test
        )
        .into());
    }
    if args.adaptive > 0 && args.x1_trs.unwrap_or(args.n_trs) < 2 {
        return Err(
            "--adaptive: the surrogate's local m_in needs at least 2 transforms per X1 image"
                .into(),
        );
    }
    Ok(())
}

/// The report, its figures and the saved features never go into a folder the run reads (the data, the --ood
/// sets, the encoder's checkpoints): checked before any folder is made; then the folders are made. Returns the
/// report's folder, where the figures go.
pub(super) fn check_outputs(args: &Args) -> Result<PathBuf, BoxError> {
    let mut inputs: Vec<PathBuf> = vec![args.data.clone()];
    inputs.extend(
        args.ood
            .iter()
            .filter_map(|spec| spec.split_once('=').map(|(_, dir)| PathBuf::from(dir)))
            // An empty folder name is --ood's own error (checked with the other flags), not an input here.
            .filter(|dir| !dir.as_os_str().is_empty()),
    );
    // With --train-epochs the encoder folder is written (checkpoints): never inside the data or an --ood set.
    if args.train_epochs.is_some() && args.encoder != "supervised" {
        let data: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
        cadet_report::cli::not_an_input("--encoder", Path::new(&args.encoder), &data)?;
    }
    if args.encoder != "supervised" {
        inputs.push(PathBuf::from(&args.encoder));
    }
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    cadet_report::cli::not_an_input_file("--markdown", &args.markdown, &inputs)?;
    if let Some(dir) = &args.save_features {
        cadet_report::cli::not_an_input("--save-features", dir, &inputs)?;
    }
    let out = args
        .markdown
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    std::fs::create_dir_all(&out).map_err(|e| {
        format!(
            "--markdown {}: cannot create its folder: {e}",
            args.markdown.display()
        )
    })?;
    cadet_report::cli::check_output_file("--markdown", &args.markdown, &[])?;
    if let Some(dir) = &args.save_features {
        cadet_report::cli::output_folder("--save-features", dir)?;
    }
    Ok(out)
}
