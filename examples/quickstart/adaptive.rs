//! `--adaptive`: the classifier attacked again by an attacker who knows the detector (EOT-PGD through CADet's
//! transforms; then also rewarded by a differentiable surrogate of the headline's statistics on the SimCLR
//! encoder), judged by the paper's detector and the headline; printed and written to `adaptive_attack.md`.

use cadet::attacks::{Classifier, EotPgd, ImageEncoder, SurrogateReference, SurrogateTerms};
use cadet::detect::Stream;
use cadet::detect::comparison::MethodScores;
use cadet_core::Progress;
use cadet_report::adaptive::{AdaptiveAttackTable, AttackedImages, score_by_each};
use ndarray::{Array3, Array4, ArrayView4};

use super::attacks::AttackRun;
use super::{Args, BoxError};

/// EOT transforms per image and step of the adaptive attacks (the library's default is 8; 4 halves the time).
const EOT_SAMPLES: usize = 4;

/// CADet transform features of images on a stream (the run's evaluation pipeline and embedder).
pub(super) type TransformFeatures<'a> =
    dyn Fn(&Array4<f32>, Stream) -> cadet::detect::Result<Array3<f32>> + 'a;

/// What the adaptive table is made from.
pub(super) struct Inputs<'a> {
    /// Plain PGD's run on the test images (scored as the third set).
    pub pgd: AttackRun,
    /// The compared methods' calibrations and scores (the paper's first).
    pub results: &'a [MethodScores],
    /// The headline method's.
    pub headline: &'a MethodScores,
    /// X1's transform features, the surrogate's reference.
    pub reference: &'a Array3<f32>,
    /// |X2|.
    pub x2_images: usize,
    /// The test images, their labels, and the classifier's accuracy on them.
    pub attacked: (ArrayView4<'a, f32>, &'a [u32], f64),
    /// The attacked classifier.
    pub classifier: &'a dyn Classifier,
    /// The SimCLR encoder on the autodiff device.
    pub surrogate: &'a dyn ImageEncoder,
    /// CADet's transform features.
    pub tf: &'a TransformFeatures<'a>,
    /// Progress of the attacks.
    pub progress: &'a dyn Progress,
}

/// The adaptive-attack table, printed and saved as `adaptive_attack.md` in `--out`.
pub(super) fn adaptive_table(args: &Args, inputs: Inputs<'_>) -> Result<(), BoxError> {
    let Inputs {
        pgd: (pgd_name, pgd_success, pgd_seconds),
        results,
        headline,
        reference,
        x2_images,
        attacked: (images, labels, clean_accuracy),
        classifier,
        surrogate,
        tf,
        progress,
    } = inputs;
    let detectors = [
        (results[0].name.clone(), &results[0]),
        (format!("headline: {}", headline.name), headline),
    ];
    let mut table = AdaptiveAttackTable::new(
        format!(
            "Adaptive attacks on the quickstart's classifier ({} test images, clean accuracy {:.1}%), judged \
             by CADet on the SimCLR encoder: {} transforms, |X1| = {}, |X2| = {}; EOT: {EOT_SAMPLES} transforms \
             per step; the surrogate rewards the headline's statistics (λ = 1) against X1.",
            images.dim().0,
            100.0 * clean_accuracy,
            args.n_trs,
            reference.dim().0,
            x2_images
        ),
        detectors
            .iter()
            .map(|(name, m)| (name.clone(), m.scores[0].clone()))
            .collect(),
        args.alpha,
    )?;
    // Plain PGD, scored above with the other sets (the third).
    table.push(&AttackedImages {
        attack: pgd_name,
        success: pgd_success,
        scores: detectors.iter().map(|(_, m)| m.scores[2].clone()).collect(),
        seconds: pgd_seconds,
    })?;
    let calibrations = detectors.map(|(_, m)| &m.calibration);
    table.push_eot_attacks(
        classifier,
        surrogate,
        SurrogateReference::from_features(reference.view())?,
        SurrogateTerms::headline(),
        &EotPgd {
            samples: EOT_SAMPLES,
            batch_size: 50,
            ..EotPgd::paper()
        },
        images,
        labels,
        |adversarial, i| {
            score_by_each(
                &calibrations,
                tf(adversarial, Stream::Extra(1 + i as u32))?.view(),
            )
        },
        progress,
    )?;
    println!("\n{table}");
    cadet_core::io::write_atomic(
        &args.out.join("adaptive_attack.md"),
        table.to_string().as_bytes(),
    )?;
    Ok(())
}
