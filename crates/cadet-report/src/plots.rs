//! Pictures of results, PNG or SVG by the file's extension: ROC curves and score histograms. PNG text uses a
//! font compiled in (Ubuntu Light, from `epaint_default_fonts`), so no system font or library is needed. Files
//! are written atomically ([`cadet_core::io::write_atomic`]), so a crash never leaves half a picture.

use std::path::{Path, PathBuf};

use cadet_core::metrics::RocPoint;
use image::ImageEncoder;
use plotters::coord::Shift;
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

/// The result of drawing on a backend.
type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Something drawn on any plotters backend.
trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static;
}

/// Draws `figure` on the backend the extension of `path` names (`.png` or `.svg`) and writes it atomically.
fn picture(path: &Path, figure: &impl Figure) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let (width, height) = figure.size();
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    // Both backends lay text out with the registered font.
    register_font();
    let bytes: Vec<u8> = match extension.as_deref() {
        Some("svg") => {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, (width, height)).into_drawing_area();
                figure.draw(&root).map_err(|e| err(&e))?;
                root.present().map_err(|e| err(&e))?;
            }
            text.into_bytes()
        }
        Some("png") => {
            let mut rgb = vec![255u8; (width * height * 3) as usize];
            {
                let root =
                    BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
                figure.draw(&root).map_err(|e| err(&e))?;
                root.present().map_err(|e| err(&e))?;
            }
            let mut png = Vec::new();
            image::codecs::png::PngEncoder::new(&mut png)
                .write_image(&rgb, width, height, image::ExtendedColorType::Rgb8)
                .map_err(|e| err(&e))?;
            png
        }
        _ => return Err(err(&"the file name must end in .png or .svg")),
    };
    cadet_core::io::write_atomic(path, &bytes).map_err(|e| err(&e))
}

/// The font of PNG text, registered once.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // A TrueType file compiled in: registering it cannot fail in practice, and a failure would only cost
        // the text, so it is not worth an error path.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

struct Roc<'a> {
    title: &'a str,
    curves: &'a [(String, Vec<RocPoint>, f64)],
}

impl Figure for Roc<'_> {
    fn size(&self) -> (u32, u32) {
        (560, 480)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", 18))
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
        for (i, (name, points, auroc)) in self.curves.iter().enumerate() {
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
        Ok(())
    }
}

/// ROC curves, one per named set, with the chance diagonal; AUROCs in the legend. PNG or SVG by the extension
/// of `path`.
pub fn roc_curves(
    path: impl AsRef<Path>,
    title: &str,
    curves: &[(String, Vec<RocPoint>, f64)],
) -> Result<(), PlotError> {
    picture(path.as_ref(), &Roc { title, curves })
}

struct Histograms<'a> {
    title: &'a str,
    x_label: &'a str,
    names: Vec<&'a str>,
    densities: Vec<Vec<f64>>,
    lo: f64,
    width: f64,
}

impl Figure for Histograms<'_> {
    fn size(&self) -> (u32, u32) {
        (560, 400)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        let (lo, width) = (self.lo, self.width);
        let bins = self.densities.first().map_or(1, Vec::len);
        let top = self
            .densities
            .iter()
            .flatten()
            .fold(0.0f64, |a, &b| a.max(b))
            * 1.1
            + f64::MIN_POSITIVE;
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(lo..lo + bins as f64 * width, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc("density")
            .draw()?;
        for (i, (name, h)) in self.names.iter().zip(&self.densities).enumerate() {
            let color = COLORS[i % COLORS.len()];
            let steps = h
                .iter()
                .enumerate()
                .flat_map(|(b, &d)| [(lo + b as f64 * width, d), (lo + (b + 1) as f64 * width, d)]);
            chart
                .draw_series(LineSeries::new(steps, color.stroke_width(2)))?
                .label(name.to_string())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}

/// Histograms of scores, one outline per named set, on shared bins; densities so sets of different sizes
/// compare. PNG or SVG by the extension of `path`.
pub fn histograms(
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
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (0.0, 1.0)
    };
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    let densities = sets
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
    let figure = Histograms {
        title,
        x_label,
        names: sets.iter().map(|(n, _)| n.as_str()).collect(),
        densities,
        lo,
        width,
    };
    picture(path.as_ref(), &figure)
}

struct Lines<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: &'a [(String, Vec<(f64, f64)>)],
}

