//! `.npy` image arrays with `.npy` labels (CIFAR-10.1's format: `uint8` images `(N, H, W, C)`, integer labels).

use std::path::Path;

use ndarray::{Array1, Array3, Array4, Axis};
use ndarray::{ArrayBase, Data, Dimension};
use ndarray_npy::{ReadNpyExt, WritableElement, WriteNpyExt};

use cadet_core::limits::Limits;

use super::numbered;
use crate::{Dataset, Error, Result};

fn npy_error(path: &Path, reason: impl ToString) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// `text` cut to its first `max` characters, with a mark when cut.
fn shortened(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!(
            "{} … ({} characters in all)",
            &text[..cut],
            text.chars().count()
        ),
        None => text.to_string(),
    }
}

/// What an `.npy` header declares, read by ndarray-npy's own header parser, so that the size checked here is
/// the size the reader allocates (a header with a key twice is read the same way by both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The array's shape.
    pub shape: Vec<usize>,
    /// The dtype descriptor as NumPy writes it (e.g. `<f4`, `|u1`).
    pub descr: String,
    /// Bytes per element, from the descriptor.
    pub item_bytes: usize,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Bytes of data the header promises (shape × item size).
    pub data_bytes: u64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads and checks the header of the `.npy` file at `path` before anything is allocated for its data: the
/// header's own length is bounded by [`Limits::max_header_bytes`](cadet_core::limits::Limits), the data's
/// size by [`Limits::max_alloc_bytes`](cadet_core::limits::Limits) (checked arithmetic), and the file must
/// hold at least the bytes the header promises. Only regular files are read (a FIFO or a device is refused).
pub fn read_npy_header(path: impl AsRef<Path>, limits: &Limits) -> Result<NpyHeader> {
    use std::io::{Read, Seek};
    let path = path.as_ref();
    let mut f = open(path)?;
    let file_len = f.metadata().map_err(io_error(path))?.len();
    let mut head = [0u8; 12];
    let n = f.read(&mut head).map_err(io_error(path))?;
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
    if header_len > limits.max_header_bytes {
        return Err(Error::Core(cadet_core::Error::LimitExceeded {
            what: format!("{}: a .npy header of {header_len} bytes", path.display()),
            limit: format!(
                "{} bytes (Limits::max_header_bytes)",
                limits.max_header_bytes
            ),
        }));
    }
    if start + header_len > file_len {
        return Err(npy_error(
            path,
            format!(
                "truncated header: {header_len} bytes announced, the file holds {}",
                file_len - start.min(file_len)
            ),
        ));
    }
    // NumPy takes the last of a key written twice and reads no further than that shape needs; a header that
    // says two things is refused here, by name, rather than read one way by one tool and another by the next.
    f.seek(std::io::SeekFrom::Start(start))
        .map_err(io_error(path))?;
    let mut text = Vec::with_capacity(header_len as usize);
    (&mut f)
        .take(header_len)
        .read_to_end(&mut text)
        .map_err(io_error(path))?;
    let text = String::from_utf8_lossy(&text);
    for key in ["descr", "fortran_order", "shape"] {
        let times =
            text.matches(&format!("'{key}'")).count() + text.matches(&format!("\"{key}\"")).count();
        if times > 1 {
            return Err(npy_error(
                path,
                format!("the header holds the key '{key}' {times} times (each key once)"),
            ));
        }
    }
    f.rewind().map_err(io_error(path))?;
    let header = ndarray_npy::npy::header::Header::from_reader(&mut f).map_err(|e| {
        use ndarray_npy::npy::header::ParseHeaderError;
        let reason = match e {
            // ndarray-npy's message names the key wrongly ("shaper"); say what a header needs.
            ndarray_npy::npy::header::ReadHeaderError::Parse(ParseHeaderError::MissingKey(_)) => {
                "a key is missing (a .npy header holds 'descr', 'fortran_order' and 'shape')".into()
            }
            // The parser's message quotes the header, which may be megabytes: keep the start.
            other => shortened(&other.to_string(), 200),
        };
        npy_error(path, format!("unreadable .npy header: {reason}"))
    })?;
    let descr = match header.type_descriptor.as_string() {
        Some(d) => d.clone(),
        None => {
            return Err(npy_error(
                path,
                format!(
                    "dtype {} is not supported (structured dtypes are not read)",
                    header.type_descriptor
                ),
            ));
        }
    };
    let item_bytes = descr
        .trim_start_matches(['<', '>', '|', '='])
        .get(1..)
        .and_then(|digits| digits.parse::<usize>().ok())
        .filter(|&b| (1..=16).contains(&b))
        .ok_or_else(|| npy_error(path, format!("dtype '{descr}' is not supported")))?;
    let data_bytes = limits
        .check_alloc(&path.display().to_string(), &header.shape, item_bytes)
        .map_err(Error::Core)? as u64;
    let available = file_len - start - header_len;
    if data_bytes > available {
        return Err(npy_error(
            path,
            format!(
                "the header promises shape {:?} of '{descr}' ({data_bytes} bytes of data), the file holds {available}",
                header.shape
            ),
        ));
    }
    Ok(NpyHeader {
        shape: header.shape,
        descr,
        item_bytes,
        fortran_order: header.layout.is_fortran(),
        data_bytes,
    })
}

