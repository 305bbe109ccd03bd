//! Output paths checked against the inputs: an output that is an input, or lies inside an input folder, by any
//! spelling (`.`/`..`, symbolic links, bind mounts, another mount namespace's `/proc/PID/root`), is refused
//! before any work.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use super::mounts::{mounted_input, mounts, overlay_places};

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
    not_an_input_file(flag, path, inputs)
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
    check_against_inputs(flag, path, inputs, false)
}

/// [`not_an_input`] for an output *file* beside which the program writes more files under fixed names (a report
/// and its figures): also refused when an input links to a file in the output's folder, which such a write
/// could replace.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let (data, out) = (dir.path().join("data"), dir.path().join("out"));
/// std::fs::create_dir_all(data.join("cat"))?;
/// std::fs::create_dir(&out)?;
/// std::fs::write(out.join("roc.png"), b"png")?;
/// # #[cfg(unix)]
/// std::os::unix::fs::symlink(out.join("roc.png"), data.join("cat").join("0.png"))?;
/// # #[cfg(unix)]
/// assert!(cadet_report::cli::not_an_input_file("--markdown", &out.join("results.md"), &[&data]).is_err());
/// assert!(cadet_report::cli::not_an_input_file("--markdown", &dir.path().join("r.md"), &[&data]).is_ok());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn not_an_input_file(flag: &str, path: &Path, inputs: &[&Path]) -> Result<(), String> {
    check_against_inputs(flag, path, inputs, true)
}

