//! The convnetjs CIFAR-10 sheets (`../shared/data/cifar10-lossless`): PNG images 1,024 pixels wide in which row
//! `k` holds image `k`'s 32 × 32 RGB pixels in row-major order, and a `labels.js` file `var labels=[…]`.

use std::path::{Path, PathBuf};

use ndarray::Array4;

use super::CIFAR10_CLASSES;
use crate::error::read;
use crate::{Dataset, Error, Result};

/// Images `(rows, 3, 32, 32)` of one PNG sheet.
pub fn parse_sheet(png: &[u8]) -> Result<Array4<u8>> {
    let malformed = |reason: String| Error::Malformed {
        path: PathBuf::new(),
        format: "CIFAR PNG sheet",
        reason,
    };
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .map_err(|e| malformed(e.to_string()))?
        .to_rgb8();
    if img.width() != 1024 {
        return Err(malformed(format!(
            "width {}, expected 1024 (32 × 32 pixels per row)",
            img.width()
        )));
    }
    let n = img.height() as usize;
    let raw = img.into_raw();
    Ok(Array4::from_shape_fn((n, 3, 32, 32), |(i, c, y, x)| {
        raw[(i * 1024 + y * 32 + x) * 3 + c]
    }))
}

/// Labels of a `var labels=[…]` file.
pub fn convnetjs_labels(text: &str) -> Result<Vec<u32>> {
    let malformed = |reason: String| Error::Malformed {
        path: PathBuf::new(),
        format: "convnetjs labels",
        reason,
    };
    let start = text.find('[').ok_or_else(|| malformed("no '['".into()))?;
    let end = text
        .rfind(']')
        .filter(|&e| e > start)
        .ok_or_else(|| malformed("no closing ']'".into()))?;
    text[start + 1..end]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .map_err(|e| malformed(format!("label {s:?}: {e}")))
        })
        .collect()
}

/// Images per train sheet (`cifar10_batch_0.png` to `_3.png`).
const TRAIN_SHEET_ROWS: usize = 1000;

/// The lossless CIFAR-10 subset of `dir`: train images 0–3,999 (`cifar10_batch_0..3.png`) and test images
/// 0–999 (`cifar10_batch_50.png`), labelled from `cifar10_labels.js` (50,000 train labels, then test 0–999).
pub fn cifar10_lossless(dir: impl AsRef<Path>) -> Result<(Dataset, Dataset)> {
    let dir = dir.as_ref();
    let labels_path = dir.join("cifar10_labels.js");
    let text = String::from_utf8_lossy(&read(&labels_path)?).into_owned();
    let labels = convnetjs_labels(&text).map_err(|e| relabel(e, &labels_path))?;
    let load = |name: &str| -> Result<Array4<u8>> {
        let p = dir.join(name);
        parse_sheet(&read(&p)?).map_err(|e| relabel(e, &p))
    };
    let train_sheets: Vec<Array4<u8>> = (0..4)
        .map(|i| load(&format!("cifar10_batch_{i}.png")))
        .collect::<Result<_>>()?;
    // Train labels are positional over the four sheets: a sheet of 999 rows gave every image of the later
    // sheets its neighbour's label. Each holds 1000 images, as upstream's do.
    if let Some((i, sheet)) = train_sheets
        .iter()
        .enumerate()
        .find(|(_, sheet)| sheet.dim().0 != TRAIN_SHEET_ROWS)
    {
        return Err(Error::Malformed {
            path: dir.join(format!("cifar10_batch_{i}.png")),
            format: "convnetjs image sheet",
            reason: format!(
                "{} rows; a train sheet holds {TRAIN_SHEET_ROWS} images (their labels are found by position)",
                sheet.dim().0
            ),
        });
    }
    let views: Vec<_> = train_sheets.iter().map(|a| a.view()).collect();
    let train = ndarray::concatenate(ndarray::Axis(0), &views).expect("same shape");
    let test = load("cifar10_batch_50.png")?;
    let (n_train, n_test) = (train.dim().0, test.dim().0);
    let malformed = |reason: String| Error::Malformed {
        path: labels_path.clone(),
        format: "convnetjs labels",
        reason,
    };
    if labels.len() < 50_000 + n_test || n_train > 50_000 {
        return Err(malformed(format!(
            "{} labels; the sheets need at least {} (50,000 train labels, then one per test image)",
            labels.len(),
            50_000 + n_test
        )));
    }
    if let Some((i, &bad)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= CIFAR10_CLASSES.len())
    {
        return Err(malformed(format!(
            "label {i} is {bad}; CIFAR-10 labels are 0 to {}",
            CIFAR10_CLASSES.len() - 1
        )));
    }
    let classes: Vec<String> = CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect();
    Ok((
        Dataset::new(train, labels[..n_train].to_vec(), classes.clone())?,
        Dataset::new(test, labels[50_000..50_000 + n_test].to_vec(), classes)?,
    ))
}

