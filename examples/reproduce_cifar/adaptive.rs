//! `--adaptive N`: the first N attacked images attacked again by an attacker who knows the detector (EOT-PGD
//! through CADet's transforms, then with a surrogate of the headline's statistics), judged by the paper's
//! detector and the headline.

use cadet::attacks::{Classifier, EotPgd, ImageEncoder, SurrogateReference, SurrogateTerms};
use cadet::detect::Stream;
use cadet::detect::comparison::MethodScores;
use cadet_core::Progress;
use cadet_report::adaptive::{AdaptiveAttackTable, AttackedImages, score_by_each};
use ndarray::{Array3, Array4, ArrayView4, s};

use super::{Args, BoxError};

/// EOT transforms per image and step of the adaptive attacks (the library's default is 8; 4 halves the time).
const EOT_SAMPLES: usize = 4;

/// CADet transform features of images on a stream (the run's evaluation pipeline and embedder).
pub(super) type TransformFeatures<'a> =
    dyn Fn(&Array4<f32>, Stream) -> cadet::detect::Result<Array3<f32>> + 'a;

/// What the adaptive table is made from.
pub(super) struct Inputs<'a> {
    /// Plain PGD's name, per-image success on all attacked images, and its time.
    pub pgd: (String, Vec<bool>, f64),
    /// The scored sets, PGD's among them.
    pub sets: &'a [(String, Array3<f32>)],
    /// The compared methods' calibrations and scores (the paper's first).
    pub results: &'a [MethodScores],
    /// The headline method's.
    pub headline: &'a MethodScores,
    /// X1's transform features, the surrogate's reference.
    pub reference: &'a Array3<f32>,
    /// |X2|.
    pub x2_images: usize,
    /// The attacked images and their labels.
    pub attacked: (ArrayView4<'a, f32>, &'a [u32]),
    /// The attacked classifier.
    pub target: &'a dyn Classifier,
    /// The embedder's encoder on the autodiff device.
    pub surrogate: &'a dyn ImageEncoder,
    /// CADet's transform features.
    pub tf: &'a TransformFeatures<'a>,
    /// Progress of the attacks.
    pub progress: &'a dyn Progress,
}

/// The adaptive-attack table for the first `--adaptive` attacked images.
pub(super) fn adaptive_table(
    args: &Args,
    inputs: Inputs<'_>,
) -> Result<AdaptiveAttackTable, BoxError> {
    let Inputs {
        pgd: (pgd_name, pgd_success, pgd_seconds),
        sets,
        results,
        headline,
        reference,
        x2_images,
        attacked: (attack_images, labels),
        target,
        surrogate,
        tf,
        progress,
    } = inputs;
    let (first, n) = (args.adaptive, args.n_test);
    let pgd_set = sets
        .iter()
        .position(|(name, _)| name == "PGD adversarial")
        .ok_or("the PGD set is scored")?;
    let detectors = [
        (results[0].name.clone(), &results[0]),
        (format!("headline: {}", headline.name), headline),
    ];
    let mut adaptive = AdaptiveAttackTable::new(
        format!(
            "The first {first} attacked images, judged by the detectors above ({} transforms, |X1| = {}, \
             |X2| = {}; clean side: the {n} in-distribution test images); EOT: {EOT_SAMPLES} transforms per \
             step; the surrogate rewards the headline's statistics (λ = 1) on the embedder against X1. PGD's \
             time is for all {n} attacked images.",
            args.n_trs,
            reference.dim().0,
            x2_images
        ),
        detectors
            .iter()
            .map(|(name, m)| (name.clone(), m.scores[0].clone()))
            .collect(),
        0.05,
    )?;
    adaptive.push(&AttackedImages {
        attack: pgd_name,
        success: pgd_success[..first].to_vec(),
        scores: detectors
            .iter()
            .map(|(_, m)| m.scores[pgd_set][..first].to_vec())
            .collect(),
        seconds: pgd_seconds,
    })?;
    let calibrations = detectors.map(|(_, m)| &m.calibration);
    adaptive.push_eot_attacks(
        target,
        surrogate,
        SurrogateReference::from_features(reference.view())?,
        SurrogateTerms::headline(),
        &EotPgd {
            samples: EOT_SAMPLES,
            batch_size: 20,
            ..EotPgd::paper()
        },
        attack_images.slice(s![..first, .., .., ..]),
        &labels[..first],
        |adversarial, i| {
            score_by_each(
                &calibrations,
                tf(adversarial, Stream::Extra(40 + i as u32))?.view(),
            )
        },
        progress,
    )?;
    Ok(adaptive)
}
