//! `.npy` image arrays with `.npy` labels (CIFAR-10.1's format: `uint8` images `(N, H, W, C)`, integer labels).

use std::path::Path;

use ndarray::{Array1, Array3, Array4, Axis};
use ndarray::{ArrayBase, Data, Dimension};
use ndarray_npy::{ReadNpyExt, WritableElement, WriteNpyExt};

use super::numbered;
use crate::{Dataset, Error, Result};

fn npy_error(path: &Path, reason: impl ToString) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Checks that the `.npy` file at `path` holds as many data bytes as its header's shape and dtype promise, before
/// a reader allocates for that shape: a header that claims `(10⁸, 20, 128)` float32 over a few KB of data is an
/// error here, not a terabyte allocation. Returns the shape. (Format errors the header parse does not reach are
/// left to the reader, which reports them.)
pub fn check_npy_size(path: impl AsRef<Path>) -> Result<Vec<usize>> {
    use std::io::Read;
    let path = path.as_ref();
    let mut f = open(path)?;
    let file_len = f
        .metadata()
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut head = [0u8; 12];
    let n = f.read(&mut head).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if n < 10 || &head[..6] != b"\x93NUMPY" {
        return Err(npy_error(path, "not a .npy file (no NUMPY magic)"));
    }
    let (header_len, start) = match head[6] {
        1 => (u64::from(u16::from_le_bytes([head[8], head[9]])), 10u64),
        2 | 3 if n >= 12 => (
            u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]])),
            12,
        ),
        v => {
            return Err(npy_error(
                path,
                format!(".npy format version {v} is not supported"),
            ));
        }
    };
    if start + header_len > file_len {
        return Err(npy_error(path, "truncated header"));
    }
    let mut header = vec![0u8; header_len as usize];
    let mut g = open(path)?;
    let mut skip = vec![0u8; start as usize];
    g.read_exact(&mut skip)
        .and_then(|_| g.read_exact(&mut header))
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let header = String::from_utf8_lossy(&header);
    let after = |key: &str| header.find(key).map(|i| &header[i + key.len()..]);
    let shape_text = after("'shape':")
        .and_then(|t| {
            t.find('(')
                .zip(t.find(')'))
                .map(|(a, b)| &t[a + 1..b.max(a + 1)])
        })
        .ok_or_else(|| npy_error(path, "header without a shape"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|e| npy_error(path, format!("header shape ({shape_text}): {e}")))?;
    let item = after("'descr':")
        .and_then(|t| {
            let t = t.trim_start().trim_start_matches(['\'', '"']);
            t.find(|c: char| c.is_ascii_digit()).map(|i| {
                t[i..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
        })
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(1);
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .and_then(|c| c.checked_mul(item))
        .ok_or_else(|| npy_error(path, format!("header shape {shape:?} overflows")))?;
    let available = file_len - start - header_len;
    if count > available {
        return Err(npy_error(
            path,
            format!(
                "the header promises shape {shape:?} ({count} bytes of data), the file holds {available}"
            ),
        ));
    }
    Ok(shape)
}

/// Writes `array` to `path` as `.npy`, atomically ([`cadet_core::io::write_atomic_with`]: a uniquely named
/// temporary file beside it, `fsync`, rename), so a crash never leaves a truncated array and a failed write
/// leaves the old file as it was.
pub fn save_npy<A, S, D>(array: &ArrayBase<S, D>, path: impl AsRef<Path>) -> Result<()>
where
    A: WritableElement,
    S: Data<Elem = A>,
    D: Dimension,
{
    let path = path.as_ref();
    enum Failure {
        Io(std::io::Error),
        Npy(ndarray_npy::WriteNpyError),
    }
    impl From<std::io::Error> for Failure {
        fn from(e: std::io::Error) -> Self {
            Failure::Io(e)
        }
    }
    cadet_core::io::write_atomic_with(path, |w| array.write_npy(w).map_err(Failure::Npy)).map_err(
        |e| match e {
            Failure::Io(source) => Error::Io {
                path: path.to_path_buf(),
                source,
            },
            Failure::Npy(e) => npy_error(path, e),
        },
    )
}

fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Images `(N, H, W, C)` or `(N, H, W)` as `uint8`, and labels of any integer dtype (`int64` in CIFAR-10.1);
/// `classes` names the labels, or `None` numbers them.
pub fn npy_images(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
    classes: Option<Vec<String>>,
) -> Result<Dataset> {
    let (ip, lp) = (images.as_ref(), labels.as_ref());
    let hwc = match Array4::<u8>::read_npy(open(ip)?) {
        Ok(a) => a,
        Err(e4) => match Array3::<u8>::read_npy(open(ip)?) {
            Ok(a) => a.insert_axis(Axis(3)),
            Err(_) => {
                return Err(npy_error(
                    ip,
                    format!("expected a uint8 array (N, H, W, C) or (N, H, W): {e4}"),
                ));
            }
        },
    };
    let images = hwc
        .permuted_axes([0, 3, 1, 2])
        .as_standard_layout()
        .into_owned();
    let labels = read_labels(lp)?;
    if labels.iter().any(|&l| l < 0 || l > i64::from(u32::MAX)) {
        return Err(npy_error(lp, "labels must be non-negative integers"));
    }
    let labels: Vec<u32> = labels.into_iter().map(|l| l as u32).collect();
    let classes =
        classes.unwrap_or_else(|| numbered(labels.iter().max().map_or(0, |&m| m as usize + 1)));
    Dataset::new(images, labels, classes)
}

/// A 1-d integer array of any common dtype, widened to `i64`.
fn read_labels(path: &Path) -> Result<Vec<i64>> {
    macro_rules! attempt {
        ($($t:ty),*) => {
            $(if let Ok(a) = Array1::<$t>::read_npy(open(path)?) {
                return Ok(a.iter().map(|&v| v as i64).collect());
            })*
        };
    }
    attempt!(i64, i32, i16, i8, u64, u32, u16, u8);
    Err(npy_error(path, "expected a 1-d integer array of labels"))
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn a_lying_header_is_refused_before_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.npy");
        let a = ndarray::Array3::<f32>::zeros((3, 4, 5));
        save_npy(&a, &good).unwrap();
        assert_eq!(check_npy_size(&good).unwrap(), vec![3, 4, 5]);
        // The same file with the header's first dimension changed to 100000000.
        let bytes = std::fs::read(&good).unwrap();
        let i = bytes.windows(9).position(|w| w == b"(3, 4, 5)").unwrap();
        let mut lie = bytes[..i].to_vec();
        lie.extend_from_slice(b"(100000000, 4, 5)");
        lie.extend_from_slice(&bytes[i + "(3, 4, 5)".len()..]);
        let bad = dir.path().join("bad.npy");
        std::fs::write(&bad, &lie).unwrap();
        let e = check_npy_size(&bad).unwrap_err().to_string();
        assert!(e.contains("promises") && e.contains("bad.npy"), "{e}");
        std::fs::write(&bad, b"not npy at all").unwrap();
        assert!(check_npy_size(&bad).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::write_npy;

    #[test]
    fn saves_atomically_sparing_unrelated_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        // Where a naive writer would put its temporary file.
        std::fs::write(dir.path().join("x.npy.tmp"), b"not ours").unwrap();
        save_npy(&Array1::from(vec![1.0f32, 2.0]), &path).unwrap();
        save_npy(&Array1::from(vec![3.0f32]), &path).unwrap();
        let back: Array1<f32> = ndarray_npy::read_npy(&path).unwrap();
        assert_eq!(back.to_vec(), vec![3.0]);
        assert_eq!(
            std::fs::read(dir.path().join("x.npy.tmp")).unwrap(),
            b"not ours"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn reads_cifar101_layout_and_rejects_wrong_dtypes() {
        let dir = tempfile::tempdir().unwrap();
        let (ip, lp) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
        let hwc = Array4::from_shape_fn((2, 2, 3, 3), |(n, y, x, c)| {
            (n * 100 + y * 30 + x * 3 + c) as u8
        });
        write_npy(&ip, &hwc).unwrap();
        write_npy(&lp, &Array1::from(vec![1i64, 0])).unwrap();
        let d = npy_images(&ip, &lp, None).unwrap();
        assert_eq!(d.image_shape(), (3, 2, 3));
        assert_eq!(d.images()[[1, 2, 1, 2]], hwc[[1, 1, 2, 2]]);
        assert_eq!(d.labels(), &[1, 0]);
        write_npy(&lp, &Array1::from(vec![1i64, 0, 1])).unwrap();
        assert!(matches!(
            npy_images(&ip, &lp, None),
            Err(Error::Mismatch { .. })
        ));
        write_npy(&lp, &Array1::from(vec![0.5f32, 1.0])).unwrap();
        assert!(matches!(npy_images(&ip, &lp, None), Err(Error::Npy { .. })));
        write_npy(&ip, &Array4::<f32>::zeros((2, 2, 3, 3))).unwrap();
        assert!(matches!(npy_images(&ip, &lp, None), Err(Error::Npy { .. })));
        std::fs::write(&ip, b"\x93NUMPY garbage").unwrap();
        assert!(matches!(npy_images(&ip, &lp, None), Err(Error::Npy { .. })));
        assert!(matches!(
            npy_images(dir.path().join("missing.npy"), &lp, None),
            Err(Error::Io { .. })
        ));
    }
}
