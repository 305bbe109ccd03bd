//! Atomic file writes: the one way the cadet crates replace a file.
//!
//! A file is written under a unique temporary name in the target's folder (created exclusively, so an unrelated
//! file such as `X.tmp` is never touched), flushed and `fsync`ed, then renamed over the target, and the folder
//! is synced. A reader sees the old file or the new one, never half of one; a write that fails (or a process
//! killed) midway leaves the target as it was. Temporary files of a failed write are removed.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("scores.txt");
//! cadet_core::io::write_atomic(&path, b"0.1 0.2")?;
//! // A failing writer leaves the file as it was.
//! let failed = cadet_core::io::write_atomic_with(&path, |w| {
//!     w.write_all(b"half")?;
//!     Err(std::io::Error::other("the computation failed"))
//! });
//! assert!(failed.is_err());
//! assert_eq!(std::fs::read(&path)?, b"0.1 0.2");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder of `path` (`.` for a bare file name) and its file name.
fn split(path: &Path) -> std::io::Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{}: not a file path", path.display()),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// A temporary-file builder named after `name`, creating files with ordinary permissions (those of the target
/// when it exists, else `0o666` for files and `0o777` for folders, both less the umask) rather than
/// tempfile's private `0o600`.
fn builder<'a>(prefix: &'a str, target: &Path, folder: bool) -> tempfile::Builder<'a, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let permissions = match std::fs::metadata(target) {
            Ok(m) if m.is_dir() == folder => m.permissions(),
            _ => std::fs::Permissions::from_mode(if folder { 0o777 } else { 0o666 }),
        };
        b.permissions(permissions);
    }
    #[cfg(not(unix))]
    let _ = (target, folder);
    b
}

/// `e` with `path` named in its message (the kind kept): "File exists (os error 17)" alone says nothing
/// about which of a program's files failed.
/// The temporary file's own path, which the `tempfile` crate appends (" at path \"…/.name.XXXX.tmp\""), is
/// dropped: the user named `path`, not the temporary.
fn with_path(path: &Path, e: std::io::Error) -> std::io::Error {
    let mut reason = e.to_string();
    if let Some(at) = reason.find(" at path \"") {
        reason.truncate(at);
    }
    let folder_missing = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .is_some_and(|p| !p.exists());
    let hint = match e.kind() {
        std::io::ErrorKind::NotFound if folder_missing => " (its folder does not exist)",
        _ => "",
    };
    std::io::Error::new(
        e.kind(),
        format!("cannot write {}: {reason}{hint}", path.display()),
    )
}

/// Refuses to replace anything but a regular file: a rename over `/dev/null`, a FIFO or a socket would put a
/// regular file in its place (a device node destroyed), and over a folder it fails later with a vaguer error.
fn refuse_special(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() || meta.is_file() => Ok(()),
        Ok(_) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "cannot write {}: not a regular file (a device, FIFO, socket or folder is never replaced)",
                path.display()
            ),
        )),
        Err(_) => Ok(()),
    }
}

/// Syncs a folder, so that a rename inside it survives a crash (a no-op where folders cannot be opened).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// How old a temporary folder of this module must be before a later write of the same target removes it: older
/// than any write takes, so a concurrent writer's folder is never touched. (Temporary *files* are locked by
/// their writer, and removed as soon as no process holds the lock: [`remove_stale_temporaries`].)
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// A temporary file younger than this is left alone even when unlocked: its writer may not have locked it yet
/// (it locks it right after creating it).
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether `entry` is one of this module's temporary files or folders for the target `name`:
/// `.{name}.` + six letters or digits (tempfile's random part) + `.tmp`.
fn is_temporary_of(entry: &str, name: &str) -> bool {
    entry
        .strip_prefix('.')
        .and_then(|e| e.strip_prefix(name))
        .and_then(|e| e.strip_prefix('.'))
        .and_then(|e| e.strip_suffix(".tmp"))
        .is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Whether `entry` is named as the temporary file of an atomic write of some file (`.NAME.XXXXXX.tmp`): what
/// [`remove_stale_temporaries`] removes beside `NAME` when no writer holds it. Programs refuse inputs named so
/// beside their outputs (the removal would destroy them).
///
/// ```
/// use cadet_core::io::is_temporary;
/// assert!(is_temporary(".cal.json.a1B2c3.tmp"));
/// assert!(!is_temporary("cal.json") && !is_temporary(".cal.json.tmp"));
/// ```
pub fn is_temporary(entry: &str) -> bool {
    entry
        .strip_prefix('.')
        .and_then(|e| e.strip_suffix(".tmp"))
        .and_then(|e| e.rsplit_once('.'))
        .is_some_and(|(name, _)| is_temporary_of(entry, name))
}

/// Removes temporary files and folders that a killed write of `name` left in `dir` (a crash loses nothing, and
/// leaves nothing behind): a file as soon as no process holds its lock (a writer locks its temporary file for
/// as long as it writes; the lock dies with the process), a folder more than [`STALE_AFTER`] ago. Best effort:
/// a failure here never fails the write.
pub fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(entry_name) = file_name.to_str() else {
            continue;
        };
        if !is_temporary_of(entry_name, name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let older_than = |limit| {
            meta.modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > limit)
        };
        let stale = if meta.is_file() {
            // Unlocked, and past the moment between its creation and its writer's lock.
            older_than(LOCK_GRACE)
                && std::fs::File::open(entry.path()).is_ok_and(|f| f.try_lock().is_ok())
        } else {
            older_than(STALE_AFTER)
        };
        if stale {
            let _ = if meta.is_dir() {
                remove_flat_folder(&entry.path(), |_| true).map(drop)
            } else {
                std::fs::remove_file(entry.path())
            };
        }
    }
}