/// [`not_an_input`], and with `beside` [`not_an_input_file`].
fn check_against_inputs(
    flag: &str,
    path: &Path,
    inputs: &[&Path],
    beside: bool,
) -> Result<(), String> {
    // Where the output is, three ways: as written (through the links it crosses), as resolved (where the bytes
    // go when a link is written through), and the entry a rename replaces (a link's own place).
    let outs: Vec<PathBuf> = [lexical(path), resolved(path), written_entry(path)]
        .into_iter()
        .flatten()
        .collect();
    // An input folder's symbolic links to folders elsewhere (a data folder made of links to the real data
    // sets) are inputs too: an output inside their targets lands in the data.
    let mut all: Vec<(&Path, PathBuf)> = Vec::new();
    let mut walks: Vec<(&Path, InputWalk)> = Vec::new();
    let mounts = mounts();
    for input in inputs {
        let Some(input_path) = resolved(input) else {
            continue;
        };
        // An input read through an overlay lies in the overlay's layers too.
        for place in overlay_places(&input_path, &mounts) {
            walks.push((*input, InputWalk::of(&place)));
            all.push((*input, place));
        }
        let walk = InputWalk::of(&input_path);
        all.extend(walk.links.iter().map(|t| (*input, t.clone())));
        all.extend(lexical(input).map(|l| (*input, l)));
        all.push((*input, input_path));
        walks.push((*input, walk));
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
    // Where this output writes, by identity as the kernel resolves the path given (the output reached through a
    // bind mount or another namespace's /proc/PID/root): the output folder, and the output's own folder.
    let given_folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (output_folder, beside_folder) = (
        identity(path).filter(|_| path.is_dir()),
        identity(given_folder),
    );
    // An input named as a temporary file of an atomic write, in the output folder or beside the output: the
    // write's clean-up of what killed writes left removes it (hostile pass 18: a whole input folder named
    // `.y.npy.AAAAAA.tmp` beside `y.npy` went). Temporaries go in both folders, whatever `beside` says.
    let written: Vec<Identity> = [output_folder, beside_folder]
        .into_iter()
        .flatten()
        .collect();
    for (input, input_path) in &all {
        let temporary = input_path.ancestors().find(|a| {
            a.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(cadet_core::io::is_temporary)
                && (outs
                    .iter()
                    .any(|out| a.parent() == Some(out.as_path()) || a.parent() == out.parent())
                    || a.parent()
                        .and_then(identity)
                        .is_some_and(|id| written.contains(&id)))
        });
        if let Some(temporary) = temporary {
            return Err(format!(
                "{flag} {}: the input {} is (or lies in) {}, named as a temporary file of a write there, \
                 which the write's clean-up removes; rename it",
                path.display(),
                input.display(),
                temporary.display()
            ));
        }
    }
    // A file an input folder links to, in the output folder or (`beside`) in the output file's folder, where
    // programs write pictures and reports under fixed names: a write there would change an image the run reads
    // (hostile pass 17: `cat/zz.png -> ../../out/originals.png` became a grid of the run's own views).
    for (input, walk) in &walks {
        let linked_file = walk.links.iter().filter(|t| !t.is_dir()).find(|target| {
            outs.iter().any(|out| {
                target.parent() == Some(out.as_path())
                    || (beside && target.parent() == out.parent())
            })
        });
        // The same by identity (a bind mount or another namespace's root on either side): the output folder
        // as the kernel resolves the path given, or (`beside`) the output file's folder.
        let written_to: Vec<Identity> = [output_folder, beside_folder.filter(|_| beside)]
            .into_iter()
            .flatten()
            .collect();
        let linked_file = linked_file.or_else(|| {
            walk.linked_file_folders
                .iter()
                .find(|(id, _)| written_to.contains(id))
                .map(|(_, target)| target)
        });
        if let Some(target) = linked_file {
            return Err(format!(
                "{flag} {}: the input {} links to {}, which lies where this output is written (a write \
                 there could replace it); write elsewhere",
                path.display(),
                input.display(),
                target.display()
            ));
        }
    }
    // The same place under another path than any of these (a bind mount of an input, of one of its
    // subfolders, or of the folder of a file it links to): by where each lies on its file system.
    if let Some(input) = mounted_input(&outs, &all, &mounts) {
        return Err(format!(
            "{flag} {}: lies in the input {} (reached through a mount); write it elsewhere",
            path.display(),
            input.display()
        ));
    }
    // The same folder or file under a path none of these explains (a bind mount, a mount hidden under another,
    // another mount namespace's `/proc/PID/root`): by device and inode, as the kernel resolves the path given.
    if let Some(input) = same_folder_as_an_input(path, &walks) {
        return Err(format!(
            "{flag} {}: is inside the input folder {} (reached by another path: a mount); write it elsewhere",
            path.display(),
            input.display()
        ));
    }
    if let Some(input) = same_file_as_an_input(path, &walks) {
        return Err(format!(
            "{flag} {}: is the input {} (reached by another path: a mount or a hard link); writing it would \
             destroy it",
            path.display(),
            input.display()
        ));
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

/// A file's or folder's identity: its device and inode (the same for every path that reaches it).
type Identity = (u64, u64);

/// The identity of what `path` reaches, as the kernel resolves it (links, mounts, `..`, `/proc/PID/root`).
#[cfg(unix)]
fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_: &Path) -> Option<Identity> {
    None
}

/// What a walk through an input finds, four levels deep (the class folders of a data folder's data sets),
/// entering up to 100,000 folders and links and listing up to ten million entries (files cost a listing, not a
/// look-up).
#[derive(Debug, Default)]
struct InputWalk {
    /// The resolved targets of the symbolic links (to folders and files) inside the input: what a data folder
    /// made of links really reads, which an output named by their own path would land in. (An output named
    /// through the data folder's path is caught whatever the depth: see [`not_an_input`].)
    links: Vec<PathBuf>,
    /// The identities of the input's folders (itself included) and of the folders its links point to: an
    /// output below one of them is inside the input, whatever path reaches it.
    folders: HashSet<Identity>,
    /// The identity of the input when it is a file, and of the files its links point to.
    files: HashSet<Identity>,
    /// The identities of the folders holding the files its links point to, as the kernel resolves each link
    /// (through bind mounts and other namespaces' `/proc/PID/root`), with the target's path for messages.
    linked_file_folders: Vec<(Identity, PathBuf)>,
}

impl InputWalk {
    /// Walks the input `dir` (resolved).
    fn of(dir: &Path) -> Self {
        Self::within(dir, 100_000, 10_000_000)
    }

    /// [`InputWalk::of`] entering at most `budget` folders and links and listing at most `listed` entries.
    fn within(dir: &Path, mut budget: usize, mut listed: usize) -> Self {
        let mut walk = Self::default();
        walk.note(dir);
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
                        return walk;
                    }
                    // The entry's type comes with the listing: only links and folders are looked up (a stat
                    // each), only folders entered, so the image files of a data set cost little.
                    match entry.file_type() {
                        Ok(t) if t.is_symlink() => {
                            budget -= 1;
                            let link = entry.path();
                            if let Ok(target) = link.canonicalize() {
                                walk.note(&target);
                                if !target.is_dir() {
                                    walk.note_linked_file(&link, &target);
                                }
                                walk.links.push(target);
                            }
                        }
                        Ok(t) if t.is_dir() => {
                            budget -= 1;
                            walk.note(&entry.path());
                            next.push(entry.path());
                        }
                        _ => {}
                    }
                }
            }
            level = next;
        }
        walk
    }

    /// Records the folder of the file the symbolic link `link` points to (`target`, canonical): by the link's
    /// own text resolved by the kernel (a canonical path names `/proc/PID/root/...` as `/...`), and by `target`.
    fn note_linked_file(&mut self, link: &Path, target: &Path) {
        let by_text = std::fs::read_link(link).ok().and_then(|text| {
            let full = match text.is_absolute() {
                true => text,
                false => link.parent()?.join(text),
            };
            identity(full.parent()?)
        });
        let by_target = target.parent().and_then(identity);
        for id in [by_text, by_target].into_iter().flatten() {
            self.linked_file_folders.push((id, target.to_path_buf()));
        }
    }

    /// Records the identity of the folder or file at `path`.
    fn note(&mut self, path: &Path) {
        if let Some(id) = identity(path) {
            match path.is_dir() {
                true => self.folders.insert(id),
                false => self.files.insert(id),
            };
        }
    }
}