fn relabel(e: Error, path: &Path) -> Error {
    match e {
        Error::Malformed { format, reason, .. } => Error::Malformed {
            path: path.to_path_buf(),
            format,
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_rows_are_images() {
        let mut img = image::RgbImage::new(1024, 2);
        img.put_pixel(33, 1, image::Rgb([10, 20, 30])); // image 1, pixel (1, 1)
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let a = parse_sheet(&png).unwrap();
        assert_eq!(a.dim(), (2, 3, 32, 32));
        assert_eq!(
            (a[[1, 0, 1, 1]], a[[1, 1, 1, 1]], a[[1, 2, 1, 1]]),
            (10, 20, 30)
        );
        assert!(parse_sheet(&png[..50]).is_err());
        assert_eq!(
            convnetjs_labels("var labels=[6, 9,\n 1];").unwrap(),
            vec![6, 9, 1]
        );
        assert!(convnetjs_labels("var labels=[6, x]").is_err());
        assert!(convnetjs_labels("nothing").is_err());
    }

    /// Labels out of range or too few are reported against the labels file, with what was expected.
    #[test]
    fn bad_labels_name_the_labels_file() {
        let dir = tempfile::tempdir().unwrap();
        let sheet = |rows: u32| {
            let mut png = Vec::new();
            image::RgbImage::new(1024, rows)
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .unwrap();
            png
        };
        for name in ["0", "1", "2", "3"] {
            std::fs::write(
                dir.path().join(format!("cifar10_batch_{name}.png")),
                sheet(1000),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("cifar10_batch_50.png"), sheet(1)).unwrap();
        let write_labels = |labels: &[u32]| {
            let list: Vec<String> = labels.iter().map(u32::to_string).collect();
            let text = format!("var labels=[{}];", list.join(","));
            std::fs::write(dir.path().join("cifar10_labels.js"), text).unwrap();
        };
        let mut labels = vec![3u32; 50_001];
        write_labels(&labels);
        let (train, test) = cifar10_lossless(dir.path()).unwrap();
        assert_eq!((train.len(), test.len()), (4000, 1));
        labels[50_000] = 10;
        write_labels(&labels);
        let err = cifar10_lossless(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("cifar10_labels.js") && err.contains("label 50000 is 10"),
            "{err}"
        );
        write_labels(&labels[..100]);
        let err = cifar10_lossless(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("cifar10_labels.js") && err.contains("100 labels"),
            "{err}"
        );
        // A train sheet a row short shifted the labels of every later sheet (hostile pass 13).
        labels[50_000] = 3;
        write_labels(&labels);
        std::fs::write(dir.path().join("cifar10_batch_1.png"), sheet(999)).unwrap();
        let err = cifar10_lossless(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("cifar10_batch_1.png") && err.contains("999 rows"),
            "{err}"
        );
    }
}
