//! Pictures of images: PNG grids, written atomically ([`cadet_core::io::write_atomic`]).

use std::path::Path;

use ndarray::ArrayView4;

use crate::{Error, Result};

/// Writes `images` (`(N, C, H, W)`, `f32` in `[0, 1]`, C = 1 or 3) as a PNG grid of `columns` columns with a
/// 2-pixel white gutter. The file appears complete or not at all.
pub fn save_grid(
    images: ArrayView4<'_, f32>,
    columns: usize,
    path: impl AsRef<Path>,
) -> Result<()> {
    let (n, c, h, w) = images.dim();
    if n == 0 || columns == 0 || !(c == 1 || c == 3) {
        return Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "images",
            reason: format!("{n} images of {c} channels in {columns} columns"),
        }));
    }
    let rows = n.div_ceil(columns);
    let gap = 2;
    let (gw, gh) = (
        (columns * (w + gap) + gap) as u32,
        (rows * (h + gap) + gap) as u32,
    );
    let mut grid = image::RgbImage::from_pixel(gw, gh, image::Rgb([255, 255, 255]));
    for i in 0..n {
        let (ox, oy) = (
            gap + (i % columns) * (w + gap),
            gap + (i / columns) * (h + gap),
        );
        for y in 0..h {
            for x in 0..w {
                let px = [0, 1, 2].map(|ch| {
                    (images[[i, if c == 1 { 0 } else { ch }, y, x]].clamp(0.0, 1.0) * 255.0).round()
                        as u8
                });
                grid.put_pixel((ox + x) as u32, (oy + y) as u32, image::Rgb(px));
            }
        }
    }
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut png = Vec::new();
    grid.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| io(std::io::Error::other(e)))?;
    cadet_core::io::write_atomic(path, &png).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn writes_a_decodable_grid() {
        let dir = tempfile::tempdir().unwrap();
        let imgs = Array4::from_shape_fn((5, 3, 4, 6), |(i, c, _, _)| (i + c) as f32 / 8.0);
        let path = dir.path().join("grid.png");
        save_grid(imgs.view(), 2, &path).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        // 2 columns of 6 px and 3 gutters of 2: 18; 3 rows of 4 px and 4 gutters: 20.
        assert_eq!((back.width(), back.height()), (18, 20));
        assert_eq!(back.get_pixel(2, 2).0, [0, 32, 64]);
        assert!(!dir.path().join("grid.png.tmp").exists());
        // Only the grid is left; an unrelated temporary file survives a rewrite.
        std::fs::write(dir.path().join("grid.tmp"), b"not ours").unwrap();
        save_grid(imgs.view(), 2, &path).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("grid.tmp")).unwrap(),
            b"not ours"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert!(save_grid(imgs.view(), 0, &path).is_err());
    }
}