/// The identities of the folders that hold the output `path` as the kernel resolves the path given (not a
/// normalised copy): its deepest existing folder, climbed by the `..` that the rest of the path holds, then
/// each parent by `..` up to the root. No path string is compared, so a bind mount, a mount hidden under
/// another or another mount namespace's `/proc/PID/root` cannot make the place look like another.
fn holding_folders(path: &Path) -> Vec<Identity> {
    let Some(absolute) = (match path.is_absolute() {
        true => Some(path.to_path_buf()),
        false => std::env::current_dir().ok().map(|d| d.join(path)),
    }) else {
        return Vec::new();
    };
    let parts: Vec<Component> = absolute.components().collect();
    let mut deepest = PathBuf::new();
    let mut existing = 0;
    for part in &parts {
        let next = deepest.join(part);
        if !next.is_dir() {
            break;
        }
        deepest = next;
        existing += 1;
    }
    // The rest does not exist yet: `create_dir_all` makes its folders and applies its `..` to them, so only a
    // `..` that climbs past what it makes leaves the deepest existing folder.
    let (mut below, mut up) = (0usize, 0usize);
    for part in &parts[existing..] {
        match part {
            Component::ParentDir if below > 0 => below -= 1,
            Component::ParentDir => up += 1,
            Component::Normal(_) => below += 1,
            _ => {}
        }
    }
    // The output itself, when it is an existing folder, holds what is written into it; a file does not.
    let mut at = deepest;
    for _ in 0..up {
        at.push("..");
    }
    let mut found: Vec<Identity> = Vec::new();
    // 4,096 levels: PATH_MAX allows no more `/a` steps.
    for _ in 0..4096 {
        let Some(id) = identity(&at) else { break };
        if found.last() == Some(&id) {
            break;
        }
        found.push(id);
        at.push("..");
    }
    found
}

/// The input whose folder (or a folder of it, or a folder it links to) holds the output `path`, by identity.
fn same_folder_as_an_input<'a>(path: &Path, walks: &[(&'a Path, InputWalk)]) -> Option<&'a Path> {
    holding_folders(path).into_iter().find_map(|id| {
        walks
            .iter()
            .find(|(_, walk)| walk.folders.contains(&id))
            .map(|(input, _)| *input)
    })
}

