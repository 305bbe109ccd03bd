//! A synthetic data set generated in code: the embedded default of the main job, so cadet-rs runs end to end on
//! a fresh machine with no download.
//!
//! Each class is a **shape** (disk, square, triangle, cross, ring, T, bars, L, crescent, pair of dots), no two
//! alike under rotation.
//! Everything else varies per image at random: the shape's colour, size, position and rotation, a texture on it
//! (solid, stripes, checker), the background (flat, gradient, or noise) and its colour, plus pixel noise. So
//! colour carries no class information, as in natural images, and a contrastive encoder must learn shape;
//! holding out some shapes gives a genuine unseen-class test. Image `i` has class `i mod classes` and is drawn
//! from its own seeded stream: the set is the same for a seed whatever the number of threads. `docs/synthetic.png`
//! shows samples.

use std::f32::consts::PI;

use ndarray::Array4;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{Dataset, Error, Result};

/// The shapes, one per class, in label order.
pub const SHAPES: [&str; 10] = [
    "disk", "square", "triangle", "cross", "ring", "tee", "bars", "ell", "crescent", "pair",
];

/// Settings of the synthetic data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synthetic {
    /// Number of classes (1 to 10): the first `classes` shapes.
    pub classes: usize,
    /// Images per class.
    pub per_class: usize,
    /// Side of the square images in pixels (at least 8).
    pub size: usize,
    /// Seed.
    pub seed: u64,
    /// Plain images: flat background, solid upright shapes, no pixel noise, so only the shape's colour, size
    /// and position vary. A far easier task, for encoders trained in minutes (the quickstart); `false` gives the
    /// cluttered set described above.
    pub plain: bool,
}

impl Default for Synthetic {
    /// 10 classes of 500 images of 32 × 32 pixels, seed 0.
    fn default() -> Self {
        Self {
            classes: 10,
            per_class: 500,
            size: 32,
            seed: 0,
            plain: false,
        }
    }
}

/// The largest image side [`Synthetic::generate`] draws (pixels).
pub const MAX_SIZE: usize = 1024;
/// The most images per class [`Synthetic::generate`] draws.
pub const MAX_PER_CLASS: usize = 1_000_000;

impl Synthetic {
    /// Generates the data set (in parallel).
    pub fn generate(&self) -> Result<Dataset> {
        let checks = [
            ("classes", self.classes, 1, SHAPES.len()),
            ("size", self.size, 8, MAX_SIZE),
            ("per_class", self.per_class, 1, MAX_PER_CLASS),
        ];
        if let Some((name, value, lo, hi)) = checks
            .into_iter()
            .find(|&(_, v, lo, hi)| !(lo..=hi).contains(&v))
        {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name,
                reason: format!("{lo} to {hi}, got {value}"),
            }));
        }
        let n = self.classes * self.per_class;
        let s = self.size;
        // The rendered f32 images, before their u8 copy, bounded before anything is drawn.
        cadet_core::limits::Limits::default().check_alloc("synthetic images", &[n, s, s, 3], 4)?;
        let rendered: Vec<Vec<f32>> = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                rng.set_stream(i as u64);
                render(i % self.classes, s, self.plain, &mut rng)
            })
            .collect();
        let images = Array4::from_shape_fn((n, 3, s, s), |(i, c, y, x)| {
            (rendered[i][(y * s + x) * 3 + c].clamp(0.0, 1.0) * 255.0).round() as u8
        });
        let labels = (0..n).map(|i| (i % self.classes) as u32).collect();
        Dataset::new(
            images,
            labels,
            SHAPES[..self.classes]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    }
}

