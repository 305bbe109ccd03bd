//! Checks the example programs share for their flags and output paths, so that a bad value is refused at
//! parse time, before any data is loaded or any model trained.

use std::path::{Component, Path, PathBuf};

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

/// `path` made absolute (from the working folder), with `.` and `..` applied to the words as written, no link
/// followed: where the user pointed, through whatever links the path crosses.
fn lexical(path: &Path) -> Option<PathBuf> {
    walk(path, false)
}

/// The path as the file system resolves it: each existing component with its symbolic links followed, `..`
/// applied to what it resolved to, and the components that do not exist yet (with their own `..`, as
/// `create_dir_all` applies them) joined as written.
fn resolved(path: &Path) -> Option<PathBuf> {
    walk(path, true)
}

/// [`lexical`] (`follow` false) or [`resolved`] (`follow` true).
fn walk(path: &Path, follow: bool) -> Option<PathBuf> {
    let absolute = match path.is_absolute() {
        true => path.to_path_buf(),
        false => std::env::current_dir().ok()?.join(path),
    };
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            Component::Normal(name) if follow => {
                let next = out.join(name);
                out = next.canonicalize().unwrap_or(next);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// Where a write to the file `path` lands: its folder resolved, joined with its own name (a write by temporary
/// file and rename replaces a symbolic link there, not the link's target).
fn written_entry(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(resolved(folder)?.join(name))
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
    // Where the output is, three ways: as written (through the links it crosses), as resolved (where the bytes
    // go when a link is written through), and the entry a rename replaces (a link's own place).
    let outs: Vec<PathBuf> = [lexical(path), resolved(path), written_entry(path)]
        .into_iter()
        .flatten()
        .collect();
    // An input folder's symbolic links to folders elsewhere (a data folder made of links to the real data
    // sets) are inputs too: an output inside their targets lands in the data.
    let mut all: Vec<(&Path, PathBuf)> = Vec::new();
    for input in inputs {
        let Some(input_path) = resolved(input) else {
            continue;
        };
        all.extend(linked_folders(&input_path).into_iter().map(|t| (*input, t)));
        all.extend(lexical(input).map(|l| (*input, l)));
        all.push((*input, input_path));
    }
    for (input, input_path) in &all {
        let (input, is_folder) = (*input, input_path.is_dir());
        for out in &outs {
            if input_path == out {
                return Err(format!(
                    "{flag} {}: is the input {}; writing it would destroy it",
                    path.display(),
                    input.display()
                ));
            }
            if is_folder && out.starts_with(input_path) {
                return Err(format!(
                    "{flag} {}: is inside the input folder {}; write it elsewhere",
                    path.display(),
                    input.display()
                ));
            }
        }
    }
    // The same place under another path than any of these (a bind mount of an input, of one of its
    // subfolders, or of the folder of a file it links to): by where each lies on its file system.
    if let Some(input) = mounted_input(&outs, &all, &mounts()) {
        return Err(format!(
            "{flag} {}: lies in the input {} (reached through a mount); write it elsewhere",
            path.display(),
            input.display()
        ));
    }
    // The same folder under another path than any of these (a bind mount): by device and inode, over the
    // output's existing folders.
    if let Some(input) = same_folder_as_an_input(&outs, &all) {
        return Err(format!(
            "{flag} {}: is inside the input folder {} (reached by another path: a mount); write it elsewhere",
            path.display(),
            input.display()
        ));
    }
    Ok(())
}

/// A mount: the device, the path within its file system that is mounted (`/` unless a bind mount of a part),
/// and where it is mounted.
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    device: String,
    root: PathBuf,
    point: PathBuf,
}

/// The mounts of this process, from `/proc/self/mountinfo` (Linux; none elsewhere, or when unreadable).
fn mounts() -> Vec<Mount> {
    let Ok(bytes) = cadet_core::limits::read_capped(Path::new("/proc/self/mountinfo"), 8 << 20)
    else {
        return Vec::new();
    };
    // Spaces, tabs, newlines and backslashes in paths are written as octal escapes (`\040`).
    let unescape = |field: &str| -> PathBuf {
        let mut out = Vec::with_capacity(field.len());
        let b = field.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let octal = b
                .get(i + 1..i + 4)
                .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
            match octal {
                Some(d) => {
                    out.push(
                        d.iter()
                            .fold(0u8, |v, c| v.wrapping_mul(8).wrapping_add(c - b'0')),
                    );
                    i += 4;
                }
                None => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        }
        PathBuf::from(String::from_utf8_lossy(&out).into_owned())
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            Some(Mount {
                device: fields.get(2)?.to_string(),
                root: unescape(fields.get(3)?),
                point: unescape(fields.get(4)?),
            })
        })
        .collect()
}