/// The input file that the output `path` is, by identity (a file reached through a mount of its folder).
fn same_file_as_an_input<'a>(path: &Path, walks: &[(&'a Path, InputWalk)]) -> Option<&'a Path> {
    let id = identity(path).filter(|_| !path.is_dir())?;
    walks
        .iter()
        .find(|(_, walk)| walk.files.contains(&id))
        .map(|(input, _)| *input)
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
        let found = super::InputWalk::within(&data, 10, 1_000_000).links;
        assert_eq!(found, vec![own.canonicalize().unwrap()]);
        assert!(super::not_an_input("--out", &own.join("fgsm.npy"), &[&data]).is_err());
    }

    /// Folders and files are found by identity as the kernel resolves the path given, climbing by `..`: a
    /// path through a link to a class folder (what a bind mount or another namespace's `/proc/PID/root` looks
    /// like to a string comparison) is inside the input, and `..` out of a folder is not inside it.
    #[cfg(unix)]
    #[test]
    fn inputs_are_found_by_identity_whatever_the_path() {
        use std::path::Path;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("dog").join("deep")).unwrap();
        std::fs::write(data.join("labels.txt"), b"x").unwrap();
        let walks = [(data.as_path(), super::InputWalk::of(&data))];
        // An alias the string checks are not shown: a link outside the data to its class folder.
        let alias = dir.path().join("alias");
        std::os::unix::fs::symlink(data.join("dog"), &alias).unwrap();
        let inside = |p: &Path| super::same_folder_as_an_input(p, &walks).is_some();
        assert!(inside(&alias.join("grids")));
        assert!(inside(&alias.join("new").join("deeper").join("r.md")));
        assert!(inside(&alias.join("deep").join("..").join("r.md")));
        assert!(
            inside(&alias),
            "the class folder itself, as an output folder"
        );
        // `..` climbing out: of the alias's target (the data folder: still inside), then out of the data.
        assert!(inside(&alias.join("..").join("r.md")));
        assert!(!inside(&alias.join("..").join("..").join("r.md")));
        assert!(!inside(
            &data.join("new").join("..").join("..").join("r.md")
        ));
        assert!(!inside(&dir.path().join("results").join("r.md")));
        // Through `/proc/self/root` (another namespace's would not resolve to `/` here).
        let proc_root = Path::new("/proc/self/root");
        if proc_root.is_dir() {
            let through = proc_root.join(data.strip_prefix("/").unwrap()).join("r.md");
            assert!(inside(&through), "{}", through.display());
        }
        // An input file reached by another path, and a hard link to it.
        let file_alias = alias.join("..").join("labels.txt");
        assert!(
            super::same_file_as_an_input(&file_alias, &walks).is_none(),
            "a file in a folder input is the folder's"
        );
        let labels = data.join("labels.txt");
        let file_walks = [(labels.as_path(), super::InputWalk::of(&labels))];
        let hard = dir.path().join("hard.txt");
        std::fs::hard_link(&labels, &hard).unwrap();
        assert!(super::same_file_as_an_input(&hard, &file_walks).is_some());
        assert!(super::not_an_input("--out", &hard, &[&labels]).is_err());
        assert!(super::same_file_as_an_input(&dir.path().join("other.txt"), &file_walks).is_none());
    }

    /// An input named as a temporary of a write beside the output (a folder or a file, or inside one) is
    /// refused: the write's clean-up would remove it (hostile pass 18).
    #[test]
    fn inputs_named_as_temporaries_of_an_output_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join(".y.npy.AAAAAA.tmp");
        std::fs::create_dir_all(images.join("cat")).unwrap();
        let out = dir.path().join("y.npy");
        let e = super::not_an_input("--out", &out, &[&images]).unwrap_err();
        assert!(e.contains("temporary"), "{e}");
        let inside = images.join("cat");
        assert!(super::not_an_input("--out", &out, &[&inside]).is_err());
        // Inside an output folder, and a plain name beside it, fine.
        let folder = dir.path().join("grids");
        let in_folder = folder.join(".originals.png.Qw3rty.tmp");
        std::fs::create_dir_all(&in_folder).unwrap();
        assert!(super::not_an_input("--out", &folder, &[&in_folder]).is_err());
        let plain = dir.path().join("images");
        std::fs::create_dir(&plain).unwrap();
        assert!(super::not_an_input("--out", &out, &[&plain]).is_ok());
    }

    /// An image of an input folder that links to a file where a run writes (inside its output folder, or beside
    /// its output file) is refused before the run replaces it (hostile pass 17).
    #[cfg(unix)]
    #[test]
    fn files_an_input_links_to_are_not_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("originals.png"), b"png").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("cat")).unwrap();
        let link = data.join("cat").join("zz.png");
        std::os::unix::fs::symlink(out.join("originals.png"), &link).unwrap();
        let e = super::not_an_input("--out", &out, &[&data]).unwrap_err();
        assert!(e.contains("links to") && e.contains("originals.png"), "{e}");
        // Beside an output file (pictures are written next to a report).
        let report = out.join("results.md");
        let e = super::not_an_input_file("--markdown", &report, &[&data]).unwrap_err();
        assert!(e.contains("links to"), "{e}");
        // The link's folder is known by identity too (what a bind mount of the output, on either side, or
        // another namespace's /proc/PID/root leaves to catch).
        let walk = super::InputWalk::of(&data);
        let out_id = super::identity(&out).unwrap();
        assert!(walk.linked_file_folders.iter().any(|(id, _)| *id == out_id));
        // Elsewhere is fine, a sibling output folder and an ancestor included.
        assert!(super::not_an_input("--out", &dir.path().join("results"), &[&data]).is_ok());
        assert!(super::not_an_input("--out", &out.join("grids"), &[&data]).is_ok());
        assert!(super::not_an_input_file("--markdown", &dir.path().join("r.md"), &[&data]).is_ok());
    }
}
