//! Checks the example programs share for their flags and output paths, so that a bad value is refused at
//! parse time, before any data is loaded or any model trained.

use std::path::{Path, PathBuf};

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

/// The path as the file system resolves it: its longest existing ancestor resolved (symbolic links, `.`,
/// `..`), joined with the components that do not exist yet.
fn resolved(path: &Path) -> Option<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let mut rest = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        if let Ok(p) = existing.canonicalize() {
            return Some(rest.iter().rev().fold(p, |acc, c| acc.join(c)));
        }
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?;
    }
}

/// Checks an output file given by `flag` before any work: its folder exists and is a folder, the path is not a
/// folder, and it is none of `inputs` nor inside an input folder (writing it would destroy what the program
/// reads, or change a data set on its next read).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let input = dir.path().join("model.ckpt-1.index");
/// std::fs::write(&input, b"x")?;
/// let out = dir.path().join("out.safetensors");
/// assert!(cadet_report::cli::check_output_file("--out", &out, &[&input]).is_ok());
/// // The same file by another spelling is refused.
/// let again = dir.path().join(".").join("model.ckpt-1.index");
/// assert!(cadet_report::cli::check_output_file("--out", &again, &[&input]).is_err());
/// assert!(cadet_report::cli::check_output_file("--out", &input.join("r.md"), &[]).is_err());
/// // Inside an input folder (an image folder, say) is refused too.
/// let images = dir.path().join("images");
/// std::fs::create_dir_all(images.join("cat"))?;
/// let inside = images.join("cat").join("0.png");
/// assert!(cadet_report::cli::check_output_file("--out", &inside, &[&images]).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn check_output_file(flag: &str, path: &Path, inputs: &[&Path]) -> Result<(), String> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(format!(
            "{flag} {}: {} is not an existing folder",
            path.display(),
            folder.display()
        ));
    }
    if path.is_dir() {
        return Err(format!(
            "{flag} {}: is a folder, not a file",
            path.display()
        ));
    }
    // A device or a pipe (/dev/full, a FIFO) is never replaced: the write would fail at the end of the run.
    if path.exists() && !path.is_file() {
        return Err(format!(
            "{flag} {}: exists and is not a regular file",
            path.display()
        ));
    }
    not_an_input(flag, path, inputs)
}

/// Checks that the output `path` given by `flag` (a file or a folder) is none of `inputs` and lies inside none
/// of the input folders: writing it would destroy what the program reads, or add files to a data set.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let images = dir.path().join("images");
/// std::fs::create_dir_all(images.join("cat"))?;
/// let inside = images.join("cat").join("grids").join("new");
/// assert!(cadet_report::cli::not_an_input("--out", &inside, &[&images]).is_err());
/// assert!(cadet_report::cli::not_an_input("--out", &dir.path().join("grids"), &[&images]).is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn not_an_input(flag: &str, path: &Path, inputs: &[&Path]) -> Result<(), String> {
    let Some(out) = resolved(path) else {
        return Ok(());
    };
    // An input folder's symbolic links to folders elsewhere (a data folder made of links to the real data
    // sets) are inputs too: an output inside their targets lands in the data.
    let mut all: Vec<(&Path, PathBuf)> = Vec::new();
    for input in inputs {
        let Some(input_path) = resolved(input) else {
            continue;
        };
        all.extend(linked_folders(&input_path).into_iter().map(|t| (*input, t)));
        all.push((*input, input_path));
    }
    for (input, input_path) in all {
        if input_path == out {
            return Err(format!(
                "{flag} {}: is the input {}; writing it would destroy it",
                path.display(),
                input.display()
            ));
        }
        if input_path.is_dir() && out.starts_with(&input_path) {
            return Err(format!(
                "{flag} {}: is inside the input folder {}; write it elsewhere",
                path.display(),
                input.display()
            ));
        }
    }
    Ok(())
}

/// Checks that the input files named by flags are different files (another spelling, a `..` or a symbolic link
/// of the same file included): a two-sample test of a set against itself, or a calibration set scored as a test
/// set, gives a p-value that promises nothing.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
/// std::fs::write(&x, b"1")?;
/// std::fs::write(&y, b"2")?;
/// assert!(cadet_report::cli::distinct_files(&[("X", &x), ("Y", &y)]).is_ok());
/// let again = dir.path().join(".").join("x.npy");
/// let e = cadet_report::cli::distinct_files(&[("X", &x), ("Y", &again)]).unwrap_err();
/// assert!(e.contains("X") && e.contains("Y"), "{e}");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn distinct_files(named: &[(&str, &Path)]) -> Result<(), String> {
    let resolved: Vec<Option<PathBuf>> = named.iter().map(|(_, p)| resolved(p)).collect();
    for (i, a) in resolved.iter().enumerate() {
        for (j, b) in resolved.iter().enumerate().skip(i + 1) {
            if a.is_some() && a == b {
                return Err(format!(
                    "{} {} and {} {} are the same file: the test needs two different sets",
                    named[i].0,
                    named[i].1.display(),
                    named[j].0,
                    named[j].1.display()
                ));
            }
        }
    }
    Ok(())
}

/// The resolved targets of the symbolic links to folders inside `dir`, two levels deep (at most 10,000 entries
/// looked at): the folders a data folder made of links really reads.
fn linked_folders(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut budget = 10_000usize;
    let mut level = vec![dir.to_path_buf()];
    for _ in 0..2 {
        let mut next = Vec::new();
        for folder in level {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                budget = budget.saturating_sub(1);
                if budget == 0 {
                    return found;
                }
                let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
                match entry.path().canonicalize() {
                    Ok(target) if target.is_dir() && is_link => found.push(target),
                    Ok(target) if target.is_dir() => next.push(entry.path()),
                    _ => {}
                }
            }
        }
        level = next;
    }
    found
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

#[cfg(test)]
mod tests {
    /// An output inside the target of a data folder's symbolic link is inside the data (the twelfth hostile pass
    /// wrote grids into the real CIFAR-10 folder through such a link).
    #[cfg(unix)]
    #[test]
    fn outputs_through_an_input_folders_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real").join("cifar10-jpeg");
        std::fs::create_dir_all(real.join("test")).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::os::unix::fs::symlink(&real, data.join("cifar10-jpeg")).unwrap();
        for out in [
            data.join("cifar10-jpeg"),
            data.join("cifar10-jpeg").join("test").join("grids"),
        ] {
            let e = super::not_an_input("--out", &out, &[&data]).unwrap_err();
            assert!(e.contains("input"), "{e}");
        }
        assert!(super::not_an_input("--out", &dir.path().join("elsewhere"), &[&data]).is_ok());
    }
}
