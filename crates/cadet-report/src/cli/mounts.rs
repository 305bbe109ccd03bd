//! Where a path lies on its file system, from the mount table: the same folder reached through a bind mount
//! has one place, whatever path names it.

use std::path::{Path, PathBuf};

/// A mount: the device, the path within its file system that is mounted (`/` unless a bind mount of a part),
/// and where it is mounted.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Mount {
    pub(super) device: String,
    pub(super) root: PathBuf,
    pub(super) point: PathBuf,
}

/// The most of `/proc/self/mountinfo` read: about 300,000 mounts (hostile pass 16 stacked 2,600 mounts past
/// the 8 MiB read before, and the check fell silent).
const MAX_MOUNT_TABLE: u64 = 64 << 20;

/// The mounts of this process, from `/proc/self/mountinfo` (Linux; none elsewhere, or when unreadable).
pub(super) fn mounts() -> Vec<Mount> {
    let Ok(bytes) =
        cadet_core::limits::read_capped(Path::new("/proc/self/mountinfo"), MAX_MOUNT_TABLE)
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
pub(super) fn mounted_input<'a>(
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

#[cfg(test)]
mod tests {
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
