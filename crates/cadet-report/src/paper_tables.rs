//! The paper's CIFAR tables as `reproduce_cifar` writes them (Markdown appended to a report): Table 1 style
//! two-sample rejection rates, Table 2 style small-set AUROCs, and Figure 2 style AUROC against the number of
//! transforms, with the calibration of the paper's method on a prefix of the transforms they share.

use std::fmt::Write as _;
use std::path::Path;

use cadet_core::{Progress, metrics};
use cadet_detect::{Cadet, Calibration, EmbedderIdentity, ImageScore};
use cadet_mmd::experiments::{RejectionRate, SmallSetAuroc};
use cadet_mmd::{CosineKernel, Method, PermutationTest};
use ndarray::{Array2, Array3, s};

use crate::Error;

/// A set's name and CADet scores.
pub type Scored = (String, Vec<ImageScore>);

/// The paper's calibration from the first `k` transforms (after the un-augmented view, which it does not use),
/// and the scored sets.
pub fn paper_calibration_at(
    identity: &EmbedderIdentity,
    f1: &Array3<f32>,
    f2: &Array3<f32>,
    sets: &[(String, Array3<f32>)],
    k: usize,
) -> Result<(Calibration, Vec<Scored>), Error> {
    // View 0 is the un-augmented view; X1 may have fewer transforms (--x1-trs): it keeps them all.
    let cut = |f: &Array3<f32>| f.slice(s![.., 1..(1 + k).min(f.dim().1), ..]).to_owned();
    // The features are computed already: only n_trs matters here.
    let params = Cadet::paper(32).n_trs(k).check()?;
    let cal = params.calibrate_features(
        Some(identity.clone()),
        cut(f1).view(),
        cut(f2).view(),
        &cadet_core::NoProgress,
    )?;
    let scored = sets
        .iter()
        .map(|(name, f)| Ok((name.clone(), cal.score_features(cut(f).view())?)))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok((cal, scored))
}

/// Figure 2 style: AUROC of each set against the in-distribution test set (the first) as the paper's method uses
/// more of the `n_trs` transforms (2, 5, 10, 20, 50 up to `n_trs`), as a Markdown table appended to `md` and a
/// line chart `out/auroc_vs_ntrs.png`.
pub fn auroc_against_transforms(
    identity: &EmbedderIdentity,
    f1: &Array3<f32>,
    f2: &Array3<f32>,
    sets: &[(String, Array3<f32>)],
    n_trs: usize,
    out: &Path,
    md: &mut String,
) -> Result<(), Error> {
    let ks: Vec<usize> = [2, 5, 10, 20, 50]
        .into_iter()
        .filter(|&k| k <= n_trs)
        .collect();
    let mut series: Vec<(String, Vec<(f64, f64)>)> = sets[1..]
        .iter()
        .map(|(n, _)| (n.clone(), Vec::new()))
        .collect();
    for &k in &ks {
        let (_, scored) = paper_calibration_at(identity, f1, f2, sets, k)?;
        let anomaly = |s: &[ImageScore]| s.iter().map(|x| -x.score).collect::<Vec<_>>();
        let inside = anomaly(&scored[0].1);
        for (i, (_, s)) in scored[1..].iter().enumerate() {
            series[i]
                .1
                .push((k as f64, metrics::auroc(&inside, &anomaly(s))?));
        }
    }
    writeln!(md, "## AUROC against n_trs (Figure 2 style)\n")?;
    writeln!(
        md,
        "| set | {} |\n|---|{}",
        cells(ks.iter().map(|k| format!("n_trs = {k}"))),
        "---|".repeat(ks.len())
    )?;
    for (name, p) in &series {
        writeln!(
            md,
            "| {name} | {} |",
            cells(p.iter().map(|(_, a)| format!("{:.1}%", 100.0 * a)))
        )?;
    }
    crate::plots::line_chart(
        out.join("auroc_vs_ntrs.png"),
        "CADet AUROC against the number of transforms",
        "n_trs",
        "AUROC",
        &series,
    )?;
    writeln!(md, "\n![AUROC vs n_trs](auroc_vs_ntrs.png)\n")?;
    Ok(())
}

