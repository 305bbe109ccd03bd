//! The report's tables and figures: the saved split, marginal and training-conditional validity over the
//! re-splits, the p-values' empirical CDF.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use cadet::detect::validity::{ValidityRow, ValidityStudy};

use super::BoxError;
use super::procedures::{Procedure, split_p_values};

/// The saved split itself (X2 = `x2.npy`, test = the pool file after it) when the reference is the file's:
/// each procedure's rejection share and its tail under the exact law. Nothing when the pool has no `x2.npy`.
pub(super) fn saved_split(
    md: &mut String,
    procedures: &[(String, Procedure)],
    stats: &[Vec<f64>],
    (names, ranges): (&[String], &[Range<usize>]),
    alphas: &[f64],
) -> Result<(), BoxError> {
    let Some(x2_at) = names.iter().position(|n| n == "x2.npy") else {
        return Ok(());
    };
    if names.len() < 2 {
        return Ok(());
    }
    let test_at = if x2_at + 1 < names.len() {
        x2_at + 1
    } else {
        0
    };
    let x2: Vec<usize> = ranges[x2_at].clone().collect();
    let test: Vec<usize> = ranges[test_at].clone().collect();
    let p = split_p_values(procedures, stats, &x2, &test)?;
    writeln!(
        md,
        "## The saved split itself\n\nX2 = `x2.npy` ({} images), test = `{}` ({} images). Rejection share at each α, and \
         its tail: the probability that an exactly valid detector rejects at least that many (the \
         Beta-binomial law, `cadet_detect::validity::RejectionLaw`): a small value says this split is unusual, \
         not that the method is wrong; the re-splits below say that.\n\n| procedure | {} |\n|---|{}",
        x2.len(),
        names[test_at],
        test.len(),
        alphas
            .iter()
            .map(|a| format!("α = {a}"))
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(alphas.len())
    )?;
    for ((name, _), p) in procedures.iter().zip(&p) {
        let mut cells = Vec::new();
        for &a in alphas {
            let count = p.iter().filter(|&&v| v <= a).count();
            let law = cadet::detect::validity::RejectionLaw::conformal(x2.len(), test.len(), a)?;
            cells.push(format!(
                "{:.1}% (tail {:.3})",
                100.0 * count as f64 / test.len() as f64,
                law.upper_tail(count)
            ));
        }
        writeln!(md, "| {name} | {} |", cells.join(" | "))?;
    }
    writeln!(md)?;
    Ok(())
}

/// The empirical CDF of the test images' p-values over all splits at |X2| = `n`, against the diagonal:
/// `ecdf.png` and `ecdf_low.png` (p ≤ 0.15) in `out`, linked from the report.
pub(super) fn ecdf_plots(
    md: &mut String,
    study: &ValidityStudy,
    procedures: &[(String, Procedure)],
    n: usize,
    out: &Path,
) -> Result<(), BoxError> {
    for (file, up_to) in [("ecdf.png", 1.0), ("ecdf_low.png", 0.15)] {
        let mut series: Vec<(String, Vec<(f64, f64)>)> = vec![(
            "uniform (exact validity)".into(),
            vec![(0.0, 0.0), (up_to, up_to)],
        )];
        for (name, _) in procedures {
            if let Some(points) = study.ecdf(name, n, up_to) {
                series.push((name.clone(), points));
            }
        }
        cadet_report::plots::line_chart(
            out.join(file),
            &format!("In-distribution p-values, |X2| = {n}: empirical CDF"),
            "t",
            "share of p ≤ t",
            &series,
        )?;
    }
    writeln!(
        md,
        "![ECDF](ecdf.png) ![ECDF, low range](ecdf_low.png)\n\nThe empirical CDF of the test images' p-values \
         over all splits at |X2| = {n}, against the diagonal (exact validity).\n"
    )?;
    Ok(())
}

/// The two tables: the mean rejection against its exact expectation (marginal validity), and the spread across
/// splits against the law's (training-conditional validity).
pub(super) fn write_tables(
    md: &mut String,
    rows: &[ValidityRow],
    alphas: &[f64],
) -> Result<(), BoxError> {
    let header = |md: &mut String, first: &str| -> std::fmt::Result {
        writeln!(
            md,
            "| {first} | |X2| | test | {} |\n|---|---|---|{}",
            alphas
                .iter()
                .map(|a| format!("α = {a}"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(alphas.len())
        )
    };
    let groups: Vec<&[ValidityRow]> = rows.chunks(alphas.len()).collect();
    writeln!(
        md,
        "## Marginal validity: mean rejection rate over splits\n\nEach cell: the mean share of test images with p ≤ α, \
         [the 99.9% interval of that mean for an exactly valid detector: ⌊α(n+1)⌋/(n+1) ± 3.29 · sd/√splits, sd the \
         larger of the law's and the observed spread]; `✗` marks a mean above it (more false positives than promised), \
         `↓` one below it (conservative: valid, e.g. ties among a minimum p-value's combined values).\n"
    )?;
    header(md, "procedure")?;
    for g in &groups {
        let cells: Vec<String> = g
            .iter()
            .map(|r| {
                format!(
                    "{:.2}% [{:.2}–{:.2}]{}",
                    100.0 * r.mean_rate,
                    100.0 * r.interval.0,
                    100.0 * r.interval.1,
                    if r.mean_above() {
                        " ✗"
                    } else if !r.mean_inside() {
                        " ↓"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        writeln!(
            md,
            "| {} | {} | {} | {} |",
            g[0].procedure,
            g[0].x2_size,
            g[0].test_size,
            cells.join(" | ")
        )?;
    }
    writeln!(
        md,
        "\n## Training-conditional validity: spread across X2 draws\n\nEach cell: the standard deviation of the \
         rejection rate across splits / the Beta-binomial law's (exact for a single conformal score, approximate for \
         the full-conformal combinations), the share of splits above the law's 95% quantile (about 5% under the \
         law), and the largest rate of any split.\n"
    )?;
    header(md, "procedure")?;
    for g in &groups {
        let cells: Vec<String> = g
            .iter()
            .map(|r| {
                format!(
                    "sd {:.2}/{:.2}, >q95 {:.1}%, max {:.1}%",
                    100.0 * r.sd,
                    100.0 * r.law_sd,
                    100.0 * r.above_law_q95,
                    100.0 * r.max_rate
                )
            })
            .collect();
        writeln!(
            md,
            "| {} | {} | {} | {} |",
            g[0].procedure,
            g[0].x2_size,
            g[0].test_size,
            cells.join(" | ")
        )?;
    }
    writeln!(md)?;
    Ok(())
}
