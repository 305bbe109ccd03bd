//! Byte-mutation fuzzing of the readers of untrusted files in this crate: `.npy` arrays (header and data) and
//! image files (PNG, JPEG) in a folder. Every input must give `Ok` or a typed error: no panic, no execution over
//! 2 s, no allocation over 1 GiB (the allocator below aborts and saves the input).
//!
//! Budget: `CADET_FUZZ_SECONDS` per campaign (a short default for CI; 600 on a development machine).

use std::path::Path;
use std::time::Duration;

use cadet_core::fuzz::{Campaign, CappedAllocator};
use cadet_core::limits::Limits;
use cadet_data::formats::{ImageFolder, npy_images, read_npy, save_npy};
use ndarray::{Array1, Array3, Array4};

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator::new(1 << 30);

const DEFAULT_BUDGET: Duration = Duration::from_secs(4);

fn campaign(name: &str, seeds: Vec<Vec<u8>>) -> Campaign {
    Campaign::new(name, seeds).budget_from_env("CADET_FUZZ_SECONDS", DEFAULT_BUDGET)
}

fn npy_seed(dir: &Path, save: impl FnOnce(&Path)) -> Vec<u8> {
    let path = dir.join("seed.npy");
    save(&path);
    std::fs::read(path).unwrap()
}

#[test]
fn npy_readers_never_panic_or_run_away() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = vec![
        npy_seed(dir.path(), |p| {
            save_npy(
                &Array3::from_shape_fn((3, 2, 4), |(a, b, c)| (a + b * c) as f32),
                p,
            )
            .unwrap()
        }),
        npy_seed(dir.path(), |p| {
            save_npy(
                &Array4::from_shape_fn((2, 3, 3, 3), |(a, b, c, d)| (a * b + c * d) as u8),
                p,
            )
            .unwrap()
        }),
        npy_seed(dir.path(), |p| {
            save_npy(&Array1::from(vec![1i64, 0, 3]), p).unwrap()
        }),
    ];
    let limits = Limits {
        max_alloc_bytes: 64 << 20,
        ..Limits::default()
    };
    let (images, labels) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    std::fs::write(&labels, &seeds[2]).unwrap();
    let report = campaign("npy", seeds).run(|bytes| {
        std::fs::write(&images, bytes).unwrap();
        let _ = read_npy::<Array3<f32>>(&images, &limits);
        let _ = read_npy::<Array4<u8>>(&images, &limits);
        let _ = npy_images(&images, &labels, None);
        let _ = npy_images(&labels, &images, None);
    });
    eprintln!("{report}");
    assert!(
        report.panics.is_empty() && report.slow.is_empty(),
        "{report}"
    );
}

#[test]
fn image_decoding_never_panics_or_runs_away() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("c");
    std::fs::create_dir(&class).unwrap();
    let mut seeds = Vec::new();
    for (name, format) in [
        ("s.png", image::ImageFormat::Png),
        ("s.jpg", image::ImageFormat::Jpeg),
    ] {
        let img =
            image::RgbImage::from_fn(6, 5, |x, y| image::Rgb([x as u8 * 40, y as u8 * 50, 7]));
        let path = dir.path().join(name);
        img.save_with_format(&path, format).unwrap();
        seeds.push(std::fs::read(&path).unwrap());
    }
    let limits = Limits {
        max_alloc_bytes: 64 << 20,
        max_image_pixels: 4 << 20,
        ..Limits::default()
    };
    let report = campaign("images", seeds).run(|bytes| {
        for name in ["a.png", "a.jpg"] {
            let path = class.join(name);
            std::fs::write(&path, bytes).unwrap();
            let _ = ImageFolder::new(dir.path()).limits(limits).load();
            let _ = ImageFolder::new(dir.path())
                .limits(limits)
                .resize(8, 8)
                .load();
            std::fs::remove_file(&path).unwrap();
        }
    });
    eprintln!("{report}");
    assert!(
        report.panics.is_empty() && report.slow.is_empty(),
        "{report}"
    );
}
