//! Several detection methods side by side on the same transform features: the methods the examples compare
//! (the paper's first, the recommended one last, as the headline), which of them a reference set and a view
//! layout allow, and their calibrations and scores, at the cost of one set of forward passes. Tables and
//! pictures of the results are the report crate's business (`cadet-report`); the choices are made here.

use ndarray::ArrayView3;

use crate::method::{DetectionMethod, Statistic};
use crate::{Cadet, Calibration, EmbedderIdentity, ImageScore};

/// The method the examples headline and its row name in [`compared_methods`]: Fisher's combination of local
/// `m_in` (k = 50, two-sided), local cos and identity cos each at k = 1 and k = 10, and view agreement
/// ([`DetectionMethod::fisher_views`]), whatever `k` the other rows use; it needs the un-augmented view. The
/// family (one statistic per thing an anomaly changes, nearness at the two scales of the previous headline) and
/// the combination were chosen on the quickstart's held-out shapes and six synthetic CIFAR-10 anomaly sets, not
/// on the sets the examples report (docs/results.md).
pub fn headline_method() -> (String, DetectionMethod) {
    (
        // At most 60 characters: the table's name column is cut there, and the `*` marks the headline.
        "Fisher: local m_in, local/identity cos, agreement *".into(),
        DetectionMethod::recommended(),
    )
}

/// The headline method's scores among `results` ([`headline_method`]); `None` when it was left out (a reference
/// of fewer than 50 images, or features without the un-augmented view).
pub fn headline_scores(results: &[MethodScores]) -> Option<&MethodScores> {
    let (name, _) = headline_method();
    results.iter().find(|r| r.name == name)
}

/// The CADet methods the examples compare: the paper's first, then the extensions with `k` nearest reference
/// images.
pub fn compared_methods(k: usize) -> Vec<(String, DetectionMethod)> {
    vec![
        (
            "CADet, paper: m_in + γ·m_out".into(),
            DetectionMethod::paper(),
        ),
        (
            format!("local m_out (k={k}) alone"),
            DetectionMethod::single(Statistic::LocalMOut { k }),
        ),
        (
            format!("m_in + γ·local m_out (k={k})"),
            DetectionMethod::local_sum(k),
        ),
        (
            format!("Fisher: m_in 2-sided, local m_out (k={k})"),
            DetectionMethod::fisher_local(k),
        ),
        (
            format!("local cos (k={k}) alone"),
            DetectionMethod::single(Statistic::LocalCosine { k }),
        ),
        (
            format!("Fisher: m_in 2-sided, local cos (k={k})"),
            DetectionMethod::fisher_cosine(k),
        ),
        (
            format!("min p: m_in 2-sided, local cos (k={k})"),
            DetectionMethod::min_p_cosine(k),
        ),
        (
            format!("min p: local m_in (k=10) 2-sided, local cos (k={k})"),
            DetectionMethod::min_p_local_m_in_cosine(10, k),
        ),
        (
            format!("Fisher: local m_in (k=10) 2-sided, local cos (k={k})"),
            DetectionMethod::fisher_local_m_in_cosine(10, k),
        ),
        (
            "min p: local m_in (k=50) 2-sided, local cos (k=1, k=10)".into(),
            DetectionMethod::min_p_two_scale(50, 1, 10),
        ),
        (
            "feature norm alone".into(),
            DetectionMethod::single(Statistic::FeatureNorm),
        ),
        (
            "view agreement alone".into(),
            DetectionMethod::single(Statistic::ViewAgreement),
        ),
        (
            "identity cos (k=10) alone".into(),
            DetectionMethod::single(Statistic::IdentityCosine { k: 10 }),
        ),
        headline_method(),
    ]
}

/// Which of `methods` a reference of `x1_size` images and features with (`with_view`) or without the
/// un-augmented view allow.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The methods that can be calibrated, in the order given.
    pub usable: Vec<(String, DetectionMethod)>,
    /// Methods averaging more reference images than X⁽¹⁾ holds, with the number they need.
    pub too_small: Vec<(String, usize)>,
    /// Methods needing the un-augmented view the features lack (and not already too small).
    pub no_view: Vec<String>,
}

impl Selection {
    /// One line per reason methods were left out (none when every method is usable): the methods averaging
    /// more reference images than `x1_size`, with what each needs; those needing the un-augmented view.
    pub fn left_out(&self, x1_size: usize) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.too_small.is_empty() {
            let names: Vec<String> = self
                .too_small
                .iter()
                .map(|(n, needed)| format!("{n} (needs {needed})"))
                .collect();
            lines.push(format!(
                "Left out, |X1| = {x1_size} being too small: {}",
                names.join("; ")
            ));
        }
        if !self.no_view.is_empty() {
            lines.push(format!(
                "Left out, the features having no un-augmented view: {}",
                self.no_view.join("; ")
            ));
        }
        lines
    }
}

/// Sorts `methods` into those a reference of `x1_size` images and the features' layout allow, and the others
/// with the reason ([`DetectionMethod::reference_images_needed`], [`DetectionMethod::needs_identity_view`]).
pub fn select(
    methods: Vec<(String, DetectionMethod)>,
    x1_size: usize,
    with_view: bool,
) -> Selection {
    let mut selection = Selection {
        usable: Vec::new(),
        too_small: Vec::new(),
        no_view: Vec::new(),
    };
    for (name, method) in methods {
        let needed = method.reference_images_needed();
        if needed > x1_size {
            selection.too_small.push((name, needed));
        } else if !with_view && method.needs_identity_view() {
            selection.no_view.push(name);
        } else {
            selection.usable.push((name, method));
        }
    }
    selection
}

/// CADet methods calibrated on the same transform features and their scores of each set.
#[derive(Debug, Clone)]
pub struct MethodScores {
    /// The row name.
    pub name: String,
    /// The calibration.
    pub calibration: Calibration,
    /// Scores per set, in the order given.
    pub scores: Vec<Vec<ImageScore>>,
}

/// Calibrates each method of `methods` with `base`'s settings on the same X⁽¹⁾ / X⁽²⁾ transform features and
/// scores each set of transform features (the in-distribution test set first): the paper's method and the
/// extensions side by side, at the cost of one set of forward passes.
pub fn score_methods(
    base: &Cadet,
    methods: &[(String, DetectionMethod)],
    identity: Option<&EmbedderIdentity>,
    x1: ArrayView3<'_, f32>,
    x2: ArrayView3<'_, f32>,
    sets: &[ArrayView3<'_, f32>],
) -> crate::Result<Vec<MethodScores>> {
    methods
        .iter()
        .map(|(name, method)| {
            let cadet = base.settings().clone().method(method.clone()).check()?;
            let calibration =
                cadet.calibrate_features(identity.cloned(), x1, x2, &cadet_core::NoProgress)?;
            let scores = sets
                .iter()
                .map(|s| calibration.score_features(*s))
                .collect::<Result<_, _>>()?;
            Ok(MethodScores {
                name: name.clone(),
                calibration,
                scores,
            })
        })
        .collect()
}
