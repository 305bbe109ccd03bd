//! Pictures of results as SVG (no font or system library needed): ROC curves and score histograms. Files are
//! written to a temporary name and renamed, so a crash never leaves half a picture.

use std::path::{Path, PathBuf};

use cadet_core::metrics::RocPoint;
use plotters::prelude::*;

/// A plotting failure (drawing or writing the file).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct PlotError {
    /// The picture.
    pub path: PathBuf,
    /// What failed.
    pub reason: String,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn atomic<F>(path: &Path, draw: F) -> Result<(), PlotError>
where
    F: FnOnce(&Path) -> Result<(), Box<dyn std::error::Error>>,
{
    let err = |e: &dyn std::fmt::Display| PlotError {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let tmp = path.with_extension("svg.tmp");
    draw(&tmp).map_err(|e| err(&e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(&e))
}

/// ROC curves, one per named set, with the chance diagonal; AUROCs in the legend.
pub fn roc_svg(
    path: impl AsRef<Path>,
    title: &str,
    curves: &[(String, Vec<RocPoint>, f64)],
) -> Result<(), PlotError> {
    atomic(path.as_ref(), |tmp| {
        let root = SVGBackend::new(tmp, (560, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc("false-positive rate")
            .y_desc("true-positive rate")
            .draw()?;
        chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
        for (i, (name, points, auroc)) in curves.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|p| (p.fpr, p.tpr)),
                    color.stroke_width(2),
                ))?
                .label(format!("{name} (AUROC {:.1}%)", 100.0 * auroc))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    })
}

/// Histograms of scores, one outline per named set, on shared bins; densities so sets of different sizes
/// compare.
pub fn histogram_svg(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    sets: &[(String, Vec<f64>)],
    bins: usize,
) -> Result<(), PlotError> {
    let all = sets
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (lo, hi) = if lo < hi {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    let densities: Vec<Vec<f64>> = sets
        .iter()
        .map(|(_, v)| {
            let mut h = vec![0.0; bins];
            v.iter()
                .filter(|x| x.is_finite())
                .for_each(|&x| h[(((x - lo) / width) as usize).min(bins - 1)] += 1.0);
            h.iter()
                .map(|c| c / (v.len().max(1) as f64 * width))
                .collect()
        })
        .collect();
    let top = densities.iter().flatten().fold(0.0f64, |a, &b| a.max(b)) * 1.1 + f64::MIN_POSITIVE;
    atomic(path.as_ref(), |tmp| {
        let root = SVGBackend::new(tmp, (560, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(lo..hi, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("density")
            .draw()?;
        for (i, ((name, _), h)) in sets.iter().zip(&densities).enumerate() {
            let color = COLORS[i % COLORS.len()];
            let steps = h
                .iter()
                .enumerate()
                .flat_map(|(b, &d)| [(lo + b as f64 * width, d), (lo + (b + 1) as f64 * width, d)]);
            chart
                .draw_series(LineSeries::new(steps, color.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg_files_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let roc = cadet_core::metrics::roc_curve(&[0.1, 0.4, 0.2], &[0.5, 0.3, 0.9]).unwrap();
        let p = dir.path().join("roc.svg");
        roc_svg(&p, "ROC", &[("ood".into(), roc, 0.8)]).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("<svg") && text.contains("AUROC 80.0%"));
        let h = dir.path().join("h.svg");
        histogram_svg(
            &h,
            "scores",
            "score",
            &[("a".into(), vec![0.0, 1.0, 1.0]), ("b".into(), vec![2.0])],
            5,
        )
        .unwrap();
        assert!(std::fs::read_to_string(&h).unwrap().contains("</svg>"));
        assert!(!dir.path().join("roc.svg.tmp").exists());
        assert!(roc_svg(dir.path().join("missing/dir/x.svg"), "t", &[]).is_err());
    }
}
