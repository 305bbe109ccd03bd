//! `--json`: JSON Lines instead of tables.

use cadet::detect::{Calibration, Correction, ImageScore, decide_scores};
use cadet_report::report::{CadetReport, MethodTable};

use super::{Args, BoxError};

/// `--json`: JSON Lines, one record per image, per set and per compared detector (see the flag's help).
pub(super) fn print_json_lines(
    args: &Args,
    cal: &Calibration,
    sets: &[(String, Vec<ImageScore>)],
    report: &CadetReport,
    table: Option<&MethodTable>,
) -> Result<(), BoxError> {
    // A failed write is stdout's (a full disk, a closed pipe): say so, not only the system's words.
    write_json_lines(args, cal, sets, report, table).map_err(|e| {
        if e.is::<std::io::Error>() {
            format!("--json: writing to stdout: {e}").into()
        } else {
            e
        }
    })
}

fn write_json_lines(
    args: &Args,
    cal: &Calibration,
    sets: &[(String, Vec<ImageScore>)],
    report: &CadetReport,
    table: Option<&MethodTable>,
) -> Result<(), BoxError> {
    use std::io::Write;
    let labels: Vec<String> = cal.method().statistics.iter().map(|s| s.label()).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (name, scores) in sets {
        let decisions = decide_scores(scores, args.alpha, Correction::None)?;
        for (index, (s, v)) in scores.iter().zip(&decisions.verdicts).enumerate() {
            let statistics: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .cloned()
                .zip(s.statistics.iter().map(|&x| serde_json::json!(x)))
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "record": "image", "set": name, "index": index, "p_value": s.p_value,
                    "is_anomaly": v.is_anomaly, "score": s.score, "statistics": statistics,
                })
            )?;
        }
        let row = report
            .rows
            .iter()
            .zip(&report.stats)
            .find(|(r, _)| &r.name == name);
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "record": "set", "set": name, "alpha": args.alpha, "n_trs": cal.params().transforms(),
                "x1_size": cal.x1_size(), "x2_size": cal.x2_size(), "method": cal.method().label(),
                "gamma": cal.gamma(), "images": scores.len(), "rejected": decisions.rejected,
                "rejection_rate": decisions.rejected as f64 / scores.len().max(1) as f64,
                "metrics": row.map(|(r, _)| r), "table5": row.map(|(_, st)| st),
            })
        )?;
    }
    if let Some(table) = table {
        for row in &table.rows {
            let aurocs: serde_json::Map<String, serde_json::Value> =
                table
                    .sets
                    .iter()
                    .cloned()
                    .zip(row.aurocs.iter().map(
                        |a| serde_json::json!({ "auroc": a.auroc, "low": a.low, "high": a.high }),
                    ))
                    .collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "record": "comparison", "detector": row.name, "alpha": table.alpha, "auroc": aurocs,
                    "rejection_rate": row.rejected.map(|(r, _)| r),
                    "rejection_within_law": row.rejected.map(|(_, inside)| inside),
                })
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
