//! # cadet-report
//!
//! What the example programs of cadet-rs print and draw, kept out of the published crates so that a dependent
//! of `cadet` does not compile plotting and fonts: [`report`] (the detection table, the paper's Table 5, the
//! side-by-side comparison of detection methods and baselines, the standard pictures), [`paper_tables`] (the paper's CIFAR tables and Figure 2 as `reproduce_cifar` writes them), [`plots`] (ROC curves,
//! histograms and line charts as PNG with a compiled-in font, or SVG) and [`adaptive`] (attacks against
//! detectors, as the attacker sees them); [`cli`] holds the checks the programs share for flags and output paths, [`device`] the `--device` flags, [`overlap`] the images two feature sets share, [`progress`] their progress lines.
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
pub mod device;
mod error;
pub mod overlap;
pub mod paper_tables;
pub mod plots;
pub mod progress;
pub mod report;

pub use error::{Error, Result};

/// Runs an example program's `run` and gives its exit: [`exit_code`] of its result, and exit code 1 with one
/// clear line when its output cannot be written (stdout on a full disk, a pipe closed early: `println!` panics
/// there, which used to end the program with a panic message and exit code 101). Other panics stay panics.
///
/// ```
/// let code = cadet_report::main_with(|| Ok(()));
/// assert_eq!(code, std::process::ExitCode::SUCCESS);
/// ```
pub fn main_with(
    run: impl FnOnce() -> Result<(), Box<dyn std::error::Error>>,
) -> std::process::ExitCode {
    // rayon reads RAYON_NUM_THREADS when its pool first starts, and panics when it cannot start them all
    // (100000 threads: 40 s of spawning, then a panic). Bounded here, before any work.
    if let Some(threads) = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let most = (64 * cores).max(256);
        if threads > most {
            eprintln!(
                "error: RAYON_NUM_THREADS={threads}: at most {most} threads on this machine ({cores} cores; 0 or \
                 unset means one per core)"
            );
            return std::process::ExitCode::FAILURE;
        }
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if print_failure(info.payload()).is_none() {
            default_hook(info);
        }
    }));
    // The error is printed inside the unwind guard too: stderr may be a closed pipe.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exit_code(run()))) {
        Ok(code) => code,
        Err(payload) => match print_failure(payload.as_ref()) {
            Some(message) => {
                use std::io::Write as _;
                // stderr may be the stream that failed: then the exit code alone says it.
                let _ = writeln!(std::io::stderr(), "error: {message}");
                std::process::ExitCode::FAILURE
            }
            None => std::panic::resume_unwind(payload),
        },
    }
}

/// The message of a panic raised by `print!`/`eprint!` when the stream cannot be written, if it is one.
fn print_failure(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())?;
    text.starts_with("failed printing to").then(|| {
        format!("{text} (the output could not be written: a full disk, or a pipe closed early)")
    })
}

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

#[cfg(test)]
mod tests {
    /// `println!`'s panic on an unwritable stdout is recognised (and becomes exit 1 with one line in
    /// `main_with`); any other panic is not, and stays a panic.
    #[test]
    fn print_failures_are_told_from_other_panics() {
        let caught = |f: fn()| std::panic::catch_unwind(f).unwrap_err();
        let write_failed =
            caught(|| panic!("failed printing to stdout: Broken pipe (os error 32)"));
        let message = super::print_failure(write_failed.as_ref()).expect("a print failure");
        assert!(message.contains("Broken pipe") && message.contains("could not be written"));
        let other = caught(|| panic!("index out of bounds"));
        assert!(super::print_failure(other.as_ref()).is_none());
        let literal = caught(|| std::panic::panic_any("failed printing to stderr"));
        assert!(super::print_failure(literal.as_ref()).is_some());
    }
}
