//! Shared machinery: host ↔ device conversion, the loss gradient with respect to the input, batching, reports.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use cadet_core::Progress;
use cadet_model::Classifier;
use ndarray::{Array4, ArrayView4, Axis, s};

use crate::{AttackOutput, Error, Goal, Result, SampleReport};

/// Images (any layout) on the device: `cadet-model`'s conversion.
pub(crate) fn to_tensor(images: ArrayView4<'_, f32>, device: &Device) -> Tensor<4> {
    cadet_model::view_to_tensor(&images, device)
}

/// A tensor back on the host (standard layout): `cadet-model`'s conversion.
pub(crate) fn to_array(t: Tensor<4>) -> Result<Array4<f32>> {
    Ok(cadet_model::tensor_to_array(t)?)
}

pub(crate) fn labels_tensor(labels: &[u32], device: &Device) -> Tensor<2, Int> {
    let v: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    Tensor::<1, Int>::from_data(TensorData::new(v, [labels.len()]), device)
        .reshape([labels.len(), 1])
}

/// Predicted classes of a batch.
pub(crate) fn predictions(clf: &dyn Classifier, x: Tensor<4>) -> Result<Vec<u32>> {
    // Non-finite logits (an overflowing model) are an error, not a prediction an attack could "succeed" on.
    Ok(cadet_model::predictions(clf.logits(x))?)
}

/// Per-sample cross-entropy summed over the batch: rows do not interact, so the gradient of the sum gives
/// every image its own gradient.
pub(crate) fn cross_entropy_sum(logits: Tensor<2>, labels: Tensor<2, Int>) -> Tensor<1> {
    log_softmax(logits, 1).gather(1, labels).sum().neg()
}

/// `∇ₓ L(x)` where `L` is the cross-entropy on the labels (untargeted: to ascend) or on the targets (targeted:
/// the returned direction is already negated, so ascending it descends the target loss).
pub(crate) fn ascent_gradient(
    clf: &dyn Classifier,
    x: Tensor<4>,
    labels: &Tensor<2, Int>,
    targeted: bool,
) -> Result<Tensor<4>> {
    let x = x.detach().require_grad();
    let loss = cross_entropy_sum(clf.logits(x.clone()), labels.clone());
    let grads = loss.backward();
    let g = x.grad(&grads).ok_or_else(|| {
        Error::Backend("no gradient for the input: is the classifier on an autodiff device?".into())
    })?;
    let g = Tensor::from_inner(g);
    Ok(if targeted { g.neg() } else { g })
}

/// Per-sample L2 norms `(N, 1, 1, 1)`.
pub(crate) fn l2_norms(t: Tensor<4>) -> Tensor<4> {
    t.powf_scalar(2.0).sum_dim(3).sum_dim(2).sum_dim(1).sqrt()
}

/// At least one image, every value in `[0, 1]`.
pub(crate) fn check_images(images: ArrayView4<'_, f32>) -> Result<()> {
    if images.dim().0 == 0 {
        return Err(Error::Input {
            what: "images",
            reason: "no image".into(),
        });
    }
    if let Some(v) = images.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::Input {
            what: "images",
            reason: format!("value {v} outside [0, 1]"),
        });
    }
    Ok(())
}

pub(crate) fn check_inputs(images: ArrayView4<'_, f32>, labels: &[u32], goal: &Goal) -> Result<()> {
    check_images(images)?;
    let n = images.dim().0;
    if labels.len() != n {
        return Err(Error::Input {
            what: "labels",
            reason: format!("{} labels for {n} images", labels.len()),
        });
    }
    if let Goal::Targeted(t) = goal
        && t.len() != n
    {
        return Err(Error::Input {
            what: "targets",
            reason: format!("{} targets for {n} images", t.len()),
        });
    }
    Ok(())
}

/// Runs `attack_batch` over batches of `batch_size` images and builds the report. `attack_batch` gets the clean
/// batch on the classifier's device, the labels the loss uses (labels, or targets), whether the goal is
/// targeted, and the index of the batch's first image; it returns the adversarial batch.
#[allow(clippy::too_many_arguments)] // one internal driver shared by the three attacks
pub(crate) fn run_batches(
    clf: &dyn Classifier,
    images: ArrayView4<'_, f32>,
    labels: &[u32],
    goal: &Goal,
    batch_size: usize,
    progress: &dyn Progress,
    name: &str,
    mut attack_batch: impl FnMut(Tensor<4>, &Tensor<2, Int>, bool, usize) -> Result<Tensor<4>>,
) -> Result<AttackOutput> {
    check_inputs(images, labels, goal)?;
    let device = clf.device();
    let n = images.dim().0;
    // Every label (and target) must be one of the classifier's classes: the loss gathers the logit at the label,
    // and an index past the last class aborted the process inside the backend.
    let classes = clf
        .logits(to_tensor(images.slice(s![..1, .., .., ..]), &device))
        .dims()[1];
    let targets = match goal {
        Goal::Untargeted => &[][..],
        Goal::Targeted(t) => &t[..],
    };
    for (what, values) in [("labels", labels), ("targets", targets)] {
        if let Some((i, l)) = values
            .iter()
            .enumerate()
            .find(|(_, l)| **l as usize >= classes)
        {
            return Err(Error::Input {
                what,
                reason: format!(
                    "image {i} has class {l}, but the classifier has {classes} classes (0 to {})",
                    classes - 1
                ),
            });
        }
    }
    let mut adversarial = Array4::<f32>::zeros(images.raw_dim());
    let mut samples = Vec::with_capacity(n);
    progress.start(name, n as u64);
    for start in (0..n).step_by(batch_size.max(1)) {
        let end = (start + batch_size.max(1)).min(n);
        let clean = images.slice(s![start..end, .., .., ..]);
        let x = to_tensor(clean, &device);
        let (loss_labels, targeted) = match goal {
            Goal::Untargeted => (&labels[start..end], false),
            Goal::Targeted(t) => (&t[start..end], true),
        };
        let y = labels_tensor(loss_labels, &device);
        let adv = attack_batch(x.clone(), &y, targeted, start)?
            .clamp(0.0, 1.0)
            .detach();
        let clean_pred = predictions(clf, x)?;
        let adv_pred = predictions(clf, adv.clone())?;
        let adv = to_array(adv)?;
        for (i, (c, a)) in clean_pred.iter().zip(&adv_pred).enumerate() {
            let d = &adv.index_axis(Axis(0), i) - &clean.index_axis(Axis(0), i);
            let success = if targeted {
                *a == loss_labels[i]
            } else {
                *a != labels[start + i]
            };
            samples.push(SampleReport {
                success,
                linf: d.iter().fold(0.0f32, |m, v| m.max(v.abs())),
                l2: d.iter().map(|v| v * v).sum::<f32>().sqrt(),
                clean_prediction: *c,
                adversarial_prediction: *a,
            });
        }
        adversarial
            .slice_mut(s![start..end, .., .., ..])
            .assign(&adv);
        progress.advance((end - start) as u64);
    }
    progress.finish();
    Ok(AttackOutput {
        adversarial,
        samples,
    })
}
