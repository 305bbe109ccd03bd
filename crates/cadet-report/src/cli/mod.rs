//! Checks the example programs share for their flags and output paths, so that a bad value is refused at
//! parse time, before any data is loaded or any model trained.

use std::path::Path;

mod mounts;
mod outputs;

pub use outputs::{check_output_file, distinct_files, not_an_input, not_an_input_file};

/// A clap value parser for a duration in minutes: a finite, non-negative number, at most a year (525,600).
/// `NaN`, `-1` and `1e300` are refused here rather than panicking in `Duration::from_secs_f64` hours later.
///
/// ```
/// assert_eq!(cadet_report::cli::minutes("2.5"), Ok(2.5));
/// for bad in ["NaN", "-1", "1e300", "inf", "ten"] {
///     assert!(cadet_report::cli::minutes(bad).is_err(), "{bad}");
/// }
/// ```
pub fn minutes(text: &str) -> Result<f64, String> {
    let m: f64 = text
        .trim()
        .parse()
        .map_err(|e| format!("not a number of minutes: {e}"))?;
    if !(0.0..=525_600.0).contains(&m) {
        return Err(format!("must be between 0 and 525600 (a year), got {text}"));
    }
    Ok(m)
}

/// A clap value parser for a finite 32-bit float: `NaN`, `inf` and numbers beyond `f32`'s range (`1e300`, which
/// `f32`'s own parser turns into `inf`) are refused, said as such.
///
/// ```
/// assert_eq!(cadet_report::cli::finite_f32("0.5"), Ok(0.5));
/// let e = cadet_report::cli::finite_f32("1e300").unwrap_err();
/// assert!(e.contains("1e300") && e.contains("range"), "{e}");
/// for bad in ["NaN", "-inf", "one"] {
///     assert!(cadet_report::cli::finite_f32(bad).is_err(), "{bad}");
/// }
/// ```
pub fn finite_f32(text: &str) -> Result<f32, String> {
    let wide: f64 = text
        .trim()
        .parse()
        .map_err(|e| format!("not a number: {e}"))?;
    if !wide.is_finite() {
        return Err(format!("{text} is not a finite number"));
    }
    if wide.abs() > f64::from(f32::MAX) {
        return Err(format!(
            "{text} is beyond the range of a 32-bit float (±3.4e38)"
        ));
    }
    Ok(wide as f32)
}

/// A clap value parser for a count between 1 and `max` (the bound keeps a flag from asking for an allocation
/// the machine cannot make).
pub fn count_up_to(max: usize) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync {
    count_between(1, max)
}

/// A clap value parser for a count between `min` and `max`, both included.
///
/// ```
/// let warmup = cadet_report::cli::count_between(0, 10_000);
/// assert_eq!(warmup("0"), Ok(0));
/// for bad in ["10001", "18446744073709551615", "-1", "two"] {
///     assert!(warmup(bad).is_err(), "{bad}");
/// }
/// ```
pub fn count_between(
    min: usize,
    max: usize,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync {
    move |text: &str| {
        let n: usize = text
            .trim()
            .parse()
            .map_err(|e| format!("not a whole number: {e}"))?;
        if !(min..=max).contains(&n) {
            return Err(format!("must be between {min} and {max}, got {text}"));
        }
        Ok(n)
    }
}

/// Makes the output folder given by `flag` before any work (with its parents), or says why it cannot be: an
/// existing file or device there, or a path the file system refuses, named with the flag.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("a").join("b");
/// cadet_report::cli::output_folder("--out", &out)?;
/// assert!(out.is_dir());
/// std::fs::write(dir.path().join("f"), b"x")?;
/// let err = cadet_report::cli::output_folder("--out", &dir.path().join("f")).unwrap_err();
/// assert!(err.starts_with("--out ") && err.ends_with("exists and is not a folder"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn output_folder(flag: &str, path: &Path) -> Result<(), String> {
    if path.exists() && !path.is_dir() {
        return Err(format!(
            "{flag} {}: exists and is not a folder",
            path.display()
        ));
    }
    std::fs::create_dir_all(path)
        .map_err(|e| format!("{flag} {}: cannot create the folder: {e}", path.display()))
}

/// A set's display name from a flag (`--set NAME=…`, `--ood NAME=…`): trimmed, not empty, and without
/// characters that make two different names look alike in a table (control and invisible format characters,
/// combining marks: `e` + U+0301 shows as `é`).
///
/// ```
/// use cadet_report::cli::set_name;
/// assert_eq!(set_name(" pgd ").unwrap(), "pgd");
/// assert_eq!(set_name("café").unwrap(), "café");
/// for bad in ["", "  ", "a\u{200b}", "cafe\u{301}", "a\tb"] {
///     assert!(set_name(bad).is_err(), "{bad:?}");
/// }
/// ```
pub fn set_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("an empty name".into());
    }
    let look_alike = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{0300}'..='\u{036f}'
                    | '\u{1ab0}'..='\u{1aff}'
                    | '\u{1dc0}'..='\u{1dff}'
                    | '\u{20d0}'..='\u{20ff}'
                    | '\u{fe00}'..='\u{fe0f}'
                    | '\u{fe20}'..='\u{fe2f}'
                    | '\u{200b}'..='\u{200f}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2060}'..='\u{2064}'
                    | '\u{feff}'
            )
    };
    if let Some(c) = name.chars().find(|&c| look_alike(c)) {
        return Err(format!(
            "the name {name:?} holds U+{:04X}, a control, invisible or combining character: two names \
             would look alike in the tables (type accented letters precomposed, e.g. é)",
            c as u32
        ));
    }
    Ok(name.to_string())
}