/// Whether the point `(u, v)` (shape coordinates: the shape spans about `[−1, 1]²`) is inside shape `class`.
fn inside(class: usize, u: f32, v: f32) -> bool {
    let r2 = u * u + v * v;
    match class {
        0 => r2 <= 1.0,
        1 => u.abs().max(v.abs()) <= 0.8,
        2 => v >= -0.6 && u.abs() <= (0.9 - v) * 0.62,
        3 => (u.abs() <= 0.3 && v.abs() <= 1.0) || (v.abs() <= 0.3 && u.abs() <= 1.0),
        4 => (0.3..=1.0).contains(&r2) && r2 >= 0.55 * 0.55,
        5 => (u.abs() <= 0.9 && (0.45..=0.9).contains(&v)) || (u.abs() <= 0.25 && v.abs() <= 0.9),
        6 => u.abs() <= 0.95 && v.abs() <= 0.95 && ((v + 0.95) * 1.6).fract() < 0.5,
        7 => {
            ((-0.8..=-0.35).contains(&u) && v.abs() <= 0.9)
                || (u.abs() <= 0.8 && (0.45..=0.9).contains(&v))
        }
        8 => r2 <= 1.0 && (u - 0.45) * (u - 0.45) + v * v > 0.6,
        _ => (u - 0.55).powi(2) + v * v <= 0.19 || (u + 0.55).powi(2) + v * v <= 0.19,
    }
}

