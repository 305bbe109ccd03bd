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
    /// An overlay's layers (its `lowerdir` folders and `upperdir`), where the files read through it lie;
    /// empty for other mounts.
    pub(super) layers: Vec<PathBuf>,
}

/// The mounts of this process, from `/proc/self/mountinfo` (Linux; none elsewhere, or when unreadable).
pub(super) fn mounts() -> Vec<Mount> {
    let Ok(bytes) = cadet_core::limits::read_capped(
        Path::new("/proc/self/mountinfo"),
        cadet_core::io::MAX_MOUNT_TABLE,
    ) else {
        return Vec::new();
    };
    let unescape = cadet_core::io::mountinfo_path;
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            // After the optional fields, `-`, the file system type, the source and the super options.
            let dash = fields.iter().position(|f| *f == "-");
            let tail = |k: usize| dash.and_then(|d| fields.get(d + k)).copied();
            let layers = match (tail(1), tail(3)) {
                (Some("overlay"), Some(options)) => overlay_layers(options)
                    .into_iter()
                    .map(|l| unescape(&l))
                    .collect(),
                _ => Vec::new(),
            };
            Some(Mount {
                device: fields.get(2)?.to_string(),
                root: unescape(fields.get(3)?),
                point: unescape(fields.get(4)?),
                layers,
            })
        })
        .collect()
}

/// The layers of an overlay from its super options (`lowerdir=/a:/b,upperdir=/u,workdir=/w`, or the
/// `lowerdir+=` / `datadir+=` form): the folders its files lie in. (`\:` and `\,` in a path are the kernel's
/// escapes of `:` and `,`.)
fn overlay_layers(options: &str) -> Vec<String> {
    let split = |text: &str, at: char| -> Vec<String> {
        let mut parts = vec![String::new()];
        let mut escaped = false;
        for c in text.chars() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, c) if c == at => parts.push(String::new()),
                (true, c) if c == at => {
                    parts.last_mut().expect("one part").push(c);
                    escaped = false;
                }
                (true, c) => {
                    let last = parts.last_mut().expect("one part");
                    last.push('\\');
                    last.push(c);
                    escaped = false;
                }
                (false, c) => parts.last_mut().expect("one part").push(c),
            }
        }
        parts
    };
    split(options, ',')
        .into_iter()
        .filter_map(|option| {
            let (key, value) = option.split_once('=')?;
            match key {
                "lowerdir" => Some(split(value, ':')),
                "lowerdir+" | "datadir+" | "upperdir" => Some(vec![value.to_string()]),
                _ => None,
            }
        })
        .flatten()
        .filter(|layer| !layer.is_empty())
        .collect()
}

/// Where the files of the resolved `path` lie when it is read through an overlay: `path` within each of the
/// overlay's layers (an input read through an overlay is its lower and upper folders' files: writing there
/// changes it).
pub(super) fn overlay_places(path: &Path, mounts: &[Mount]) -> Vec<PathBuf> {
    let Some((_, mount)) = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.point))
        .max_by_key(|(i, m)| (m.point.components().count(), *i))
    else {
        return Vec::new();
    };
    let Ok(rest) = path.strip_prefix(&mount.point) else {
        return Vec::new();
    };
    mount.layers.iter().map(|layer| layer.join(rest)).collect()
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
            layers: Vec::new(),
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
                layers: Vec::new(),
            },
            super::Mount {
                device: "1:1".into(),
                root: data.join("dog"),
                point: bind.clone(),
                layers: Vec::new(),
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

    /// An overlay's layers from its super options, and where an input read through it lies (hostile pass 18:
    /// an output into the lower layer replaced the input read through the overlay).
    #[test]
    fn overlay_layers_are_where_its_files_lie() {
        use std::path::{Path, PathBuf};
        assert_eq!(
            super::overlay_layers("rw,lowerdir=/l1:/l\\:2,upperdir=/u,workdir=/w,index=off"),
            vec!["/l1", "/l:2", "/u"]
        );
        assert_eq!(
            super::overlay_layers("rw,lowerdir+=/a,lowerdir+=/b,datadir+=/d"),
            vec!["/a", "/b", "/d"]
        );
        assert!(super::overlay_layers("rw,relatime").is_empty());
        let overlay = super::Mount {
            device: "0:77".into(),
            root: "/".into(),
            point: "/merged".into(),
            layers: vec!["/lower".into(), "/upper".into()],
        };
        assert_eq!(
            super::overlay_places(Path::new("/merged/cat/0.png"), &[overlay]),
            vec![
                PathBuf::from("/lower/cat/0.png"),
                PathBuf::from("/upper/cat/0.png")
            ]
        );
    }
}