/// Where the resolved `path` lies on its file system: the device of the mount holding it (the deepest mount
/// point above it, the last mounted of equals) and its path within that file system. The same folder mounted
/// at two places has one location.
fn fs_location(path: &Path, mounts: &[Mount]) -> Option<(String, PathBuf)> {
    let mount = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.point))
        .max_by_key(|(i, m)| (m.point.components().count(), *i))?
        .1;
    let rest = path.strip_prefix(&mount.point).ok()?;
    Some((mount.device.clone(), mount.root.join(rest)))
}

/// The input that an output lies in (or is), compared by file-system location: what a bind mount of an input,
/// of a part of one, or of the folder of a file it links to makes look like another place.
fn mounted_input<'a>(
    outs: &[PathBuf],
    inputs: &[(&'a Path, PathBuf)],
    mounts: &[Mount],
) -> Option<&'a Path> {
    if mounts.is_empty() {
        return None;
    }
    let places: Vec<((String, PathBuf), bool, &'a Path)> = inputs
        .iter()
        .filter_map(|(input, p)| Some((fs_location(p, mounts)?, p.is_dir(), *input)))
        .collect();
    outs.iter()
        .filter_map(|out| fs_location(out, mounts))
        .find_map(|(device, at)| {
            places
                .iter()
                .find(|((d, p), is_folder, _)| {
                    *d == device && (at == *p || (*is_folder && at.starts_with(p)))
                })
                .map(|(_, _, input)| *input)
        })
}

/// The input whose folder is, by device and inode, one of the existing folders on the way to an output (`outs`
/// resolved as [`not_an_input`] does): the same folder reached by a path no link explains (a bind mount).
#[cfg(unix)]
fn same_folder_as_an_input<'a>(
    outs: &[PathBuf],
    inputs: &[(&'a Path, PathBuf)],
) -> Option<&'a Path> {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let folders: Vec<((u64, u64), &'a Path)> = inputs
        .iter()
        .filter(|(_, p)| p.is_dir())
        .filter_map(|(input, p)| Some((id(p)?, *input)))
        .collect();
    outs.iter()
        .flat_map(|out| out.ancestors())
        .filter_map(id)
        .find_map(|found| {
            folders
                .iter()
                .find(|(folder, _)| *folder == found)
                .map(|(_, input)| *input)
        })
}

#[cfg(not(unix))]
fn same_folder_as_an_input<'a>(_: &[PathBuf], _: &[(&'a Path, PathBuf)]) -> Option<&'a Path> {
    None
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

/// The resolved targets of the symbolic links (to folders and files) inside `dir`, four levels deep (the class
/// folders of a data folder's data sets), entering up to 100,000 folders and links and listing up to ten
/// million entries (files cost a listing, not a look-up): the folders a data folder made of links really
/// reads, which an output named by their own path would land in. (An output named through the data folder's
/// path is caught whatever the depth: see [`not_an_input`].)
fn linked_folders(dir: &Path) -> Vec<PathBuf> {
    linked_folders_within(dir, 100_000, 10_000_000)
}