/// An RGB colour from hue, saturation, value.
fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match (i as i32).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// One image, `size × size × 3` row-major floats.
fn render(class: usize, size: usize, plain: bool, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let s = size as f32;
    // Background: light or dark, flat, gradient or noise.
    let light_bg = rng.random_bool(0.5);
    let bg_v = |rng: &mut ChaCha8Rng| {
        if light_bg {
            rng.random_range(0.65..0.95)
        } else {
            rng.random_range(0.05..0.4)
        }
    };
    let c1 = hsv(rng.random(), rng.random_range(0.0..0.8), bg_v(rng));
    let c2 = hsv(rng.random(), rng.random_range(0.0..0.8), bg_v(rng));
    let bg_style = rng.random_range(0..3u8);
    let bg_style = if plain { 0 } else { bg_style };
    let angle = rng.random_range(0.0..2.0 * PI);
    // Foreground contrasts with the background in value.
    let fg_v = if light_bg {
        rng.random_range(0.05..0.45)
    } else {
        rng.random_range(0.6..1.0)
    };
    let fg = hsv(rng.random(), rng.random_range(0.3..1.0), fg_v);
    let (cx, cy) = (
        s * rng.random_range(0.32..0.68),
        s * rng.random_range(0.32..0.68),
    );
    let radius = s * rng.random_range(0.22..0.34);
    let theta = rng.random_range(0.0..2.0 * PI);
    let theta = if plain { 0.0 } else { theta };
    let (sin, cos) = theta.sin_cos();
    let texture = rng.random_range(0..3u8);
    let texture = if plain { 0 } else { texture };
    let freq = rng.random_range(2.0..4.0f32);
    // Plain images are noise-free, so that a perturbation of a few levels is a change a detector can see.
    let noise = if plain { 0.0 } else { 0.03 };
    let mut out = vec![0.0f32; size * size * 3];
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 / s, y as f32 / s);
            let bg = match bg_style {
                0 => c1,
                1 => {
                    let t =
                        ((fx - 0.5) * angle.cos() + (fy - 0.5) * angle.sin() + 0.5).clamp(0.0, 1.0);
                    [0, 1, 2].map(|c| c1[c] * (1.0 - t) + c2[c] * t)
                }
                _ => {
                    let n: f32 = rng.random_range(-0.12..0.12);
                    c1.map(|v| v + n)
                }
            };
            // 2 × 2 supersampling of the shape's coverage, for smooth edges.
            let mut cover = 0.0;
            let mut shade = 0.0;
            for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (dx, dy) = ((x as f32 + ox - cx) / radius, (y as f32 + oy - cy) / radius);
                let (u, v) = (cos * dx + sin * dy, -sin * dx + cos * dy);
                if inside(class, u, v) {
                    cover += 0.25;
                    let tex = match texture {
                        0 => 1.0,
                        1 => {
                            if ((u * freq).floor() as i32) % 2 == 0 {
                                1.0
                            } else {
                                0.6
                            }
                        }
                        _ => {
                            if (((u * freq).floor() + (v * freq).floor()) as i32) % 2 == 0 {
                                1.0
                            } else {
                                0.6
                            }
                        }
                    };
                    shade += 0.25 * tex;
                }
            }
            let tex = if cover > 0.0 { shade / cover } else { 1.0 };
            for c in 0..3 {
                let n: f32 = if plain {
                    0.0
                } else {
                    rng.random_range(-noise..noise)
                };
                out[(y * size + x) * 3 + c] = bg[c] * (1.0 - cover) + fg[c] * tex * cover + n;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Axis;

    /// Absurd sizes name the field and its range (not a debug dump), and never reach the drawing code (a side of
    /// 2^64 − 1 panicked there).
    #[test]
    fn out_of_range_settings_name_the_field() {
        let spec = |size: usize, per_class: usize| Synthetic {
            classes: 3,
            per_class,
            size,
            seed: 0,
            plain: true,
        };
        for (s, field) in [
            (spec(0, 1), "size"),
            (spec(usize::MAX, 1), "size"),
            (spec(8, 0), "per_class"),
        ] {
            let e = s.generate().unwrap_err().to_string();
            assert!(e.contains(field) && !e.contains("Synthetic {"), "{e}");
        }
        // In range, but too many pixels: refused before drawing, by the allocation bound.
        let e = spec(1024, 1_000_000).generate().unwrap_err().to_string();
        assert!(e.contains("max_alloc_bytes"), "{e}");
    }

    #[test]
    fn deterministic_balanced_and_varied() {
        let spec = Synthetic {
            classes: 4,
            per_class: 6,
            size: 16,
            seed: 3,
            plain: false,
        };
        let a = spec.generate().unwrap();
        assert_eq!(a, spec.generate().unwrap());
        assert_eq!(a.class_counts(), vec![6, 6, 6, 6]);
        assert_ne!(
            a,
            Synthetic {
                seed: 4,
                ..spec.clone()
            }
            .generate()
            .unwrap()
        );
        // No two images alike.
        let imgs = a.images();
        for i in 0..a.len() {
            for j in i + 1..a.len() {
                assert_ne!(imgs.index_axis(Axis(0), i), imgs.index_axis(Axis(0), j));
            }
        }
        assert!(
            Synthetic {
                classes: 11,
                ..spec.clone()
            }
            .generate()
            .is_err()
        );
        assert!(Synthetic { size: 4, ..spec }.generate().is_err());
    }

    #[test]
    fn plain_images_have_flat_backgrounds_and_no_noise() {
        let spec = Synthetic {
            classes: 3,
            per_class: 4,
            size: 24,
            seed: 5,
            plain: true,
        };
        let a = spec.generate().unwrap();
        assert_eq!(a, spec.generate().unwrap());
        for i in 0..a.len() {
            let img = a.images().index_axis(Axis(0), i).to_owned();
            // The four corners lie outside the shape: one flat background colour, exactly.
            let corner = |y: usize, x: usize| [0, 1, 2].map(|c| img[[c, y, x]]);
            assert_eq!(corner(0, 0), corner(0, 23), "image {i}");
            assert_eq!(corner(0, 0), corner(23, 0), "image {i}");
            assert_eq!(corner(0, 0), corner(23, 23), "image {i}");
        }
        // The cluttered style of the same seed is a different set.
        assert_ne!(
            a,
            Synthetic {
                plain: false,
                ..spec
            }
            .generate()
            .unwrap()
        );
    }

    #[test]
    fn every_shape_covers_a_sensible_area() {
        // Fraction of [−1, 1]² inside each shape, on a grid: distinct shapes, none empty or full.
        for (class, name) in SHAPES.iter().enumerate() {
            let n = 200;
            let inside_count = (0..n * n)
                .filter(|k| {
                    inside(
                        class,
                        (k % n) as f32 / n as f32 * 2.0 - 1.0,
                        (k / n) as f32 / n as f32 * 2.0 - 1.0,
                    )
                })
                .count();
            let frac = inside_count as f64 / (n * n) as f64;
            assert!((0.1..0.8).contains(&frac), "{name} covers {frac}");
        }
    }
}