/// Table 1 style: rejection rates at α = 0.05 of MMD and MMD-CC for n = 50 … `max_n` (`repeats` tests per cell)
/// between the in-distribution pool `jpeg` and itself (the null), `lossless` (a subtle shift) and `tiny` (a strong
/// one), appended to `md` as Markdown.
pub fn two_sample_table(
    md: &mut String,
    jpeg: &Array2<f32>,
    lossless: &Array2<f32>,
    tiny: &Array2<f32>,
    repeats: usize,
    max_n: usize,
    progress: &dyn Progress,
) -> Result<(), Error> {
    let sizes: Vec<usize> = [50, 100, 200, 500, 1000, 2000]
        .into_iter()
        .filter(|&n| n <= max_n)
        .collect();
    writeln!(
        md,
        "## Two-sample tests (Table 1 style)\n\nShare of {} tests rejecting at α = 0.05 (cosine kernel on the embeddings, 500 permutations); sets drawn without replacement from each pool. P = CIFAR-10 JPEG test images not used elsewhere ({} images).\n\n| Q | test | {} |\n|---|---|{}",
        repeats,
        jpeg.nrows(),
        cells(sizes.iter().map(|n| format!("n = {n}"))),
        "---|".repeat(sizes.len())
    )?;
    let pairs: [(&str, Option<&Array2<f32>>); 3] = [
        ("CIFAR-10 JPEG (same source: the null)", None),
        ("CIFAR-10 lossless (subtle shift)", Some(lossless)),
        ("Tiny-ImageNet (strong shift)", Some(tiny)),
    ];
    for (name, q) in pairs {
        for method in [Method::Mmd, Method::MmdCc] {
            let mut cells = Vec::new();
            for &n in &sizes {
                let clean = if method == Method::MmdCc { 2 } else { 1 };
                let p_needed = n * (clean + usize::from(q.is_none()));
                if p_needed > jpeg.nrows() || q.is_some_and(|q| q.nrows() < n) {
                    cells.push("–".to_string());
                    continue;
                }
                let exp = RejectionRate::params(n)
                    .repeats(repeats)
                    .method(method)
                    .seed(n as u64)
                    .test(PermutationTest::params().n_perm(500))
                    .check()?;
                let r = match q {
                    None => {
                        exp.run_same_pool(jpeg.view(), &CosineKernel, &cadet_core::NoProgress)?
                    }
                    Some(q) => exp.run_two_pools(
                        jpeg.view(),
                        q.view(),
                        &CosineKernel,
                        &cadet_core::NoProgress,
                    )?,
                };
                cells.push(format!("{:.0}%", 100.0 * r.rate));
            }
            progress.start(&format!("Table 1: {name}, {method:?} done"), 0);
            writeln!(
                md,
                "| {name} | {} | {} |",
                method_name(method),
                cells.join(" | ")
            )?;
        }
    }
    writeln!(md)?;
    Ok(())
}

/// The test's name as the tables print it.
fn method_name(m: Method) -> &'static str {
    match m {
        Method::Mmd => "MMD",
        Method::MmdCc => "MMD-CC",
    }
}

/// Table 2 style: AUROC of telling small sets (n = 3 … 20) of anomalies from each pool of `out_pools` from small
/// in-distribution sets of `jpeg` with MMD-CC (`trials` per cell), appended to `md` as Markdown.
pub fn small_set_table(
    md: &mut String,
    jpeg: &Array2<f32>,
    out_pools: &[(String, Array2<f32>)],
    trials: usize,
    progress: &dyn Progress,
) -> Result<(), Error> {
    let sizes = [3usize, 5, 10, 20];
    writeln!(
        md,
        "## Small sets (Table 2 style)\n\nAUROC of telling sets of n anomalies from sets of n in-distribution images by their MMD-CC p-value against an in-distribution reference of 100 ({} trials per cell).\n\n| anomalies | {} |\n|---|{}",
        trials,
        cells(sizes.iter().map(|n| format!("n = {n}"))),
        "---|".repeat(sizes.len())
    )?;
    for (name, pool) in out_pools {
        progress.start(&format!("Table 2: {name}"), 0);
        let exp = SmallSetAuroc::params()
            .set_sizes(sizes.to_vec())
            .trials(trials)
            .test(PermutationTest::params().n_perm(200))
            .check()?;
        let rows = exp.run(
            jpeg.view(),
            pool.view(),
            &CosineKernel,
            &cadet_core::NoProgress,
        )?;
        writeln!(
            md,
            "| {name} | {} |",
            cells(rows.iter().map(|r| format!("{:.1}%", 100.0 * r.auroc)))
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// Markdown table cells joined with ` | `.
fn cells(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(" | ")
}
