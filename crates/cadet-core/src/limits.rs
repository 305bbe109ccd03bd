//! Bounds on what an untrusted file or flag may make the crates allocate or read.
//!
//! Every size that comes from outside the program (a header's shape, a tensor's byte count, an image's
//! dimensions, a flag) is checked against a [`Limits`] *before* anything is allocated, with checked arithmetic,
//! and files are opened through [`open_regular`], which refuses FIFOs, devices and folders (a `/dev/zero` in
//! an image folder would otherwise be read until memory runs out, a FIFO would hang forever).
//!
//! The defaults suit a workstation; a caller with larger data raises them field by field.
//!
//! ```
//! use cadet_core::limits::Limits;
//!
//! let limits = Limits::default();
//! // 1000 images of 3 × 32 × 32 f32 values: fine.
//! assert_eq!(limits.check_alloc("images", &[1000, 3, 32, 32], 4)?, 12_288_000);
//! // A header claiming (10⁶, 1000, 1000, 3) f32 values is refused before any allocation.
//! assert!(limits.check_alloc("images", &[1_000_000, 1000, 1000, 3], 4).is_err());
//! // Extents whose product overflows are refused too.
//! assert!(limits.check_alloc("images", &[usize::MAX, 2], 1).is_err());
//! // A service with more memory raises the bound.
//! let big = Limits { max_alloc_bytes: 64 << 30, ..Limits::default() };
//! assert!(big.check_alloc("images", &[100_000, 3, 224, 224], 4).is_ok());
//! # Ok::<(), cadet_core::Error>(())
//! ```

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// Upper bounds on sizes read from files and flags. Construct with [`Limits::default`] and raise a field where
/// a workload needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes one array built from a file's or a flag's claim may take (default 16 GiB).
    pub max_alloc_bytes: u64,
    /// The most bytes of a file read whole into memory, such as an image or a JSON file (default 1 GiB).
    pub max_file_bytes: u64,
    /// The most bytes of a format's header (`.npy`, safetensors; default 100 MiB, safetensors' own cap).
    pub max_header_bytes: u64,
    /// The widest or tallest image accepted, in pixels (default 16,384).
    pub max_image_side: u32,
    /// The most pixels (width × height) of one image, checked before it is decoded (default 64 megapixels).
    pub max_image_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Limits {
    /// The documented defaults (see each field).
    pub const DEFAULT: Limits = Limits {
        max_alloc_bytes: 16 << 30,
        max_file_bytes: 1 << 30,
        max_header_bytes: 100 << 20,
        max_image_side: 16_384,
        max_image_pixels: 64 << 20,
    };

    /// The byte size of an array of `shape` with elements of `element_bytes` bytes, checked against
    /// [`max_alloc_bytes`](Self::max_alloc_bytes) with overflow-checked arithmetic. Returns the byte count.
    pub fn check_alloc(&self, what: &str, shape: &[usize], element_bytes: usize) -> Result<usize> {
        let bytes = shape
            .iter()
            .try_fold(element_bytes, |acc, &d| acc.checked_mul(d))
            .filter(|&b| (b as u64) <= self.max_alloc_bytes);
        bytes.ok_or_else(|| Error::LimitExceeded {
            what: format!("{what} of shape {shape:?} ({element_bytes} bytes per element)"),
            limit: format!("{} bytes (Limits::max_alloc_bytes)", self.max_alloc_bytes),
        })
    }

    /// Checks an image's dimensions, read from its header, before it is decoded.
    pub fn check_image(&self, what: &str, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidParameter {
                name: "image",
                reason: format!("{what}: {width} × {height} pixels, an image needs at least one"),
            });
        }
        let side = width.max(height);
        if side > self.max_image_side {
            return Err(Error::LimitExceeded {
                what: format!("{what}: {width} × {height} pixels"),
                limit: format!(
                    "{} pixels per side (Limits::max_image_side)",
                    self.max_image_side
                ),
            });
        }
        if width as u64 * height as u64 > self.max_image_pixels {
            return Err(Error::LimitExceeded {
                what: format!("{what}: {width} × {height} pixels"),
                limit: format!(
                    "{} pixels (Limits::max_image_pixels)",
                    self.max_image_pixels
                ),
            });
        }
        Ok(())
    }
}

/// The reason alone: every caller wraps the error with the path it opened (naming it here too printed it twice).
fn invalid(reason: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, reason.to_string())
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// Opens `path` for reading if it is a regular file (symbolic links are followed): FIFOs, devices, sockets and
/// folders are refused with an [`InvalidInput`](std::io::ErrorKind::InvalidInput) error saying what the path
/// is (not the path itself: wrap the error with it, as an `io::Error` from `File::open` needs anyway), checked
/// before opening (opening a FIFO blocks) and again on the opened file.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(invalid(format!(
            "{}, only regular files are read",
            kind_of(&meta)
        )));
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(invalid(format!(
            "{}, only regular files are read",
            kind_of(&meta)
        )));
    }
    Ok(file)
}

