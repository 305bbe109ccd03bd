//! # cadet-report
//!
//! What the example programs of cadet-rs print and draw, kept out of the published crates so that a dependent
//! of `cadet` does not compile plotting and fonts: [`report`] (the detection table, the paper's Table 5, the
//! side-by-side comparison of detection methods and baselines, the standard pictures), [`paper_tables`] (the paper's CIFAR tables and Figure 2 as `reproduce_cifar` writes them), [`plots`] (ROC curves,
//! histograms and line charts as PNG with a compiled-in font, or SVG) and [`adaptive`] (attacks against
//! detectors, as the attacker sees them); [`cli`] holds the checks the programs share for flags and output paths, [`progress`] their progress lines.
//! Every fallible function returns [`enum@Error`], which keeps the failing crate's error as its source.
//!
//! ```
//! use cadet_report::report::MethodTable;
//!
//! let mut table = MethodTable::new("AUROC against the in-distribution set", vec!["ood".into()], 0.05);
//! let inside = [0.1, 0.2, 0.3, 0.4];
//! table.push("a detector", &inside, None, &[vec![0.35, 0.5, 0.6, 0.7]]).unwrap();
//! assert!((table.rows[0].aurocs[0].auroc - 0.9375).abs() < 1e-12);
//! println!("{table}");
//! ```

pub mod adaptive;
pub mod cli;
mod error;
pub mod paper_tables;
pub mod plots;
pub mod progress;
pub mod report;

pub use error::{Error, Result};

/// An example program's exit: success, or the error printed with `Display` (naming the file, flag or set) and
/// exit code 1. Usage errors never get here: clap exits with 2 for them, so the two kinds stay apart.
pub fn exit_code(result: Result<(), Box<dyn std::error::Error>>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
