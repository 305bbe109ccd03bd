//! PGD, CW and FGSM against the classifier on the in-distribution test images: a line each and a grid of
//! clean / adversarial images (`pgd.png`, `cw.png`, `fgsm.png`).

use std::path::Path;
use std::time::Instant;

use cadet::attacks::{Attack, CarliniWagner, Classifier, Fgsm, Goal, Pgd};
use cadet_core::Progress;
use cadet_report::report::attack_grid;
use ndarray::{Array4, ArrayView4};

use super::BoxError;

/// An attack's name, its per-image success and its time in seconds.
pub(super) type AttackRun = (String, Vec<bool>, f64);

/// Adversarial images, named by their attack.
pub(super) type Attacked = Vec<(&'static str, Array4<f32>)>;

/// The three attacks on `images` (with their `labels`): the adversarial images, named, and plain PGD's run (the
/// adaptive-attack table's first row); the grids go into `folder`.
pub(super) fn attack_all(
    classifier: &dyn Classifier,
    (images, labels): (ArrayView4<'_, f32>, &[u32]),
    folder: &Path,
    progress: &dyn Progress,
) -> Result<(Attacked, AttackRun), BoxError> {
    let attacks: Vec<(&str, Box<dyn Attack>)> = vec![
        ("PGD", Box::new(Pgd::paper())),
        ("CW", Box::new(CarliniWagner::paper())),
        ("FGSM", Box::new(Fgsm::paper())),
    ];
    let mut attacked = Vec::new();
    // PGD's per-image success and time, for the adaptive-attack table's first row.
    let mut pgd = None;
    for (name, attack) in &attacks {
        let started = Instant::now();
        let out = attack.attack(classifier, images, labels, &Goal::Untargeted, progress)?;
        let (linf, l2) = out.mean_norms();
        println!(
            "{:<48} accuracy {:>5.1}% → {:>5.1}%, success {:>5.1}%, mean L∞ {linf:.4}, L2 {l2:.4}",
            attack.name(),
            100.0 * out.clean_accuracy(labels),
            100.0 * out.adversarial_accuracy(labels),
            100.0 * out.success_rate()
        );
        attack_grid(
            images,
            out.adversarial.view(),
            8,
            &folder.join(format!("{}.png", name.to_lowercase())),
        )?;
        if *name == "PGD" {
            pgd = Some((
                attack.name(),
                out.samples.iter().map(|s| s.success).collect::<Vec<bool>>(),
                started.elapsed().as_secs_f64(),
            ));
        }
        attacked.push((*name, out.adversarial));
    }
    Ok((attacked, pgd.ok_or("PGD runs first")?))
}