/// Whether `path` is a mount point: another device than its parent folder's, or (a bind mount of the same file
/// system) a mount point in `/proc/self/mountinfo`. When the mount table exists but cannot be read, `true`
/// (leave it alone).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// std::fs::create_dir(dir.path().join("a"))?;
/// assert!(!cadet_core::io::is_mount_point(&dir.path().join("a")));
/// # #[cfg(target_os = "linux")]
/// assert!(cadet_core::io::is_mount_point(std::path::Path::new("/")));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn is_mount_point(path: &Path) -> bool {
    // The kernel's own answer where it gives one (Linux 5.8+): right through another namespace's
    // `/proc/PID/root`, where a path compared with this process's mount table is not (hostile pass 21).
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{AtFlags, CWD, StatxAttributes, StatxFlags, statx};
        let st = statx(
            CWD,
            path,
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::BASIC_STATS,
        );
        if let Ok(st) = st
            && st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
        {
            return st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (
            std::fs::symlink_metadata(path),
            std::fs::metadata(path.join("..")),
        ) {
            (Ok(own), Ok(parent)) if own.dev() != parent.dev() => return true,
            (Ok(_), Ok(_)) => {}
            _ => return true,
        }
    }
    let table = Path::new("/proc/self/mountinfo");
    if !table.exists() {
        return false;
    }
    let Ok(canonical) = path.canonicalize() else {
        return true;
    };
    let Ok(bytes) = crate::limits::read_capped(table, MAX_MOUNT_TABLE) else {
        return true;
    };
    // Mount points are the fifth field.
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| mountinfo_path(point) == canonical)
}

/// The most of `/proc/self/mountinfo` read: about 300,000 mounts (a hostile pass stacked 2,600 mounts past
/// the 8 MiB read before, and the checks that read it fell silent).
pub const MAX_MOUNT_TABLE: u64 = 64 << 20;

