//! Image folders: one subfolder per class (torchvision's `ImageFolder`), or a flat folder with an annotation
//! file (Tiny-ImageNet's validation set). PNG and JPEG, decoded in parallel; grayscale becomes RGB.

use std::path::{Path, PathBuf};

use cadet_core::limits::{Limits, open_regular};
use image::imageops::FilterType;
use ndarray::Array4;
use rayon::prelude::*;

use crate::{Dataset, Error, Result};

/// Loader of a folder with one subfolder per class; classes are the subfolder names in sorted order, images
/// their `.png`, `.jpg` and `.jpeg` files in sorted order.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    resize: Option<(u32, u32)>,
    limit_per_class: Option<usize>,
    limits: Limits,
}

impl ImageFolder {
    /// The folder at `root`.
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_path_buf(),
            resize: None,
            limit_per_class: None,
            limits: Limits::default(),
        }
    }

    /// Bounds on each image's size (checked from its header, before decoding) and on the decoded data set
    /// (default [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Resizes every image to `height × width` (triangle filter, antialiased); without it all images must
    /// share one size.
    pub fn resize(mut self, height: u32, width: u32) -> Self {
        self.resize = Some((height, width));
        self
    }

    /// Keeps the first `n` files of each class (in sorted order).
    pub fn limit_per_class(mut self, n: usize) -> Self {
        self.limit_per_class = Some(n);
        self
    }

    /// The image files (PNG, JPEG) [`load`](Self::load) would decode, at most `limit_per_class` per class,
    /// counted without decoding any: for a memory bound before the decoding starts.
    pub fn count_files(&self) -> Result<usize> {
        let mut n = 0usize;
        for folder in list(&self.root)?.into_iter().filter(|p| p.is_dir()) {
            let files = image_files(&folder)?.len();
            n = n.saturating_add(self.limit_per_class.map_or(files, |l| files.min(l)));
        }
        Ok(n)
    }

    /// Decodes the folder.
    pub fn load(&self) -> Result<Dataset> {
        // Each class folder is read by its own path; its name (shown, and the class's) may be lossy when the file
        // system's name is not UTF-8 — reading by that name found no folder.
        let mut folders: Vec<(String, PathBuf)> = list(&self.root)?
            .into_iter()
            .filter(|p| p.is_dir())
            .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), p)))
            .collect();
        folders.sort();
        if folders.is_empty() {
            return Err(Error::EmptyFolder {
                path: self.root.clone(),
                reason: "no class subfolder".into(),
            });
        }
        if let Some(w) = folders.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::Malformed {
                path: self.root.clone(),
                format: "image folder",
                reason: format!(
                    "the class folders {:?} and {:?} show as the same name {:?} (not UTF-8): rename one",
                    w[0].1.file_name().unwrap_or_default(),
                    w[1].1.file_name().unwrap_or_default(),
                    w[0].0
                ),
            });
        }
        // Two class folders that are one folder (`cat` a link to `dog`): its images would be read twice, under
        // two labels (hostile pass 14: 1,000 dogs scored as cats).
        let mut seen: std::collections::HashMap<PathBuf, &str> = std::collections::HashMap::new();
        for (name, folder) in &folders {
            let real = folder.canonicalize().map_err(|source| Error::Io {
                path: folder.clone(),
                source,
            })?;
            if let Some(first) = seen.insert(real.clone(), name) {
                return Err(Error::Malformed {
                    path: self.root.clone(),
                    format: "image folder",
                    reason: format!(
                        "the class folders {first:?} and {name:?} are the same folder ({}): each class needs \
                         its own",
                        real.display()
                    ),
                });
            }
        }
        let classes: Vec<String> = folders.iter().map(|(name, _)| name.clone()).collect();
        let mut files = Vec::new();
        for (label, (_, folder)) in folders.iter().enumerate() {
            let mut imgs = image_files(folder)?;
            if let Some(n) = self.limit_per_class {
                imgs.truncate(n);
            }
            files.extend(imgs.into_iter().map(|f| (f, label as u32)));
        }
        one_file_each(&self.root, &files, &classes)?;
        decode_all(&self.root, files, classes, self.resize, &self.limits)
    }
}