/// Checks that the `.npy` file at `path` holds as many data bytes as its header's shape and dtype promise, within
/// the default [`Limits`], before a reader allocates for that shape: a header that claims `(10⁸, 20, 128)` float32
/// over a few KB of data is an error here, not a terabyte allocation. Returns the shape.
pub fn check_npy_size(path: impl AsRef<Path>) -> Result<Vec<usize>> {
    Ok(read_npy_header(path, &Limits::default())?.shape)
}

/// Reads an array from the `.npy` file at `path` after [`read_npy_header`] has checked its header against
/// `limits`: the one way the crates read `.npy` files, since ndarray-npy alone allocates whatever a header claims.
///
/// ```
/// use cadet_core::limits::Limits;
/// use ndarray::Array2;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("x.npy");
/// cadet_data::formats::save_npy(&Array2::<f32>::ones((2, 3)), &path)?;
/// let x: Array2<f32> = cadet_data::formats::read_npy(&path, &Limits::default())?;
/// assert_eq!(x.dim(), (2, 3));
/// // A tighter bound refuses the same file before reading its data.
/// let tight = Limits { max_alloc_bytes: 16, ..Limits::default() };
/// assert!(cadet_data::formats::read_npy::<Array2<f32>>(&path, &tight).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_npy<T: ReadNpyExt>(path: impl AsRef<Path>, limits: &Limits) -> Result<T> {
    let path = path.as_ref();
    let header = read_npy_header(path, limits)?;
    T::read_npy(std::io::BufReader::new(open(path)?)).map_err(|e| match e {
        ndarray_npy::ReadNpyError::WrongNdim(Some(expected), got) => npy_error(
            path,
            format!(
                "expected a {expected}-dimensional array, the file holds a {got}-dimensional one of shape {:?}",
                header.shape
            ),
        ),
        other => npy_error(path, shortened(&other.to_string(), 300)),
    })
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
    cadet_core::limits::open_regular(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Unlabelled images from a `uint8` `.npy` array `(N, H, W, C)` with 1 or 3 channels (every image labelled 0,
/// class `images`), its header checked against `limits` before anything is read and each image's size against
/// [`Limits::check_image`]: the input of an embedder, say, where no labels exist.
///
/// ```
/// use cadet_core::limits::Limits;
/// use ndarray::Array4;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("images.npy");
/// cadet_data::formats::save_npy(&Array4::<u8>::zeros((2, 4, 5, 3)), &path)?;
/// let images = cadet_data::formats::unlabelled_npy_images(&path, &Limits::default())?;
/// assert_eq!((images.len(), images.image_shape()), (2, (3, 4, 5)));
/// cadet_data::formats::save_npy(&Array4::<u8>::zeros((2, 4, 5, 2)), &path)?;
/// assert!(cadet_data::formats::unlabelled_npy_images(&path, &Limits::default()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn unlabelled_npy_images(path: impl AsRef<Path>, limits: &Limits) -> Result<Dataset> {
    let path = path.as_ref();
    let hwc: Array4<u8> = read_npy(path, limits).map_err(|e| match e {
        Error::Npy { path, reason } => Error::Npy {
            path,
            reason: format!("{reason} (expected uint8 images (N, H, W, C))"),
        },
        other => other,
    })?;
    let (n, h, w, c) = hwc.dim();
    if n == 0 || h == 0 || w == 0 || !matches!(c, 1 | 3) {
        return Err(npy_error(
            path,
            format!(
                "shape ({n}, {h}, {w}, {c}): expected at least one image of at least 1 × 1 pixels with 1 or \
                 3 channels (N, H, W, C)"
            ),
        ));
    }
    // The same per-image bound as an image folder's (a network's buffers grow with the pixels).
    let side = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    limits.check_image(&path.display().to_string(), side(w), side(h))?;
    let nchw = hwc
        .permuted_axes([0, 3, 1, 2])
        .as_standard_layout()
        .to_owned();
    Dataset::new(nchw, vec![0; n], vec!["images".into()])
}

/// Images `(N, H, W, C)` or `(N, H, W)` as `uint8`, and labels of any integer dtype (`int64` in CIFAR-10.1);
/// `classes` names the labels, or `None` numbers them.
pub fn npy_images(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
    classes: Option<Vec<String>>,
) -> Result<Dataset> {
    let (ip, lp) = (images.as_ref(), labels.as_ref());
    read_npy_header(ip, &Limits::default())?;
    read_npy_header(lp, &Limits::default())?;
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

    /// An array of the wrong dimension, a header without a key, and a header of megabytes are told plainly: the
    /// dimensions and the shape, the keys a header holds, a message of bounded length (ndarray-npy says
    /// "Dimension type with NDIM = Some(3)", names a key "shaper", and quotes the whole header).
    #[test]
    fn header_and_dimension_errors_read_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.npy");
        save_npy(&ndarray::Array1::<f32>::zeros(5), &path).unwrap();
        let e = read_npy::<ndarray::Array3<f32>>(&path, &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "expected a 3-dimensional array, the file holds a 1-dimensional one of shape [5]"
            ),
            "{e}"
        );
        let npy = |header: &str| {
            let mut h = header.to_string();
            h.push_str(&" ".repeat(63 - (10 + h.len()) % 64));
            h.push('\n');
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            bytes.extend((h.len() as u16).to_le_bytes());
            bytes.extend(h.as_bytes());
            bytes
        };
        std::fs::write(&path, npy("{'descr': '<f4', 'fortran_order': False, }")).unwrap();
        let e = check_npy_size(&path).unwrap_err().to_string();
        assert!(e.contains("'shape'") && !e.contains("shaper"), "{e}");
        let deep = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': {}}}",
            "(".repeat(20_000)
        );
        std::fs::write(&path, npy(&deep)).unwrap();
        let e = check_npy_size(&path).unwrap_err().to_string();
        assert!(e.len() < 600, "{} bytes: {}", e.len(), &e[..200]);
    }

    #[test]
    fn a_lying_header_is_refused_before_allocation() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.npy");
        let a = ndarray::Array3::<f32>::zeros((3, 4, 5));
        save_npy(&a, &good).unwrap();
        assert_eq!(check_npy_size(&good).unwrap(), vec![3, 4, 5]);
        // The same file with the header's first dimension changed to 9 (same header length).
        let bytes = std::fs::read(&good).unwrap();
        let i = bytes.windows(9).position(|w| w == b"(3, 4, 5)").unwrap();
        let mut lie = bytes[..i].to_vec();
        lie.extend_from_slice(b"(9, 4, 5)");
        lie.extend_from_slice(&bytes[i + "(3, 4, 5)".len()..]);
        let bad = dir.path().join("bad.npy");
        std::fs::write(&bad, &lie).unwrap();
        let e = check_npy_size(&bad).unwrap_err().to_string();
        assert!(e.contains("promises") && e.contains("bad.npy"), "{e}");
        std::fs::write(&bad, b"not npy at all").unwrap();
        assert!(check_npy_size(&bad).is_err());
    }

    /// A version-1 `.npy` file with `header` (padded as NumPy pads it) and `data`.
    fn npy_bytes(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn the_check_reads_the_header_the_reader_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        // A duplicated key: the reader takes the last shape, so must the check (the first is harmless).
        std::fs::write(
            &path,
            npy_bytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'shape': (8000000, 1000, 2000), }",
                &data,
            ),
        )
        .unwrap();
        let e = read_npy::<ndarray::Array3<f32>>(&path, &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("'shape' 2 times"), "{e}");
        // The same with a harmless second shape: named as such, not as extra bytes.
        std::fs::write(
            &path,
            npy_bytes(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), \"shape\": (2, 2), }",
                &data,
            ),
        )
        .unwrap();
        let e = read_npy::<ndarray::Array2<f32>>(&path, &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("'shape' 2 times"), "{e}");
        // Headers NumPy accepts: double quotes, a space before the colon.
        std::fs::write(
            &path,
            npy_bytes(
                "{\"descr\": '<f4', \"fortran_order\" : False, 'shape' : (2, 3)}",
                &data,
            ),
        )
        .unwrap();
        let x: ndarray::Array2<f32> = read_npy(&path, &Limits::default()).unwrap();
        assert_eq!(x[[1, 2]], 6.0);
        assert_eq!(check_npy_size(&path).unwrap(), vec![2, 3]);
        // A header length beyond the bound is refused before it is allocated.
        let mut huge = b"\x93NUMPY\x02\x00".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &huge).unwrap();
        assert!(matches!(check_npy_size(&path), Err(Error::Core(_))));
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_not_read() {
        let e = check_npy_size("/dev/zero").unwrap_err();
        assert!(e.to_string().contains("a device"), "{e}");
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
