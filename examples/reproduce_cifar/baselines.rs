//! The classifier baselines (ODIN, Hu et al.) on the attacked ResNet-20, and the per-image files the `validity`
//! example reads beside the transform features.

use std::path::Path;
use std::time::Instant;

use cadet::attacks::Classifier;
use cadet::data::Dataset;
use cadet::data::formats::save_npy;
use cadet_report::report::{ClassifierScores, MethodTable, push_classifier_baselines};
use ndarray::{Array1, Array2, Array3, Array4};

use super::data::OtherSet;
use super::{Args, BoxError};

/// ODIN and Hu et al. on `target` (input gradients), self-calibrated on X2, pushed to `table`; the sets after
/// the in-distribution test set are `others`, in the table's order. With `--save-features`, each set's scores
/// are saved under `classifier/`, named as its transform features.
pub(super) fn classifier_baselines(
    args: &Args,
    target: &dyn Classifier,
    (x2, test): (&Dataset, &Dataset),
    others: &[OtherSet],
    sets: &[(String, Array3<f32>)],
    table: &mut MethodTable,
) -> Result<(), BoxError> {
    let started = Instant::now();
    let odin = cadet::attacks::Odin::paper();
    // 4 noisy copies, not 20: measured on 100 JPEG test images with 2 busy cores, ODIN 1.9 s, 20 copies 10 s,
    // steps 2.5 s (clean, mean 1.1 steps) to 5.6 s (PGD, mean 3.3); 4,500 images in a default run.
    let noise = cadet::attacks::NoiseRobustness {
        n_noise: 4,
        ..cadet::attacks::NoiseRobustness::hu()
    };
    let steps = cadet::attacks::BoundarySteps::new();
    let score = |images: &Array4<f32>| -> Result<_, BoxError> {
        Ok(ClassifierScores {
            odin: odin.scores(target, images.view())?,
            noise: noise.scores(target, images.view())?.l1_change,
            steps: steps.scores(target, images.view())?,
        })
    };
    let other_scores = others
        .iter()
        .map(|(_, _, images)| score(images))
        .collect::<Result<Vec<_>, _>>()?;
    if other_scores.len() + 1 != sets.len() {
        return Err(format!(
            "internal: {} sets for {} columns",
            other_scores.len(),
            sets.len() - 1
        )
        .into());
    }
    let (x2_scores, test_scores) = (score(&x2.images_f32())?, score(&test.images_f32())?);
    push_classifier_baselines(table, &odin.name(), &x2_scores, &test_scores, &other_scores)?;
    if let Some(dir) = &args.save_features {
        // Per image, for the `validity` example: the same file names as the transform features.
        let dir = dir.join("classifier");
        std::fs::create_dir_all(&dir)?;
        let mut files = vec![
            ("x2.npy".to_string(), &x2_scores),
            (set_file(0, &sets[0].0) + ".npy", &test_scores),
        ];
        for (i, ((name, _), s)) in sets.iter().skip(1).zip(&other_scores).enumerate() {
            files.push((set_file(i + 1, name) + ".npy", s));
        }
        for (file, s) in files {
            save_npy(&s.to_columns()?, dir.join(file))?;
        }
        eprintln!("ODIN and Hu et al. scores saved in {}", dir.display());
    }
    eprintln!(
        "ODIN and Hu et al.: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The single-view features the baselines use, `(n, d)`, under `dir/single/`: the k-NN training images and
/// their labels, X2, and every scored set (named as its transform features).
pub(super) fn save_single_views(
    dir: &Path,
    (knn_features, knn_train): (&Array2<f32>, &Dataset),
    x2_single: &Array2<f32>,
    sets: &[(String, Array3<f32>)],
    single: &[Array2<f32>],
) -> Result<(), BoxError> {
    if single.len() != sets.len() {
        return Err(format!(
            "internal: {} single-view feature sets for {} scored sets",
            single.len(),
            sets.len()
        )
        .into());
    }
    let dir = dir.join("single");
    std::fs::create_dir_all(&dir)?;
    save_npy(knn_features, dir.join("knn_train.npy"))?;
    save_npy(
        &Array1::from(knn_train.labels().to_vec()),
        dir.join("knn_train_labels.npy"),
    )?;
    save_npy(x2_single, dir.join("x2.npy"))?;
    for (i, ((name, _), f)) in sets.iter().zip(single).enumerate() {
        save_npy(f, dir.join(set_file(i, name) + ".npy"))?;
    }
    eprintln!("single-view features saved in {}", dir.display());
    Ok(())
}

/// The file stem of scored set `i` called `name`: `3_blur` (`3_blur.npy`) for "blur (unseen, --ood)".
pub(super) fn set_file(i: usize, name: &str) -> String {
    let stem: String = name
        .split(" (")
        .next()
        .unwrap_or(name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{i}_{stem}")
}