/// Refuses a file listed twice under any names (links, hard links): a `cat` folder of links to `dog`'s images
/// scored 1,000 dogs as cats (hostile pass 15). By device and inode where the platform has them.
fn one_file_each(root: &Path, files: &[(PathBuf, u32)], classes: &[String]) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mut seen: std::collections::HashMap<(u64, u64), &(PathBuf, u32)> =
            std::collections::HashMap::with_capacity(files.len());
        for entry in files {
            let Ok(meta) = std::fs::metadata(&entry.0) else {
                continue; // unreadable: the decoding says so, naming the file
            };
            if let Some(first) = seen.insert((meta.dev(), meta.ino()), entry) {
                let class = |label: u32| classes.get(label as usize).map_or("?", String::as_str);
                return Err(Error::Malformed {
                    path: root.to_path_buf(),
                    format: "image folder",
                    reason: format!(
                        "{} (class {:?}) and {} (class {:?}) are the same file: each image once",
                        first.0.display(),
                        class(first.1),
                        entry.0.display(),
                        class(entry.1)
                    ),
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (root, files, classes);
    Ok(())
}

/// A flat folder of images with an annotation file whose lines start `file<TAB>class` (more columns are
/// ignored); classes are the distinct class strings in sorted order.
pub fn annotated_folder(
    images: impl AsRef<Path>,
    annotations: impl AsRef<Path>,
    resize: Option<(u32, u32)>,
) -> Result<Dataset> {
    let (dir, ann) = (images.as_ref(), annotations.as_ref());
    let text = String::from_utf8_lossy(&crate::error::read(ann)?).into_owned();
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let mut cols = line.split('\t');
        match (cols.next(), cols.next()) {
            (Some(f), Some(c)) => {
                // A file of the images folder: `../elsewhere/x.png` or `/tmp/x.png` would load images from
                // outside the data set as part of it.
                let file = Path::new(f.trim());
                let inside = file
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
                if !inside || file.as_os_str().is_empty() {
                    return Err(Error::Malformed {
                        path: ann.to_path_buf(),
                        format: "annotation file",
                        reason: format!(
                            "line {}: `{}` is not a file inside {} (no `..`, no absolute path)",
                            i + 1,
                            f.trim(),
                            dir.display()
                        ),
                    });
                }
                rows.push((dir.join(file), c.trim().to_string()))
            }
            _ => {
                return Err(Error::Malformed {
                    path: ann.to_path_buf(),
                    format: "annotation file",
                    reason: format!("line {}: expected `file<TAB>class`", i + 1),
                });
            }
        }
    }
    // An empty list was reported as an images folder without images.
    if rows.is_empty() {
        return Err(Error::Malformed {
            path: ann.to_path_buf(),
            format: "annotation file",
            reason: "no `file<TAB>class` line: it lists no image".into(),
        });
    }
    let mut classes: Vec<String> = rows.iter().map(|(_, c)| c.clone()).collect();
    classes.sort();
    classes.dedup();
    let files: Vec<(PathBuf, u32)> = rows
        .into_iter()
        .map(|(f, c)| (f, classes.binary_search(&c).expect("listed") as u32))
        .collect();
    // A file listed twice (under two classes, or twice under one) is one image counted twice.
    let mut listed = std::collections::HashSet::with_capacity(files.len());
    if let Some((file, _)) = files.iter().find(|(f, _)| !listed.insert(f.clone())) {
        return Err(Error::Malformed {
            path: ann.to_path_buf(),
            format: "annotation file",
            reason: format!("{} is listed twice: each image once", file.display()),
        });
    }
    one_file_each(dir, &files, &classes)?;
    decode_all(dir, files, classes, resize, &Limits::default())
}

/// Tiny-ImageNet's validation set (`images/`, `val_annotations.txt`), optionally resized (32 × 32 for
/// CIFAR-scale use). Classes are WordNet ids.
pub fn tiny_imagenet_val(dir: impl AsRef<Path>, resize: Option<(u32, u32)>) -> Result<Dataset> {
    let dir = dir.as_ref();
    annotated_folder(dir.join("images"), dir.join("val_annotations.txt"), resize)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    out.sort();
    Ok(out)
}

fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(list(dir)?
        .into_iter()
        .filter(|p| {
            p.extension()
                .map(|e| {
                    matches!(
                        e.to_ascii_lowercase().to_str(),
                        Some("png" | "jpg" | "jpeg")
                    )
                })
                .unwrap_or(false)
        })
        .collect())
}

fn undecodable(path: &Path, e: image::ImageError) -> Error {
    Error::Undecodable {
        path: path.to_path_buf(),
        reason: decoder_message(&e),
    }
}

/// A decoder's error, where it ran over the memory allowed (`max_alloc` bytes) said as such: what the decoder
/// was allowed and why (the image crate says only "Memory limit exceeded").
fn undecodable_within(path: &Path, e: image::ImageError, max_alloc: u64) -> Error {
    match e {
        image::ImageError::Limits(_) => Error::Undecodable {
            path: path.to_path_buf(),
            reason: format!(
                "decoding needs more than the {:.1} MiB allowed for it (the pixels its header declares, plus \
                 {} MiB for metadata: a huge colour profile or text chunk?)",
                max_alloc as f64 / f64::from(1u32 << 20),
                ANCILLARY_BYTES >> 20
            ),
        },
        e => undecodable(path, e),
    }
}

/// The decoder's complaint as one readable line: the image crate quotes some decoders' messages in `Debug`
/// form (the JPEG decoder's string with its `\n`, the PNG decoder's `ChunkType { type: …, critical: … }`).
fn decoder_message(e: &image::ImageError) -> String {
    let image::ImageError::Decoding(d) = e else {
        return e.to_string();
    };
    let detail = std::error::Error::source(d).map_or_else(|| d.to_string(), |s| s.to_string());
    let mut detail = detail
        .trim()
        .trim_matches('"')
        .trim_end_matches("\\n")
        .trim()
        .to_string();
    // `ChunkType { type: IDAT, critical: true, … } chunk` → `chunk IDAT`, wherever it appears (as the message's
    // start, or after "while decoding").
    while let Some(start) = detail.find("ChunkType { type: ")
        && let Some(len) = detail[start..].find("} chunk")
    {
        let inner = &detail[start + "ChunkType { type: ".len()..start + len];
        let name = inner.split(',').next().unwrap_or("").trim().to_string();
        detail.replace_range(
            start..start + len + "} chunk".len(),
            &format!("chunk {name}"),
        );
    }
    format!("corrupt or truncated {} data: {detail}", d.format_hint())
}

/// What a decoder may allocate besides the pixels: ancillary data such as an ICC profile (real ones are tens
/// of KiB). A zlib bomb in an `iCCP` chunk (a 1 MB file inflating to GiBs) stops here instead of filling memory.
const ANCILLARY_BYTES: u64 = 8 << 20;

/// A reader of the image at `path` whose decoder may allocate at most `max_alloc` bytes (the `image` crate
/// passes the bound on to the PNG decoder, which also bounds what it inflates from ancillary chunks).
fn reader(
    path: &Path,
    max_alloc: u64,
) -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>> {
    let file = open_regular(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = image::ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let mut bounds = image::Limits::default();
    bounds.max_alloc = Some(max_alloc);
    reader.limits(bounds);
    Ok(reader)
}

/// An image's width and height, read from its header only, checked against `limits`.
fn dimensions(path: &Path, limits: &Limits) -> Result<(u32, u32)> {
    // Reading the header parses the chunks before the pixels (an ICC profile among them): bounded too.
    let (w, h) = reader(path, ANCILLARY_BYTES)?
        .into_dimensions()
        .map_err(|e| undecodable_within(path, e, ANCILLARY_BYTES))?;
    limits
        .check_image(&path.display().to_string(), w, h)
        .map_err(Error::Core)?;
    Ok((w, h))
}

/// Decodes one image whose header [`dimensions`] has checked, with the decoder's own limits set too (a file
/// that changed in between, or a decoder allocating more than its output, is refused).
fn decode(
    path: &Path,
    (w, h): (u32, u32),
    resize: Option<(u32, u32)>,
    limits: &Limits,
) -> Result<image::RgbImage> {
    // The largest pixel type (RGBA, 32-bit float channels) is 16 bytes; twice for the decoder's own buffers;
    // sized from this image's header (checked against `limits` already), plus its ancillary data.
    let pixels = (u64::from(w) * u64::from(h)).min(limits.max_image_pixels);
    let max_alloc = pixels.saturating_mul(32).saturating_add(ANCILLARY_BYTES);
    let mut reader = reader(path, max_alloc)?;
    let mut bounds = image::Limits::default();
    bounds.max_image_width = Some(limits.max_image_side);
    bounds.max_image_height = Some(limits.max_image_side);
    bounds.max_alloc = Some(max_alloc);
    reader.limits(bounds);
    let img = reader
        .decode()
        .map_err(|e| undecodable_within(path, e, max_alloc))?;
    limits
        .check_image(&path.display().to_string(), img.width(), img.height())
        .map_err(Error::Core)?;
    let img = img.to_rgb8();
    Ok(match resize {
        Some((h, w)) if (img.height(), img.width()) != (h, w) => {
            image::imageops::resize(&img, w, h, FilterType::Triangle)
        }
        _ => img,
    })
}

fn decode_all(
    root: &Path,
    files: Vec<(PathBuf, u32)>,
    classes: Vec<String>,
    resize: Option<(u32, u32)>,
    limits: &Limits,
) -> Result<Dataset> {
    if files.is_empty() {
        return Err(Error::EmptyFolder {
            path: root.to_path_buf(),
            reason: "no PNG or JPEG image".into(),
        });
    }
    if let Some((h, w)) = resize {
        limits
            .check_image("the resize target", w, h)
            .map_err(Error::Core)?;
    }
    // Every header first: sizes are checked, and the data set's size bounded, before any pixel is decoded.
    let sizes: Vec<(u32, u32)> = files
        .par_iter()
        .map(|(p, _)| dimensions(p, limits))
        .collect::<Result<_>>()?;
    let (h, w) = match resize {
        Some(hw) => hw,
        None => {
            let (w, h) = sizes[0];
            if let Some(i) = sizes.iter().position(|&s| s != (w, h)) {
                return Err(Error::Mismatch {
                    what: "image size (pass a resize to mix sizes)",
                    expected: format!("{h}×{w}"),
                    got: format!("{}×{} in {}", sizes[i].1, sizes[i].0, files[i].0.display()),
                });
            }
            (h, w)
        }
    };
    // The decoded images and the array they are copied into.
    limits
        .check_alloc(
            &format!("{} images of {h}×{w} pixels", files.len()),
            &[2, files.len(), 3, h as usize, w as usize],
            1,
        )
        .map_err(Error::Core)?;
    let decoded: Vec<image::RgbImage> = files
        .par_iter()
        .zip(&sizes)
        .map(|((p, _), &size)| decode(p, size, resize, limits))
        .collect::<Result<_>>()?;
    if let Some((i, bad)) = decoded
        .iter()
        .enumerate()
        .find(|(_, d)| (d.height(), d.width()) != (h, w))
    {
        return Err(Error::Mismatch {
            what: "image size (the file changed while read)",
            expected: format!("{h}×{w}"),
            got: format!(
                "{}×{} in {}",
                bad.height(),
                bad.width(),
                files[i].0.display()
            ),
        });
    }
    let (h, w) = (h as usize, w as usize);
    let mut images = Array4::<u8>::zeros((decoded.len(), 3, h, w));
    for (i, d) in decoded.iter().enumerate() {
        let raw = d.as_raw();
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    images[[i, c, y, x]] = raw[(y * w + x) * 3 + c];
                }
            }
        }
    }
    Dataset::new(images, files.into_iter().map(|(_, l)| l).collect(), classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(path: &Path, img: image::DynamicImage) {
        img.save(path).unwrap();
    }

    /// A CIFAR-10 folder with a class folder more or less is refused (labels shifted: 2 % read for 81 %).
    #[test]
    fn cifar10_folders_need_the_ten_classes() {
        let dir = tempfile::tempdir().unwrap();
        let pixel =
            image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(2, 2, image::Luma([5])));
        for class in crate::formats::CIFAR10_CLASSES {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            save(&dir.path().join(class).join("0.png"), pixel.clone());
        }
        assert_eq!(
            crate::formats::cifar10_folder(dir.path()).unwrap().len(),
            10
        );
        std::fs::create_dir(dir.path().join("aaa")).unwrap();
        save(&dir.path().join("aaa/0.png"), pixel);
        let e = crate::formats::cifar10_folder(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CIFAR-10 class folders") && e.contains("aaa"),
            "{e}"
        );
        std::fs::remove_dir_all(dir.path().join("aaa")).unwrap();
        // A class folder whose images moved into a subfolder: nine classes read as ten (hostile pass 13).
        std::fs::create_dir(dir.path().join("cat/sub")).unwrap();
        std::fs::rename(
            dir.path().join("cat/0.png"),
            dir.path().join("cat/sub/0.png"),
        )
        .unwrap();
        let e = crate::formats::cifar10_folder(dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("none in") && e.contains("cat"), "{e}");
    }

    /// A class folder that is another class's folder (a link) is refused: its images were read under both labels.
    #[cfg(unix)]
    #[test]
    fn two_class_folders_that_are_one_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pixel =
            image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(2, 2, image::Luma([5])));
        std::fs::create_dir(dir.path().join("dog")).unwrap();
        save(&dir.path().join("dog/0.png"), pixel);
        assert_eq!(ImageFolder::new(dir.path()).load().unwrap().len(), 1);
        std::os::unix::fs::symlink(dir.path().join("dog"), dir.path().join("cat")).unwrap();
        let e = ImageFolder::new(dir.path()).load().unwrap_err().to_string();
        assert!(
            e.contains("same folder") && e.contains("cat") && e.contains("dog"),
            "{e}"
        );
    }

    /// A class folder of links (or hard links) to another class's images is refused: each image once.
    #[cfg(unix)]
    #[test]
    fn one_file_under_two_classes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pixel =
            image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(2, 2, image::Luma([5])));
        for class in ["cat", "dog"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
        }
        save(&dir.path().join("dog/0.png"), pixel.clone());
        save(&dir.path().join("cat/1.png"), pixel);
        assert_eq!(ImageFolder::new(dir.path()).load().unwrap().len(), 2);
        std::fs::hard_link(dir.path().join("dog/0.png"), dir.path().join("cat/2.png")).unwrap();
        let e = ImageFolder::new(dir.path()).load().unwrap_err().to_string();
        assert!(e.contains("same file") && e.contains("dog"), "{e}");
        std::fs::remove_file(dir.path().join("cat/2.png")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("dog/0.png"), dir.path().join("cat/3.png"))
            .unwrap();
        assert!(ImageFolder::new(dir.path()).load().is_err());
    }

    /// An annotation line naming a file outside the images folder is refused: `../x.png` and absolute paths
    /// loaded images from elsewhere as part of the data set.
    #[test]
    fn annotations_naming_files_outside_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        std::fs::create_dir(&images).unwrap();
        let pixel =
            image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(2, 2, image::Luma([5])));
        save(&images.join("a.png"), pixel.clone());
        save(&dir.path().join("outside.png"), pixel);
        let ann = dir.path().join("ann.txt");
        std::fs::write(&ann, "a.png\tn01\n").unwrap();
        assert_eq!(annotated_folder(&images, &ann, None).unwrap().len(), 1);
        let outside = dir.path().join("outside.png");
        for line in [
            "../outside.png\tn01\n".to_string(),
            format!("{}\tn01\n", outside.display()),
        ] {
            std::fs::write(&ann, format!("a.png\tn01\n{line}")).unwrap();
            let e = annotated_folder(&images, &ann, None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("line 2") && e.contains("not a file inside"),
                "{e}"
            );
        }
    }

    /// A class folder whose name is not UTF-8 is read by its own path (its lossy name was looked up and not
    /// found); two such names that show alike are refused, named.
    #[cfg(unix)]
    #[test]
    fn class_folders_with_names_that_are_not_utf8_load() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"cl\xff"));
        std::fs::create_dir(&odd).unwrap();
        std::fs::create_dir(dir.path().join("dog")).unwrap();
        let pixel = |v| {
            image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(2, 2, image::Luma([v])))
        };
        save(&odd.join("a.png"), pixel(9));
        save(&dir.path().join("dog/b.png"), pixel(200));
        let d = ImageFolder::new(dir.path()).load().unwrap();
        assert_eq!(d.classes(), &["cl\u{fffd}".to_string(), "dog".to_string()]);
        assert_eq!((d.labels(), d.images()[[0, 0, 0, 0]]), (&[0, 1][..], 9));
        let twin = dir.path().join(std::ffi::OsStr::from_bytes(b"cl\xfe"));
        std::fs::create_dir(&twin).unwrap();
        save(&twin.join("c.png"), pixel(1));
        let e = ImageFolder::new(dir.path()).load().unwrap_err().to_string();
        assert!(e.contains("same name"), "{e}");
    }

    #[test]
    fn loads_classes_in_order_grayscale_to_rgb_and_resizes() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["dog", "cat"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
        }
        save(
            &dir.path().join("cat/b.png"),
            image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
                4,
                3,
                image::Rgb([200, 10, 0]),
            )),
        );
        save(
            &dir.path().join("cat/a.png"),
            image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(4, 3, image::Luma([77]))),
        );
        save(
            &dir.path().join("dog/z.jpg"),
            image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
                4,
                3,
                image::Rgb([0, 0, 255]),
            )),
        );
        std::fs::write(dir.path().join("dog/notes.txt"), "not an image").unwrap();
        let d = ImageFolder::new(dir.path()).load().unwrap();
        assert_eq!(d.classes(), &["cat".to_string(), "dog".to_string()]);
        assert_eq!(d.labels(), &[0, 0, 1]);
        assert_eq!(d.image_shape(), (3, 3, 4));
        // a.png (grayscale) first: 77 in every channel.
        assert_eq!(
            (d.images()[[0, 0, 1, 1]], d.images()[[0, 2, 1, 1]]),
            (77, 77)
        );
        assert_eq!(d.images()[[1, 0, 0, 0]], 200);
        let small = ImageFolder::new(dir.path())
            .resize(2, 2)
            .limit_per_class(1)
            .load()
            .unwrap();
        assert_eq!((small.len(), small.image_shape()), (2, (3, 2, 2)));
    }

    #[test]
    fn corrupt_png_and_jpeg_get_one_readable_line() {
        // A PNG whose first chunk is all zero bytes, a JPEG whose first marker has length 0.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.resize(108, 0);
        let mut jpeg = b"\xff\xd8\xff\xe0".to_vec();
        jpeg.resize(54, 0);
        // A good PNG whose IDAT checksum is wrong (the message then ends "while decoding ChunkType { … }").
        let mut bad_crc = Vec::new();
        image::RgbImage::from_pixel(4, 4, image::Rgb([9, 8, 7]))
            .write_to(
                &mut std::io::Cursor::new(&mut bad_crc),
                image::ImageFormat::Png,
            )
            .unwrap();
        let idat = bad_crc.windows(4).position(|w| w == b"IDAT").unwrap();
        let len = u32::from_be_bytes(bad_crc[idat - 4..idat].try_into().unwrap()) as usize;
        bad_crc[idat + 4 + len] ^= 0xff;
        for (name, bytes, format) in [
            ("c.png", png, "Png"),
            ("c.jpg", jpeg, "Jpeg"),
            ("crc.png", bad_crc, "Png"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("a")).unwrap();
            std::fs::write(dir.path().join("a").join(name), bytes).unwrap();
            let err = ImageFolder::new(dir.path()).load().unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::Undecodable { .. }), "{text}");
            assert!(text.contains(name), "{text}");
            assert!(
                text.contains(&format!("corrupt or truncated {format} data")),
                "{text}"
            );
            for noise in ["ChunkType {", "critical:", "\\n", "\""] {
                assert!(!text.contains(noise), "{noise:?} in {text}");
            }
        }
    }

    #[test]
    fn typed_errors_for_empty_undecodable_and_mixed_sizes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            ImageFolder::new(dir.path()).load(),
            Err(Error::EmptyFolder { .. })
        ));
        std::fs::create_dir(dir.path().join("a")).unwrap();
        assert!(matches!(
            ImageFolder::new(dir.path()).load(),
            Err(Error::EmptyFolder { .. })
        ));
        std::fs::write(
            dir.path().join("a/broken.png"),
            b"\x89PNG\r\n\x1a\n truncated",
        )
        .unwrap();
        assert!(matches!(
            ImageFolder::new(dir.path()).load(),
            Err(Error::Undecodable { .. })
        ));
        std::fs::remove_file(dir.path().join("a/broken.png")).unwrap();
        save(
            &dir.path().join("a/1.png"),
            image::DynamicImage::ImageRgb8(image::RgbImage::new(2, 2)),
        );
        save(
            &dir.path().join("a/2.png"),
            image::DynamicImage::ImageRgb8(image::RgbImage::new(3, 2)),
        );
        assert!(matches!(
            ImageFolder::new(dir.path()).load(),
            Err(Error::Mismatch { .. })
        ));
        assert!(matches!(
            ImageFolder::new(dir.path().join("missing")).load(),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn an_annotation_file_listing_an_image_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pixel =
            image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(2, 2, image::Luma([5])));
        save(&dir.path().join("x.png"), pixel);
        let ann = dir.path().join("val_annotations.txt");
        std::fs::write(&ann, "x.png\ta\nx.png\tb\n").unwrap();
        let e = annotated_folder(dir.path(), &ann, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.png") && e.contains("twice"), "{e}");
    }

    #[test]
    fn an_empty_annotation_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("val_annotations.txt"), "\n  \n").unwrap();
        let e = annotated_folder(dir.path(), dir.path().join("val_annotations.txt"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("val_annotations.txt") && e.contains("lists no image"),
            "{e}"
        );
    }

    #[test]
    fn annotated_folder_reads_classes_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (f, v) in [("x.png", 10u8), ("y.png", 20)] {
            save(
                &dir.path().join(f),
                image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(
                    2,
                    2,
                    image::Luma([v]),
                )),
            );
        }
        std::fs::write(
            dir.path().join("ann.txt"),
            "x.png\tn02\t0\t0\ny.png\tn01\t1\t1\n",
        )
        .unwrap();
        let d = annotated_folder(dir.path(), dir.path().join("ann.txt"), None).unwrap();
        assert_eq!(d.classes(), &["n01".to_string(), "n02".to_string()]);
        assert_eq!(d.labels(), &[1, 0]);
        std::fs::write(dir.path().join("bad.txt"), "x.png n02\n").unwrap();
        assert!(matches!(
            annotated_folder(dir.path(), dir.path().join("bad.txt"), None),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn sizes_are_bounded_from_headers_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        // 20,000 × 1 pixels: a few bytes on disk, wider than the default 16,384.
        save(
            &dir.path().join("a/wide.png"),
            image::DynamicImage::ImageLuma8(image::GrayImage::new(20_000, 1)),
        );
        let e = ImageFolder::new(dir.path()).load().unwrap_err();
        assert!(
            matches!(e, Error::Core(cadet_core::Error::LimitExceeded { .. })),
            "{e}"
        );
        assert!(e.to_string().contains("wide.png"), "{e}");
        std::fs::remove_file(dir.path().join("a/wide.png")).unwrap();
        for i in 0..3 {
            save(
                &dir.path().join(format!("a/{i}.png")),
                image::DynamicImage::ImageLuma8(image::GrayImage::new(100, 100)),
            );
        }
        assert!(ImageFolder::new(dir.path()).load().is_ok());
        // A caller's tighter bounds: per image, and on the whole data set.
        let per_image = Limits {
            max_image_pixels: 9_999,
            ..Limits::default()
        };
        assert!(
            ImageFolder::new(dir.path())
                .limits(per_image)
                .load()
                .is_err()
        );
        let whole = Limits {
            max_alloc_bytes: 2 * 3 * 3 * 100 * 100 - 1,
            ..Limits::default()
        };
        let e = ImageFolder::new(dir.path())
            .limits(whole)
            .load()
            .unwrap_err();
        assert!(e.to_string().contains("3 images of 100×100"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused_not_read_forever() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        save(
            &dir.path().join("a/ok.png"),
            image::DynamicImage::ImageLuma8(image::GrayImage::new(2, 2)),
        );
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("a/zero.png")).unwrap();
        let e = ImageFolder::new(dir.path()).load().unwrap_err();
        assert!(e.to_string().contains("a device"), "{e}");
        std::fs::remove_file(dir.path().join("a/zero.png")).unwrap();
        let fifo = dir.path().join("a/pipe.png");
        if std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            let e = ImageFolder::new(dir.path()).load().unwrap_err();
            assert!(e.to_string().contains("a FIFO"), "{e}");
        }
    }
}