/// A path field of `/proc/self/mountinfo` decoded: spaces, tabs, newlines and backslashes are written there as
/// octal escapes (`\040`).
///
/// ```
/// let decoded = cadet_core::io::mountinfo_path(r"/mnt/my\040data");
/// assert_eq!(decoded, std::path::PathBuf::from("/mnt/my data"));
/// ```
pub fn mountinfo_path(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(b.len()), 0);
    while i < b.len() {
        match b.get(i + 1..i + 4) {
            Some(d) if b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) => {
                out.push(
                    d.iter()
                        .fold(0u8, |v, c| v.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

/// Removes the folder `dir` if it holds only regular files whose names `allowed` accepts (what a staged write
/// leaves), file by file; a folder holding anything else (a subfolder, a link, another file: an input named
/// like a temporary, or a mount of one) is left whole. Returns whether it was removed.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let staged = dir.path().join(".ckpt-1.a1B2c3.tmp");
/// std::fs::create_dir_all(staged.join("cat"))?; // a subfolder: not a staged write's
/// assert!(!cadet_core::io::remove_flat_folder(&staged, |_| true)?);
/// std::fs::remove_dir(staged.join("cat"))?;
/// std::fs::write(staged.join("model.bpk"), b"x")?;
/// assert!(cadet_core::io::remove_flat_folder(&staged, |name| name == "model.bpk")?);
/// assert!(!staged.exists());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_flat_folder(dir: &Path, allowed: impl Fn(&str) -> bool) -> std::io::Result<bool> {
    // A mount point (a folder mounted at a temporary's name) is someone's data: its files would go, and only
    // the folder itself would fail to (hostile pass 20 emptied a checkpoint and a folder of inputs so).
    // A symbolic link named like a temporary or a checkpoint is removed by its owner's code as a link, never
    // followed (hostile pass 21: a link to another run's checkpoint had its files deleted).
    if std::fs::symlink_metadata(dir)?.file_type().is_symlink() || is_mount_point(dir) {
        return Ok(false);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let is_file = entry.file_type()?.is_file();
        match (is_file, name.to_str()) {
            (true, Some(name)) if allowed(name) => files.push(entry.path()),
            _ => return Ok(false),
        }
    }
    for file in files {
        std::fs::remove_file(file)?;
    }
    std::fs::remove_dir(dir)?;
    Ok(true)
}

/// Writes the file `path` atomically with what `write` writes (through a buffer): a unique temporary file
/// beside it, `fsync`, rename. When `write` (or the flush) fails, the temporary file is removed and `path` is
/// left untouched; the error is `write`'s.
pub fn write_atomic_with<E, F>(path: &Path, write: F) -> Result<(), E>
where
    E: From<std::io::Error>,
    F: FnOnce(&mut dyn Write) -> Result<(), E>,
{
    let (dir, name) = split(path)?;
    refuse_special(path)?;
    remove_stale_temporaries(&dir, &name);
    let prefix = format!(".{name}.");
    let named = |e: std::io::Error| with_path(path, e);
    let tmp = builder(&prefix, path, false)
        .tempfile_in(&dir)
        .map_err(named)?;
    // Held until the file is renamed or removed: another process's clean-up sees a write in progress. Best
    // effort: where the file system has no locks, clean-up's own `try_lock` fails too and removes nothing, so
    // the write goes on rather than failing over a lock.
    let _ = tmp.as_file().lock();
    let mut writer = std::io::BufWriter::new(tmp);
    write(&mut writer)?;
    let tmp = writer.into_inner().map_err(|e| named(e.into_error()))?;
    tmp.as_file().sync_all().map_err(named)?;
    tmp.persist(path).map_err(|e| named(e.error))?;
    sync_dir(&dir).map_err(named)?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_atomic_with`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// A fresh, uniquely named, empty folder beside `path` (named after it), for writers that need a path rather
/// than a stream (e.g. a library's `save_file`): write into it, then [`commit_dir`] or [`commit_file`]. The
/// folder is removed when dropped.
pub fn staging_dir(path: &Path) -> std::io::Result<tempfile::TempDir> {
    let (dir, name) = split(path)?;
    remove_stale_temporaries(&dir, &name);
    let prefix = format!(".{name}.");
    builder(&prefix, path, true).tempdir_in(dir)
}

/// Syncs every file of the staged folder `staged`, then renames the folder to `path`, which must not exist
/// (folders are never replaced: a rename cannot atomically swap a non-empty folder).
pub fn commit_dir(staged: tempfile::TempDir, path: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(staged.path())? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(staged.path())?;
    if path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", path.display()),
        ));
    }
    let staged = staged.keep();
    if let Err(e) = std::fs::rename(&staged, path) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e);
    }
    let (dir, _) = split(path)?;
    sync_dir(&dir)
}

/// Moves the file `file` (written by a library into a [`staging_dir`]) over `path` atomically: `fsync`, rename,
/// folder sync. `file` must be in the same folder tree as `path` (the staging folder is).
pub fn commit_file(file: &Path, path: &Path) -> std::io::Result<()> {
    refuse_special(path)?;
    std::fs::File::open(file)?.sync_all()?;
    std::fs::rename(file, path)?;
    let (dir, _) = split(path)?;
    sync_dir(&dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write into a folder that does not exist names the target once, says why, and not the temporary file
    /// (`tempfile` appends its own path; the message used to name the output three times).
    #[test]
    fn a_failed_write_names_the_target_once() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("missing").join("out.bin");
        let e = write_atomic(&target, b"x").unwrap_err().to_string();
        assert_eq!(e.matches("out.bin").count(), 1, "{e}");
        assert!(
            !e.contains(".out.bin.") && e.contains("its folder does not exist"),
            "{e}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_special_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        if std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            let e = write_atomic(&fifo, b"x").unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
            use std::os::unix::fs::FileTypeExt;
            assert!(
                std::fs::symlink_metadata(&fifo)
                    .unwrap()
                    .file_type()
                    .is_fifo()
            );
        }
        assert!(write_atomic(dir.path(), b"x").is_err());
    }

    #[test]
    fn temporaries_of_killed_writes_are_removed_live_and_unrelated_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cal.json");
        let old = std::time::SystemTime::now() - STALE_AFTER - std::time::Duration::from_secs(60);
        let make = |name: &str, age: Option<std::time::SystemTime>| {
            let p = dir.path().join(name);
            std::fs::write(&p, b"x").unwrap();
            if let Some(t) = age {
                std::fs::File::options()
                    .write(true)
                    .open(&p)
                    .unwrap()
                    .set_modified(t)
                    .unwrap();
            }
        };
        let recent = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        make(".cal.json.a1B2c3.tmp", Some(old)); // a killed write, long ago
        make(".cal.json.k1LL3d.tmp", Some(recent)); // a write killed 10 s ago: no lock held
        make(".cal.json.Zz9Yy8.tmp", Some(recent)); // a write in progress elsewhere: locked below
        make(".cal.json.n3WwWw.tmp", None); // just created, not locked yet
        make(".cal.json.tmp", Some(old)); // not ours: no random part
        make(".other.json.a1B2c3.tmp", Some(old)); // another target's
        let stale_dir = dir.path().join(".cal.json.q1w2e3.tmp");
        std::fs::create_dir(&stale_dir).unwrap();
        std::fs::write(stale_dir.join("inner"), b"x").unwrap();
        std::fs::File::open(&stale_dir)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let writer = std::fs::File::open(dir.path().join(".cal.json.Zz9Yy8.tmp")).unwrap();
        writer.lock().unwrap();
        write_atomic(&path, b"{}").unwrap();
        drop(writer);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".cal.json.Zz9Yy8.tmp",
                ".cal.json.n3WwWw.tmp",
                ".cal.json.tmp",
                ".other.json.a1B2c3.tmp",
                "cal.json"
            ]
        );
    }

    #[test]
    fn replaces_the_target_and_spares_unrelated_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        // Names a naive helper would use for its temporary file.
        for other in ["x.tmp", "x.json.tmp", ".x.json.tmp"] {
            std::fs::write(dir.path().join(other), b"someone else's").unwrap();
        }
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        for other in ["x.tmp", "x.json.tmp", ".x.json.tmp"] {
            assert_eq!(
                std::fs::read(dir.path().join(other)).unwrap(),
                b"someone else's",
                "{other}"
            );
        }
        // Nothing else is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
        // Ordinary permissions (not tempfile's private 0o600), and an existing file keeps its own.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            let fresh = dir.path().join("fresh");
            write_atomic(&fresh, b"x").unwrap();
            let plain = dir.path().join("plain");
            std::fs::write(&plain, b"x").unwrap();
            assert_eq!(
                mode(&fresh),
                mode(&plain),
                "as std::fs::write would create it"
            );
            std::fs::remove_file(&plain).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            write_atomic(&path, b"third").unwrap();
            assert_eq!(mode(&path), 0o640);
        }
    }

    #[test]
    fn a_failed_write_leaves_the_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        write_atomic(&path, b"good").unwrap();
        let out: Result<(), std::io::Error> = write_atomic_with(&path, |w| {
            w.write_all(&[0u8; 100_000])?;
            Err(std::io::Error::other("killed midway"))
        });
        assert_eq!(out.unwrap_err().to_string(), "killed midway");
        assert_eq!(std::fs::read(&path).unwrap(), b"good");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A target in a missing folder is an error, not a panic.
        assert!(write_atomic(&dir.path().join("no/such/file"), b"x").is_err());
    }

    #[test]
    fn staged_folders_commit_only_to_a_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("ckpt-1");
        let staged = staging_dir(&target).unwrap();
        std::fs::write(staged.path().join("a"), b"1").unwrap();
        commit_dir(staged, &target).unwrap();
        assert_eq!(std::fs::read(target.join("a")).unwrap(), b"1");
        let staged = staging_dir(&target).unwrap();
        std::fs::write(staged.path().join("a"), b"2").unwrap();
        assert!(commit_dir(staged, &target).is_err());
        assert_eq!(std::fs::read(target.join("a")).unwrap(), b"1");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