/// Reads the regular file `path` whole, refusing files over `max_bytes` (checked from its size before reading,
/// and while reading, for a file that grows).
pub fn read_capped(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > max_bytes {
        return Err(invalid(format!(
            "{len} bytes, more than the limit of {max_bytes}"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(invalid(format!(
            "grew past the limit of {max_bytes} bytes while read"
        )));
    }
    Ok(bytes)
}

/// How much memory a program may ask for now, and which bound sets it: the smallest of `ceiling`, the memory
/// available (`MemAvailable` of `/proc/meminfo`) and the address space left under `ulimit -v` (the soft
/// `RLIMIT_AS` of `/proc/self/limits`, less the `VmSize` mapped already). Where `/proc` cannot be read (not
/// Linux), `ceiling` alone. A request checked against it is refused with a message instead of aborting in the
/// allocator.
///
/// ```
/// let (bytes, why) = cadet_core::limits::memory_budget(16 << 30);
/// assert!(bytes <= 16 << 30 && !why.is_empty());
/// ```
pub fn memory_budget(ceiling: u64) -> (u64, &'static str) {
    let mut budget = (ceiling, "the ceiling");
    if let Some(free) = proc_kb("/proc/meminfo", "MemAvailable:").filter(|&f| f < budget.0) {
        budget = (free, "the memory available now");
    }
    if let Some(left) = address_space_left().filter(|&l| l < budget.0) {
        budget = (left, "the address space left under ulimit -v");
    }
    budget
}

/// Refuses `bytes` for `what` when over [`memory_budget`]`(ceiling)`, naming both sizes, the bound that holds
/// and `advice`.
///
/// ```
/// use cadet_core::limits::check_memory;
/// assert!(check_memory("a small batch", 1 << 20, 16 << 30, "use a smaller --batch").is_ok());
/// let err = check_memory("a huge batch", 1 << 50, 16 << 30, "use a smaller --batch").unwrap_err();
/// let text = err.to_string();
/// assert!(text.contains("a huge batch would need 1048576.0 GiB") && text.ends_with("use a smaller --batch"));
/// ```
pub fn check_memory(what: &str, bytes: u128, ceiling: u64, advice: &str) -> Result<()> {
    let (limit, why) = memory_budget(ceiling);
    if bytes > u128::from(limit) {
        let gib = |b: f64| b / (1u64 << 30) as f64;
        return Err(Error::LimitExceeded {
            what: format!("{what} would need {:.1} GiB", gib(bytes as f64)),
            limit: format!("{:.1} GiB ({why}): {advice}", gib(limit as f64)),
        });
    }
    Ok(())
}

/// A number of kB after `key` in a Linux `/proc` file (`/proc/meminfo`, `/proc/self/status`), in bytes.
fn proc_kb(file: &str, key: &str) -> Option<u64> {
    let text = read_capped(Path::new(file), 1 << 16).ok()?;
    let text = String::from_utf8_lossy(&text);
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kb.checked_mul(1024)
}

/// The address space this process may still map under its soft `RLIMIT_AS` (`ulimit -v`), when one is set:
/// the limit from `/proc/self/limits` less the `VmSize` mapped now. Read from `/proc` because `getrlimit` would
/// need `unsafe` or a crate for one number.
fn address_space_left() -> Option<u64> {
    let text = read_capped(Path::new("/proc/self/limits"), 1 << 16).ok()?;
    let text = String::from_utf8_lossy(&text);
    let soft = text
        .lines()
        .find_map(|l| l.strip_prefix("Max address space"))?
        .split_whitespace()
        .next()?;
    let limit: u64 = soft.parse().ok()?; // "unlimited" does not parse: no limit
    Some(limit.saturating_sub(proc_kb("/proc/self/status", "VmSize:").unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_bound_and_overflow() {
        let l = Limits {
            max_alloc_bytes: 1000,
            ..Limits::default()
        };
        assert_eq!(l.check_alloc("x", &[10, 25], 4).unwrap(), 1000);
        assert!(matches!(
            l.check_alloc("x", &[10, 26], 4),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(l.check_alloc("x", &[usize::MAX, usize::MAX], 4).is_err());
        assert_eq!(l.check_alloc("x", &[0, usize::MAX], 4).unwrap(), 0);
    }

    #[test]
    fn image_bounds() {
        let l = Limits::default();
        assert!(l.check_image("a.png", 32, 32).is_ok());
        assert!(l.check_image("a.png", 0, 32).is_err());
        assert!(l.check_image("a.png", 32, 0).is_err());
        assert!(l.check_image("a.png", 100_000, 1).is_err());
        assert!(l.check_image("a.png", 8000, 9000).is_err());
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        std::fs::write(&file, [1u8, 2, 3]).unwrap();
        assert_eq!(read_capped(&file, 3).unwrap(), vec![1, 2, 3]);
        let e = read_capped(&file, 2).unwrap_err();
        assert_eq!(e.to_string(), "3 bytes, more than the limit of 2");
        let e = open_regular(dir.path()).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
        #[cfg(unix)]
        {
            let e = read_capped(Path::new("/dev/zero"), 1 << 20).unwrap_err();
            assert!(e.to_string().contains("a device"), "{e}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !matches!(status, Ok(s) if s.success()) {
            return; // no mkfifo on this machine: nothing to test
        }
        let e = open_regular(&fifo).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
    }
}