/// [`linked_folders`] entering at most `budget` folders and links and listing at most `listed` entries.
fn linked_folders_within(dir: &Path, mut budget: usize, mut listed: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut level = vec![dir.to_path_buf()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for folder in level {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                listed = listed.saturating_sub(1);
                if listed == 0 || budget == 0 {
                    return found;
                }
                // The entry's type comes with the listing: only links are resolved (a stat each), only folders
                // entered, so the image files of a data set cost little.
                match entry.file_type() {
                    Ok(t) if t.is_symlink() => {
                        budget -= 1;
                        if let Ok(target) = entry.path().canonicalize() {
                            found.push(target);
                        }
                    }
                    Ok(t) if t.is_dir() => {
                        budget -= 1;
                        next.push(entry.path());
                    }
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

    /// Hostile pass 13: three ways past the output checks, each of which wrote into an input.
    #[cfg(unix)]
    #[test]
    fn links_dotdot_and_deep_links_do_not_get_outputs_into_inputs() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let refused = |out: &std::path::Path, input: &std::path::Path| {
            super::not_an_input("--out", out, &[input]).is_err()
        };
        // A symbolic link to a file outside, inside the input: a rename would replace the link (the data's
        // labels file became a report).
        let outside = dir.path().join("outside.js");
        std::fs::write(&outside, b"labels").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        symlink(&outside, data.join("labels.js")).unwrap();
        assert!(refused(&data.join("labels.js"), &data));
        // `..` after a folder that does not exist yet (create_dir_all makes it, then climbs out of it).
        let dotdot = dir.path().join("not-yet").join("..").join("data");
        assert!(refused(&dotdot, &data));
        assert!(refused(&dotdot.join("grids"), &data));
        // A class folder linked three levels down, written through the data folder's own path.
        let own = dir.path().join("own-cat");
        std::fs::create_dir(&own).unwrap();
        let test = data.join("cifar10-jpeg").join("test");
        std::fs::create_dir_all(&test).unwrap();
        symlink(&own, test.join("cat")).unwrap();
        assert!(refused(&test.join("cat"), &data));
        assert!(
            refused(&own.join("fgsm.npy"), &data),
            "the link's target by its own path"
        );
        // Elsewhere is fine, `..` included.
        let elsewhere = dir.path().join("not-yet").join("..").join("results");
        assert!(super::not_an_input("--out", &elsewhere, &[&data]).is_ok());
        // The target of a file link in the data is the data's file, by its own path.
        assert!(refused(&outside, &data));
    }

    /// Many plain files beside the links (200,001 junk files exhausted the old budget of 200,000 entries):
    /// files are listed, not counted against the folders and links entered. Shown at a small scale: 500 files
    /// and a budget of 10 folders and links.
    #[cfg(unix)]
    #[test]
    fn files_do_not_exhaust_the_search_for_links() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let junk = data.join("junk");
        std::fs::create_dir_all(&junk).unwrap();
        for i in 0..500 {
            std::fs::File::create(junk.join(i.to_string())).unwrap();
        }
        let own = dir.path().join("own-bird");
        std::fs::create_dir(&own).unwrap();
        let test = data.join("zz").join("test");
        std::fs::create_dir_all(&test).unwrap();
        std::os::unix::fs::symlink(&own, test.join("bird")).unwrap();
        let found = super::linked_folders_within(&data, 10, 1_000_000);
        assert_eq!(found, vec![own.canonicalize().unwrap()]);
        assert!(super::not_an_input("--out", &own.join("fgsm.npy"), &[&data]).is_err());
    }

    /// The same folder by device and inode is found among an output's folders (what catches a bind mount).
    #[cfg(unix)]
    #[test]
    fn an_inputs_folder_is_found_by_its_identity() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("dog")).unwrap();
        let inputs = [(data.as_path(), data.clone())];
        let out = [data.join("dog").join("grids")];
        assert_eq!(
            super::same_folder_as_an_input(&out, &inputs),
            Some(data.as_path())
        );
        let elsewhere = [dir.path().join("results")];
        assert_eq!(super::same_folder_as_an_input(&elsewhere, &inputs), None);
    }

    /// A bind mount of a part of an input (a class folder, the folder of a file the data links to) is the
    /// input's by its place on the file system (hostile pass 15).
    #[test]
    fn mounted_parts_of_inputs_are_found() {
        use std::path::{Path, PathBuf};
        let mount = |device: &str, root: &str, point: &str| super::Mount {
            device: device.into(),
            root: root.into(),
            point: point.into(),
        };
        let mounts = [
            mount("8:1", "/", "/"),
            mount("8:1", "/data/imgs/dog", "/mnt/bind"),
            mount("0:5", "/", "/tmp"),
        ];
        assert_eq!(
            super::fs_location(Path::new("/mnt/bind/grids"), &mounts),
            Some(("8:1".into(), PathBuf::from("/data/imgs/dog/grids")))
        );
        let data = Path::new("/data/imgs");
        let inputs = [(data, data.to_path_buf())];
        let outs = [PathBuf::from("/mnt/bind/grids")];
        // These paths do not exist, so an input counts as a file: only an output at its very place is found.
        let same = [PathBuf::from("/mnt/bind")];
        let dog = [(Path::new("/data/imgs/dog"), PathBuf::from("/data/imgs/dog"))];
        assert_eq!(
            super::mounted_input(&same, &dog, &mounts),
            Some(Path::new("/data/imgs/dog"))
        );
        assert_eq!(super::mounted_input(&outs, &inputs, &[]), None);
        // Another device at the same inner path is another place.
        let elsewhere = [PathBuf::from("/tmp/data/imgs")];
        assert_eq!(super::mounted_input(&elsewhere, &inputs, &mounts), None);
    }

    /// The same, on real folders: an input folder found through a fake mount table.
    #[test]
    fn a_mount_of_a_real_input_subfolder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("dog")).unwrap();
        let data = data.canonicalize().unwrap();
        let bind = std::path::PathBuf::from("/nonexistent-bind");
        let mounts = [
            super::Mount {
                device: "1:1".into(),
                root: "/".into(),
                point: "/".into(),
            },
            super::Mount {
                device: "1:1".into(),
                root: data.join("dog"),
                point: bind.clone(),
            },
        ];
        let inputs = [(data.as_path(), data.clone())];
        assert_eq!(
            super::mounted_input(&[bind.join("grids")], &inputs, &mounts),
            Some(data.as_path())
        );
        assert_eq!(
            super::mounted_input(&[dir.path().join("out")], &inputs, &mounts),
            None
        );
    }
}