impl Figure for Lines<'_> {
    fn size(&self) -> (u32, u32) {
        (560, 400)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        let points = || self.series.iter().flat_map(|(_, p)| p.iter().copied());
        let bounds = |f: fn(&(f64, f64)) -> f64| {
            let (lo, hi) = points()
                .map(|p| f(&p))
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            match (lo.is_finite(), lo < hi) {
                (true, true) => (lo, hi),
                (true, false) => (lo - 0.5, lo + 0.5),
                _ => (0.0, 1.0),
            }
        };
        let ((x0, x1), (y0, y1)) = (bounds(|p| p.0), bounds(|p| p.1));
        let pad = 0.05 * (y1 - y0);
        let (y0, y1) = (y0 - pad, y1 + pad);
        // The legend goes in a corner no curve crosses; when every corner is crossed, headroom is added above
        // the curves for it (its height: a line per series).
        let (corner, crossings) = emptiest_corner(self.series, (x0, x1), (y0, y1));
        let (corner, y1) = if crossings == 0 {
            (corner, y1)
        } else {
            let share = ((self.series.len() as f64 * 20.0 + 16.0) / 300.0).min(0.6);
            (
                SeriesLabelPosition::UpperLeft,
                y1 + (y1 - y0) * share / (1.0 - share),
            )
        };
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .draw()?;
        for (i, (name, p)) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(p.iter().copied(), color.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(p.iter().map(|&xy| Circle::new(xy, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(corner)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}

/// The corner of the plot whose box (45% of the width, 35% of the height) the curves cross least, sampling each
/// segment at 32 points, and how many samples fall in it: where the legend hides the least. Ties go to the upper
/// left, upper right, lower left, lower right, in that order.
fn emptiest_corner(
    series: &[(String, Vec<(f64, f64)>)],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> (SeriesLabelPosition, usize) {
    let (w, h) = (
        (x1 - x0).max(f64::MIN_POSITIVE),
        (y1 - y0).max(f64::MIN_POSITIVE),
    );
    let mut counts = [0usize; 4]; // upper left, upper right, lower left, lower right
    let mut count = |x: f64, y: f64| {
        let (u, v) = ((x - x0) / w, (y - y0) / h);
        let (left, right, top, bottom) = (u <= 0.45, u >= 0.55, v >= 0.65, v <= 0.35);
        for (k, inside) in [top && left, top && right, bottom && left, bottom && right]
            .into_iter()
            .enumerate()
        {
            counts[k] += usize::from(inside);
        }
    };
    for (_, points) in series {
        if let [only] = points.as_slice() {
            count(only.0, only.1);
        }
        for pair in points.windows(2) {
            let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
            for i in 0..32 {
                let t = f64::from(i) / 31.0;
                count(ax + t * (bx - ax), ay + t * (by - ay));
            }
        }
    }
    let best = (0..4).min_by_key(|&k| counts[k]).unwrap_or(0);
    let corner = [
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::LowerLeft,
        SeriesLabelPosition::LowerRight,
    ][best]
        .clone();
    (corner, counts[best])
}

/// Named series of points joined by lines (e.g. AUROC against the number of transforms). PNG or SVG by the
/// extension of `path`.
pub fn line_chart(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), PlotError> {
    let figure = Lines {
        title,
        x_label,
        y_label,
        series,
    };
    picture(path.as_ref(), &figure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg_and_png_files_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let roc = cadet_core::metrics::roc_curve(&[0.1, 0.4, 0.2], &[0.5, 0.3, 0.9]).unwrap();
        let p = dir.path().join("roc.svg");
        // Someone else's file where a naive writer puts its temporary: it must survive.
        std::fs::write(dir.path().join("roc.tmp"), "not ours").unwrap();
        roc_curves(&p, "ROC", &[("ood".into(), roc, 0.8)]).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("<svg") && text.contains("AUROC 80.0%"));
        let h = dir.path().join("h.svg");
        histograms(
            &h,
            "scores",
            "score",
            &[("a".into(), vec![0.0, 1.0, 1.0]), ("b".into(), vec![2.0])],
            5,
        )
        .unwrap();
        assert!(std::fs::read_to_string(&h).unwrap().contains("</svg>"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("roc.tmp")).unwrap(),
            "not ours"
        );
        assert!(roc_curves(dir.path().join("missing/dir/x.svg"), "t", &[]).is_err());
        assert!(roc_curves(dir.path().join("x.gif"), "t", &[]).is_err());
        let png = dir.path().join("h.png");
        histograms(
            &png,
            "scores",
            "score",
            &[("a".into(), vec![0.0, 1.0, 1.0])],
            5,
        )
        .unwrap();
        let decoded = image::open(&png).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (560, 400));
        // Not blank: lines and text in colours other than the white background.
        assert!(decoded.pixels().filter(|p| p.0 != [255, 255, 255]).count() > 1000);
        let lines = dir.path().join("l.png");
        let series = [("auroc".to_string(), vec![(1.0, 0.5), (10.0, 0.9)])];
        line_chart(&lines, "t", "x", "y", &series).unwrap();
        assert_eq!(
            image::open(&lines).unwrap().to_rgb8().dimensions(),
            (560, 400)
        );
    }
}

#[cfg(test)]
mod legend_tests {
    use super::*;

    fn pos(series: &[(String, Vec<(f64, f64)>)]) -> String {
        format!("{:?}", emptiest_corner(series, (0.0, 10.0), (0.0, 1.0)).0)
    }

    /// A rising curve crosses the upper-right and lower-left boxes; a falling one the other two.
    #[test]
    fn the_legend_goes_where_the_curves_are_not() {
        let rising = vec![("a".to_string(), vec![(0.0, 0.0), (10.0, 1.0)])];
        assert_eq!(pos(&rising), "UpperLeft");
        let falling = vec![("a".to_string(), vec![(0.0, 1.0), (10.0, 0.0)])];
        assert_eq!(pos(&falling), "UpperRight");
        // A flat curve along the top leaves both lower corners free: the lower left wins the tie; a short
        // segment there moves the legend to the lower right.
        let mut flat = vec![("top".to_string(), vec![(0.0, 0.9), (10.0, 0.9)])];
        assert_eq!(pos(&flat), "LowerLeft");
        flat.push(("low".to_string(), vec![(0.0, 0.1), (3.0, 0.1)]));
        assert_eq!(pos(&flat), "LowerRight");
        // No points at all: the first choice.
        assert_eq!(pos(&[]), "UpperLeft");
        // Curves through every corner: the least crossed one, with its count.
        let x = vec![
            ("up".to_string(), vec![(0.0, 0.0), (10.0, 1.0)]),
            ("down".to_string(), vec![(0.0, 1.0), (10.0, 0.0)]),
        ];
        let (_, crossings) = emptiest_corner(&x, (0.0, 10.0), (0.0, 1.0));
        assert!(crossings > 0);
        assert_eq!(emptiest_corner(&flat, (0.0, 10.0), (0.0, 1.0)).1, 0);
    }
}
