//! The adversarial sets: PGD, CW and FGSM against the pretrained ResNet-20, and their table.

use std::fmt::Write as _;
use std::time::Instant;

use cadet::attacks::{Attack, CarliniWagner, Classifier, Fgsm, Goal, Pgd};
use cadet_core::Progress;
use ndarray::{Array4, ArrayView4};

use super::BoxError;

/// An attack's name, its per-image success and its time in seconds.
pub(super) type AttackRun = (String, Vec<bool>, f64);

/// Adversarial images, named by their attack.
pub(super) type Adversarial = Vec<(String, Array4<f32>)>;

/// The three attacks on `images` (with their `labels`) against `target`, their table in `md`: the adversarial
/// images, named, and plain PGD's run (the adaptive-attack table's first row).
pub(super) fn attack_all(
    target: &dyn Classifier,
    (images, labels): (ArrayView4<'_, f32>, &[u32]),
    progress: &dyn Progress,
    md: &mut String,
) -> Result<(Adversarial, AttackRun), BoxError> {
    let mut adversarial = Adversarial::new();
    writeln!(
        md,
        "## Attacks on ResNet-20 ({} JPEG test images)\n\n| attack | clean acc | adversarial acc | success | mean L∞ | mean L2 |\n|---|---|---|---|---|---|",
        labels.len()
    )?;
    let attacks: Vec<(&str, Box<dyn Attack>)> = vec![
        ("PGD", Box::new(Pgd::paper())),
        ("CW", Box::new(CarliniWagner::paper())),
        ("FGSM", Box::new(Fgsm::paper())),
    ];
    // PGD's per-image success and time, the adaptive-attack table's first row.
    let mut pgd = None;
    for (name, attack) in attacks {
        let t = Instant::now();
        let r = attack.attack(target, images, labels, &Goal::Untargeted, progress)?;
        let (linf, l2) = r.mean_norms();
        writeln!(
            md,
            "| {} | {:.1}% | {:.1}% | {:.1}% | {linf:.4} | {l2:.4} |",
            attack.name(),
            100.0 * r.clean_accuracy(labels),
            100.0 * r.adversarial_accuracy(labels),
            100.0 * r.success_rate()
        )?;
        eprintln!("{name}: {:.0} s", t.elapsed().as_secs_f64());
        if name == "PGD" {
            pgd = Some((
                attack.name(),
                r.samples.iter().map(|s| s.success).collect::<Vec<bool>>(),
                t.elapsed().as_secs_f64(),
            ));
        }
        adversarial.push((name.to_string(), r.adversarial));
    }
    writeln!(md)?;
    Ok((adversarial, pgd.ok_or("PGD runs first")?))
}
