//! Image folders: one subfolder per class (torchvision's `ImageFolder`), or a flat folder with an annotation
//! file (Tiny-ImageNet's validation set). PNG and JPEG, decoded in parallel; grayscale becomes RGB.

use std::path::{Path, PathBuf};

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
}

impl ImageFolder {
    /// The folder at `root`.
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_path_buf(),
            resize: None,
            limit_per_class: None,
        }
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

    /// Decodes the folder.
    pub fn load(&self) -> Result<Dataset> {
        let mut classes: Vec<String> = list(&self.root)?
            .into_iter()
            .filter(|p| p.is_dir())
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        classes.sort();
        if classes.is_empty() {
            return Err(Error::EmptyFolder {
                path: self.root.clone(),
                reason: "no class subfolder".into(),
            });
        }
        let mut files = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let mut imgs = image_files(&self.root.join(class))?;
            if let Some(n) = self.limit_per_class {
                imgs.truncate(n);
            }
            files.extend(imgs.into_iter().map(|f| (f, label as u32)));
        }
        decode_all(&self.root, files, classes, self.resize)
    }
}

/// A flat folder of images with an annotation file whose lines start `file<TAB>class` (more columns are
/// ignored); classes are the distinct class strings in sorted order.
pub fn annotated_folder(
    images: impl AsRef<Path>,
    annotations: impl AsRef<Path>,
    resize: Option<(u32, u32)>,
) -> Result<Dataset> {
    let (dir, ann) = (images.as_ref(), annotations.as_ref());
    let text = std::fs::read_to_string(ann).map_err(|source| Error::Io {
        path: ann.to_path_buf(),
        source,
    })?;
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let mut cols = line.split('\t');
        match (cols.next(), cols.next()) {
            (Some(f), Some(c)) => rows.push((dir.join(f.trim()), c.trim().to_string())),
            _ => {
                return Err(Error::Malformed {
                    path: ann.to_path_buf(),
                    format: "annotation file",
                    reason: format!("line {}: expected `file<TAB>class`", i + 1),
                });
            }
        }
    }
    let mut classes: Vec<String> = rows.iter().map(|(_, c)| c.clone()).collect();
    classes.sort();
    classes.dedup();
    let files = rows
        .into_iter()
        .map(|(f, c)| (f, classes.binary_search(&c).expect("listed") as u32))
        .collect();
    decode_all(dir, files, classes, resize)
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

fn decode(path: &Path, resize: Option<(u32, u32)>) -> Result<image::RgbImage> {
    let bytes = crate::error::read(path)?;
    let img = image::load_from_memory(&bytes)
        .map_err(|e| Error::Undecodable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .to_rgb8();
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
) -> Result<Dataset> {
    if files.is_empty() {
        return Err(Error::EmptyFolder {
            path: root.to_path_buf(),
            reason: "no PNG or JPEG image".into(),
        });
    }
    let decoded: Vec<image::RgbImage> = files
        .par_iter()
        .map(|(p, _)| decode(p, resize))
        .collect::<Result<_>>()?;
    let (h, w) = (decoded[0].height(), decoded[0].width());
    if let Some((i, bad)) = decoded
        .iter()
        .enumerate()
        .find(|(_, d)| (d.height(), d.width()) != (h, w))
    {
        return Err(Error::Mismatch {
            what: "image size (pass a resize to mix sizes)",
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
}
