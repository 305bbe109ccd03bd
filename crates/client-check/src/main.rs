//! A service's use of `cadet` with `default-features = false`, written from README.md and docs/guide.md only:
//! an own `Embedder`, the recommended method, calibration kept as bytes (and refused when tampered with),
//! per-image verdicts with Benjamini–Hochberg, and a drift monitor over feature batches.

use cadet::prelude::*;

/// 8 × 8 average pooling of 32 × 32 RGB images: 48 features.
struct Pooled;

impl Embedder for Pooled {
    fn dim(&self) -> usize {
        48
    }
    fn embed(&self, x: ArrayView4<'_, f32>) -> cadet::core::Result<Array2<f32>> {
        Ok(Array2::from_shape_fn((x.dim().0, 48), |(i, k)| {
            let (c, y, z) = (k / 16, 8 * (k / 4 % 4), 8 * (k % 4));
            x.slice(s![i, c, y..y + 8, z..z + 8]).mean().unwrap_or(0.0)
        }))
    }
    fn name(&self) -> String {
        "pooled-8x8-v1".into()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = cadet::data::Synthetic { classes: 4, per_class: 50, size: 32, seed: 1, plain: false }.generate()?;
    let parts = data.split(&[60, 100, 40], 0)?;
    let (x1, x2, test) = (parts[0].images_f32(), parts[1].images_f32(), parts[2].images_f32());

    let cadet = Cadet::params(32).n_trs(8).check()?;
    assert_eq!(cadet.method(), &cadet::detect::DetectionMethod::recommended());
    let calibration = cadet.calibrate(&Pooled, x1.view(), x2.view(), &NoProgress)?;

    // Kept as bytes (a database, an object store), loaded back through the same checks as a file.
    let bytes: Vec<u8> = calibration.to_bytes()?;
    let loaded: Calibration = cadet::detect::Calibration::from_bytes(&bytes)?;
    let mut tampered = String::from_utf8(bytes.clone())?;
    let at = tampered.find("\"n_trs\":8").ok_or("no n_trs in the calibration")?;
    tampered.replace_range(at..at + 9, "\"n_trs\":9");
    assert!(Calibration::from_bytes(tampered.as_bytes()).is_err(), "a tampered calibration loads");

    let scorer = loaded.bind(&Pooled)?;
    let scores = scorer.score(test.view(), &NoProgress)?;
    let decisions: Decisions = decide_scores(&scores, 0.05, Correction::BenjaminiHochberg)?;
    let first: &cadet::detect::Verdict = &decisions.verdicts[0];
    assert!(first.p_value > 0.0 && first.p_value <= 1.0);
    println!(
        "{} of {} in-distribution images flagged at α = 0.05 (Benjamini–Hochberg)",
        decisions.rejected,
        scores.len()
    );

    let features = Array2::from_shape_fn((440, 8), |(i, j)| ((i * 7 + j * 3) % 11) as f32 + 1.0);
    let monitor: cadet::mmd::DriftMonitor<CosineKernel> =
        DriftMonitor::new(features.slice(s![..400, ..]), CosineKernel, 500, 0)?;
    let result = monitor.test(features.slice(s![400.., ..]), 0.01)?;
    println!("drift: {} (p = {:.3})", result.is_drift, result.p_value);
    Ok(())
}
