//! The calibration artefact: the settings and method, the embedder's identity, the reference (`μ`, and X⁽¹⁾'s
//! per-image features for local statistics) and the combination fitted on X⁽²⁾ (weights, sorted scores, X⁽²⁾'s
//! statistics). Versioned JSON, written atomically; files of versions 1 (the paper's method) and 2 (no
//! un-augmented view) still load.

use std::path::Path;

use cadet_core::{Embedder, Progress};
use ndarray::{Array4, ArrayView3, ArrayView4};
use serde::{Deserialize, Serialize};

use super::{Cadet, CadetParams, Stream, features};
use crate::method::{
    DetectionMethod, FittedCombination, ImageStatistics, Reference, ViewLayout, image_statistics,
};
use crate::{Error, Result};

const FORMAT: &str = "cadet-calibration";
/// The latest version. Version 3 adds the un-augmented view (the layout in the settings, the reference's views),
/// written only when used: a calibration without the view is written as version 2, byte for byte what the
/// previous release wrote (so it still reads it), and one with the view as version 3, which a version-2 reader
/// rejects rather than take the view for a transform.
const VERSION: u32 = 3;

/// The version a calibration is written as: 3 when it uses the un-augmented view, else 2.
fn format_version(params: &CadetParams, reference: &Reference) -> u32 {
    if params.layout.is_transforms_only() && !reference.holds_identity_units() {
        2
    } else {
        VERSION
    }
}

/// What identifies the embedder a calibration was made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedderIdentity {
    /// [`Embedder::name`].
    pub name: String,
    /// Feature dimension.
    pub dim: usize,
    /// `(C, H, W)` of the calibration images.
    pub image_shape: [usize; 3],
    /// Features of a fixed probe image (see [`probe_image`](Self::probe_image)): a behavioural fingerprint that
    /// catches different weights behind the same name.
    pub probe: Vec<f32>,
}

impl EmbedderIdentity {
    /// Records `embedder`'s identity for images of `image_shape`.
    pub fn of<E: Embedder + ?Sized>(embedder: &E, image_shape: [usize; 3]) -> Result<Self> {
        let probe = embedder.embed(Self::probe_image(image_shape).view())?;
        Ok(Self {
            name: embedder.name(),
            dim: embedder.dim(),
            image_shape,
            probe: probe.iter().copied().collect(),
        })
    }

    /// A fixed smooth image with structure in every channel, `(1, C, H, W)`.
    pub fn probe_image([c, h, w]: [usize; 3]) -> Array4<f32> {
        Array4::from_shape_fn((1, c, h, w), |(_, ch, y, x)| {
            let (u, v) = (x as f32 / w.max(1) as f32, y as f32 / h.max(1) as f32);
            0.5 + 0.45
                * ((7.0 * u + 3.0 * v + ch as f32 * 1.3).sin()
                    * (5.0 * v - 2.0 * u + ch as f32).cos())
        })
    }

    /// Checks that `embedder` is the one recorded: same name, dimension and probe features (to a relative
    /// `1e-3`, which tolerates another backend's rounding but not other weights).
    pub fn verify<E: Embedder + ?Sized>(&self, embedder: &E) -> Result<()> {
        let mismatch = |reason: String| Err(Error::EmbedderMismatch(reason));
        if embedder.name() != self.name {
            return mismatch(format!(
                "calibrated with `{}`, given `{}`",
                self.name,
                embedder.name()
            ));
        }
        if embedder.dim() != self.dim {
            return mismatch(format!(
                "calibrated with dimension {}, given {}",
                self.dim,
                embedder.dim()
            ));
        }
        let probe = embedder.embed(Self::probe_image(self.image_shape).view())?;
        let scale = self
            .probe
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()))
            .max(1e-12);
        let worst = probe
            .iter()
            .zip(&self.probe)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        if probe.len() != self.probe.len() || worst > 1e-3 * scale {
            return mismatch(format!(
                "the probe image's features differ by {worst:.3e} (scale {scale:.3e}): other weights?"
            ));
        }
        Ok(())
    }
}

/// The score of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageScore {
    /// Mean similarity between the image's own transforms (always computed, whatever the method).
    pub m_in: f64,
    /// Mean similarity between its transforms and X⁽¹⁾'s (always computed).
    pub m_out: f64,
    /// The method's statistics, in the order of [`DetectionMethod::statistics`].
    pub statistics: Vec<f64>,
    /// The combined score, low = anomalous: `m_in + γ · m_out` for the paper's method; a weighted sum, or
    /// `−T` for the conformal combinations ([`crate::method`]).
    pub score: f64,
    /// The p-value, small = anomalous; for the paper's method
    /// `(#{x' ∈ X⁽²⁾ : score(x') ≤ score} + 1) / (|X⁽²⁾| + 1)` with γ refitted on X⁽²⁾ and this image (full
    /// conformal: exact at every |X⁽²⁾|, see [`crate::method`]).
    pub p_value: f64,
}

/// A fitted CADet detector (see [`Cadet::calibrate`]): the settings and method, the embedder's identity, the
/// reference (X⁽¹⁾) and the combination fitted on X⁽²⁾. Read-only: every field is checked when it is built or
/// loaded, by every way in — [`load`](Self::load), [`from_bytes`](Self::from_bytes),
/// [`read_from`](Self::read_from) and serde's `Deserialize` (which goes through `from_bytes`' checks: format,
/// version, checksum, consistency), so an edited file is refused whichever way it is read.
///
/// Serialising (serde, [`to_bytes`](Self::to_bytes), [`save`](Self::save)) writes the file's form, whose
/// `checksum` field is the SHA-256 (hex) of the same JSON with that field empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    format: String,
    version: u32,
    params: CadetParams,
    embedder: Option<EmbedderIdentity>,
    reference: Reference,
    combination: FittedCombination,
}

/// The stored form, borrowed, in the file's field order (the checksum covers these bytes).
#[derive(Serialize)]
struct StoredRef<'a> {
    format: &'a str,
    version: u32,
    params: &'a CadetParams,
    embedder: &'a Option<EmbedderIdentity>,
    reference: &'a Reference,
    combination: &'a FittedCombination,
    checksum: &'a str,
}

impl Serialize for Calibration {
    /// The file's form, checksum included, so that what serde writes serde (or [`Calibration::from_bytes`])
    /// reads back.
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        let checksum = self.checksum().map_err(serde::ser::Error::custom)?;
        self.stored(&checksum).serialize(serializer)
    }
}

/// The stored form of versions 2 and 3, deserialised as written before any check; only
/// [`Calibration::from_value`] turns it into a `Calibration`.
#[derive(Deserialize)]
struct StoredCalibration {
    format: String,
    version: u32,
    params: CadetParams,
    embedder: Option<EmbedderIdentity>,
    reference: Reference,
    combination: FittedCombination,
    #[serde(default)]
    checksum: String,
}

impl<'de> Deserialize<'de> for Calibration {
    /// Deserialises through the checks of [`Calibration::from_bytes`]: a value that fails them is an error.
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Calibration::from_value(value).map_err(|(reason, _)| serde::de::Error::custom(reason))
    }
}

/// Where calibration bytes that did not come from a file are said to come from, in errors.
const IN_MEMORY: &str = "<calibration bytes>";

/// A calibration-file error with its cause kept as the source.
fn file_error(
    path: &Path,
    what: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::CalibrationFile {
        path: path.to_path_buf(),
        reason: format!("{what}: {source}"),
        source: Some(Box::new(source)),
    }
}

/// The first top-level part of a stored calibration that does not deserialise on its own, if one does not.
fn failing_part(value: &serde_json::Value) -> Option<&'static str> {
    fn fails<T: serde::de::DeserializeOwned>(value: &serde_json::Value, key: &str) -> bool {
        value
            .get(key)
            .is_some_and(|v| serde_json::from_value::<T>(v.clone()).is_err())
    }
    [
        (
            "params",
            fails::<CadetParams> as fn(&serde_json::Value, &str) -> bool,
        ),
        ("embedder", fails::<Option<EmbedderIdentity>>),
        ("reference", fails::<Reference>),
        ("combination", fails::<FittedCombination>),
    ]
    .into_iter()
    .find(|(key, fails)| fails(value, key))
    .map(|(key, _)| key)
}

/// Version 1 of the file (the paper's method only).
#[derive(Deserialize)]
struct CalibrationV1 {
    params: CadetParams,
    embedder: EmbedderIdentity,
    mu: Vec<f64>,
    gamma: f64,
    scores: Vec<f64>,
    x1_size: usize,
}

impl Calibration {
    /// Fits the method's combination from X⁽²⁾'s statistics against `reference`.
    pub fn fit(
        params: CadetParams,
        embedder: Option<EmbedderIdentity>,
        reference: Reference,
        x2: &[ImageStatistics],
    ) -> Result<Self> {
        let rows: Vec<Vec<f64>> = x2.iter().map(|s| s.values.clone()).collect();
        let combination = FittedCombination::fit(&params.method, rows)?;
        let cal = Self {
            format: FORMAT.into(),
            version: format_version(&params, &reference),
            params,
            embedder,
            reference,
            combination,
        };
        cal.check()?;
        Ok(cal)
    }

    /// The settings (transforms, pipeline, seed, method).
    pub fn params(&self) -> &CadetParams {
        &self.params
    }

    /// The same calibration embedding `batch_images` images per call to the embedder when scoring (results do
    /// not depend on it).
    pub fn with_batch_images(mut self, batch_images: usize) -> Result<Self> {
        self.params = self.params.batch_images(batch_images).check()?.params;
        Ok(self)
    }

    /// The detection method.
    pub fn method(&self) -> &DetectionMethod {
        &self.params.method
    }

    /// The embedder calibrated with (`None` for a calibration from features with no identity given).
    pub fn embedder(&self) -> Option<&EmbedderIdentity> {
        self.embedder.as_ref()
    }

    /// The reference: `μ` and, for local statistics, X⁽¹⁾'s per-image features.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// `|X⁽¹⁾|`.
    pub fn x1_size(&self) -> usize {
        self.reference.len()
    }

    /// `|X⁽²⁾|`.
    pub fn x2_size(&self) -> usize {
        self.combination.calibration_size()
    }

    /// How many images of `features` (laid out as the calibration's settings say) are images of the reference
    /// X⁽¹⁾: their mean unit feature equals one the reference keeps, to the rounding of sums taken in another
    /// order (relative 1e-5: transform views reordered change the last bits of an `f32` mean). 0 when the
    /// reference keeps no
    /// per-image features (the paper's method needs none). A set scored against its own reference is as
    /// invalid as one scored against its own X⁽²⁾ ([`Self::x2_images_among`]).
    pub fn x1_images_among(&self, features: ArrayView3<'_, f32>) -> Result<usize> {
        let Some(kept) = self.reference.image_means() else {
            return Ok(0);
        };
        let set = Reference::from_features(features, self.params.layout(), true)?;
        let Some(means) = set.image_means() else {
            return Ok(0);
        };
        let rows = |a: ndarray::ArrayView2<'_, f32>| -> Vec<Vec<f64>> {
            a.outer_iter()
                .map(|row| row.iter().map(|&v| f64::from(v)).collect())
                .collect()
        };
        let tolerance = super::same_images::F32_TOLERANCE;
        Ok(super::same_images::count_matches(
            &rows(kept),
            &rows(means),
            tolerance,
        ))
    }

    /// How many of the scored images are images of X⁽²⁾ itself: their statistics equal those the calibration
    /// keeps of an X⁽²⁾ image, to the rounding of sums taken in another order (relative 1e-10: the same images
    /// with their transform views reordered match; features of other images, or of the same images through
    /// other transforms, do not). A p-value is only valid for images outside X⁽²⁾: a set scored against its own
    /// calibration images is rejected at a rate that promises nothing. 0 for version-1 files, which keep no
    /// statistics of X⁽²⁾.
    ///
    /// ```
    /// # use cadet_detect::Cadet;
    /// # use ndarray::Array3;
    /// let f = |seed: f32| Array3::from_shape_fn((30, 4, 8), |(i, t, k)| {
    ///     1.0 + ((i * 13 + t * 7 + k * 3) as f32 * (0.37 + seed)).sin().abs()
    /// });
    /// let (x1, x2, other) = (f(0.0), f(0.11), f(0.23));
    /// let cal = Cadet::paper(32).n_trs(4).check()?.calibrate_features(None, x1.view(), x2.view(), &cadet_core::NoProgress)?;
    /// assert_eq!(cal.x2_images_among(&cal.score_features(x2.view())?), 30);
    /// assert_eq!(cal.x2_images_among(&cal.score_features(other.view())?), 0);
    /// # Ok::<(), cadet_detect::Error>(())
    /// ```
    pub fn x2_images_among(&self, scores: &[ImageScore]) -> usize {
        let statistics: Vec<Vec<f64>> = scores.iter().map(|s| s.statistics.clone()).collect();
        let tolerance = super::same_images::F64_TOLERANCE;
        super::same_images::count_matches(&self.combination.x2, &statistics, tolerance)
    }

    /// The weight `γ` of the second statistic in a weighted sum (the paper's `γ`), `None` for other methods.
    pub fn gamma(&self) -> Option<f64> {
        self.combination.weights().get(1).copied()
    }

    /// The fitted combination.
    pub fn combination(&self) -> &FittedCombination {
        &self.combination
    }

    /// X⁽²⁾'s combined scores, ascending (low = anomalous).
    pub fn calibration_scores(&self) -> Vec<f64> {
        self.combination.calibration_scores()
    }

    /// Scores images `(N, C, H, W)` in `[0, 1]`, after checking the embedder is the calibrated one. Each image's
    /// views are drawn from a stream derived from its pixels, so an image gets the same score alone, in any
    /// batch and in any order.
    ///
    /// The check embeds a probe image on every call; a service scoring many batches checks once with
    /// [`bind`](Self::bind) and scores through the returned [`Scorer`].
    pub fn score<E: Embedder + ?Sized>(
        &self,
        embedder: &E,
        images: ArrayView4<'_, f32>,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageScore>> {
        self.bind(embedder)?.score(images, progress)
    }

    /// Checks once that `embedder` is the calibrated one (name, dimension, probe features) and returns a
    /// [`Scorer`] that scores with it without checking again.
    pub fn bind<'a, E: Embedder + ?Sized>(&'a self, embedder: &'a E) -> Result<Scorer<'a, E>> {
        let Some(identity) = &self.embedder else {
            return Err(Error::EmbedderMismatch(
                "this calibration was made from features with no embedder identity: score features \
                 (score_features), or calibrate with the embedder"
                    .into(),
            ));
        };
        identity.verify(embedder)?;
        Ok(Scorer {
            calibration: self,
            identity,
            embedder,
        })
    }

    /// Scores features computed elsewhere, laid out as the calibration's ([`CadetParams::layout`]):
    /// `(N, n_trs, d)`, or `(N, 1 + n_trs, d)` with the un-augmented view first.
    pub fn score_features(&self, features: ArrayView3<'_, f32>) -> Result<Vec<ImageScore>> {
        let (n, views, d) = features.dim();
        let layout = self.params.layout;
        if views != layout.views(self.params.n_trs) || d != self.reference.dim() {
            return Err(Error::ShapeMismatch {
                what: match layout {
                    ViewLayout::Transforms => "transform features (images, n_trs, d)",
                    ViewLayout::IdentityFirst => {
                        "features, the un-augmented view first (images, 1 + n_trs, d)"
                    }
                },
                expected: vec![n, layout.views(self.params.n_trs), self.reference.dim()],
                got: vec![n, views, d],
            });
        }
        let stats = image_statistics(
            features,
            layout,
            &self.reference,
            &self.params.method.statistics,
        )?;
        Ok(self.score_statistics(&stats))
    }

    /// Scores precomputed statistics (from [`image_statistics`] with this calibration's reference and method).
    pub fn score_statistics(&self, stats: &[ImageStatistics]) -> Vec<ImageScore> {
        let rows: Vec<Vec<f64>> = stats.iter().map(|s| s.values.clone()).collect();
        stats
            .iter()
            .zip(self.combination.score(&rows))
            .map(|(s, (score, p_value))| ImageScore {
                m_in: s.paper.m_in,
                m_out: s.paper.m_out,
                statistics: s.values.clone(),
                score,
                p_value,
            })
            .collect()
    }

    /// Writes the calibration as JSON, atomically ([`cadet_core::io::write_atomic`]: a uniquely named temporary
    /// file in the same folder, synced, then renamed; an unrelated `*.tmp` file is never touched).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = self
            .to_json_with_checksum()
            .map_err(|e| file_error(path, "cannot serialise", e))?;
        cadet_core::io::write_atomic(path, &json).map_err(|e| file_error(path, "cannot write", e))
    }

    /// Reads a calibration written by [`save`](Self::save) (versions 2 and 3; or version 1: the paper's method),
    /// checking format, version, checksum and consistency. Only a regular file of at most
    /// [`Limits::max_file_bytes`](cadet_core::limits::Limits) is read.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let max = cadet_core::limits::Limits::default().max_file_bytes;
        let bytes = cadet_core::limits::read_capped(path, max)
            .map_err(|e| file_error(path, "cannot read", e))?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            Error::CalibrationFile { reason, source, .. } => Error::CalibrationFile {
                path: path.to_path_buf(),
                reason,
                source,
            },
            other => other,
        })
    }

    /// The file's bytes (what [`save`](Self::save) writes), for a service that keeps calibrations in a database
    /// or an object store.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.to_json_with_checksum()
            .map_err(|e| file_error(Path::new(IN_MEMORY), "cannot serialise", e))
    }

    /// A calibration from the bytes of a file written by [`save`](Self::save) or [`to_bytes`](Self::to_bytes),
    /// with every check [`load`](Self::load) makes (errors name the source `<calibration bytes>`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let path = Path::new(IN_MEMORY);
        // A key given twice would leave its value to serde's choice (the last), not the file's.
        cadet_core::json::unique_keys(bytes).map_err(|reason| Error::CalibrationFile {
            path: path.to_path_buf(),
            reason: format!("corrupt: {reason}"),
            source: None,
        })?;
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| file_error(path, "corrupt", e))?;
        Self::from_value(value).map_err(|(reason, source)| Error::CalibrationFile {
            path: path.to_path_buf(),
            reason,
            source,
        })
    }

    /// Reads a calibration from `reader` (at most [`Limits::max_file_bytes`](cadet_core::limits::Limits)
    /// bytes) with the checks of [`from_bytes`](Self::from_bytes).
    pub fn read_from(reader: impl std::io::Read) -> Result<Self> {
        use std::io::Read;
        let max = cadet_core::limits::Limits::default().max_file_bytes;
        let mut bytes = Vec::new();
        let path = Path::new(IN_MEMORY);
        reader
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| file_error(path, "cannot read", e))?;
        if bytes.len() as u64 > max {
            return Err(Error::CalibrationFile {
                path: path.to_path_buf(),
                reason: format!("more than {max} bytes (Limits::max_file_bytes)"),
                source: None,
            });
        }
        Self::from_bytes(&bytes)
    }

    /// Writes the file's bytes to `writer` (see [`to_bytes`](Self::to_bytes)).
    pub fn write_to(&self, mut writer: impl std::io::Write) -> Result<()> {
        let bytes = self.to_bytes()?;
        writer
            .write_all(&bytes)
            .map_err(|e| file_error(Path::new(IN_MEMORY), "cannot write", e))
    }

    /// The one way from stored JSON to a `Calibration`: format, version, checksum and consistency checked.
    #[allow(clippy::type_complexity)]
    fn from_value(
        value: serde_json::Value,
    ) -> std::result::Result<Self, (String, Option<Box<dyn std::error::Error + Send + Sync>>)> {
        let corrupt = |e: serde_json::Error| (format!("corrupt: {e}"), Some(Box::new(e) as _));
        let err = |reason: String| (reason, None);
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(err("not a CADet calibration file".into()));
        }
        let cal = match value.get("version").and_then(|v| v.as_u64()) {
            Some(1) => {
                // Version 1 has its own fields (an embedder always, γ, μ and the scores): say which layout the
                // file failed, not only serde's field message.
                let v1: CalibrationV1 = serde_json::from_value(value).map_err(|e| {
                    (
                        format!("corrupt: says version 1 but lacks that version's fields ({e})"),
                        Some(Box::new(e) as _),
                    )
                })?;
                Self {
                    format: FORMAT.into(),
                    version: 2,
                    params: v1.params,
                    embedder: Some(v1.embedder),
                    reference: Reference::from_mu(v1.mu, v1.x1_size),
                    combination: FittedCombination::legacy_paper(v1.gamma, v1.scores)
                        .map_err(|e| (format!("inconsistent: {e}"), Some(Box::new(e) as _)))?,
                }
            }
            Some(v) if v == 2 || v == u64::from(VERSION) => {
                // serde's message names a type, not where ("invalid type: unit variant"): the part that fails
                // alone is named with it.
                let part = failing_part(&value);
                let stored: StoredCalibration = serde_json::from_value(value).map_err(|e| {
                    let (reason, source) = corrupt(e);
                    match part {
                        Some(part) => (format!("{reason} (in `{part}`)"), source),
                        None => (reason, source),
                    }
                })?;
                let mut cal = Self {
                    format: stored.format,
                    version: stored.version,
                    params: stored.params,
                    embedder: stored.embedder,
                    reference: stored.reference,
                    combination: stored.combination,
                };
                // Version 3's new fields are not written when unused, so a version-2 file's content (and so
                // its checksum) is what this version writes for it with `version: 2`.
                let computed = cal.checksum().map_err(corrupt)?;
                if !stored.checksum.eq_ignore_ascii_case(&computed) {
                    return Err(err(format!(
                        "checksum mismatch (stored {}, content {computed}): the file was changed or damaged \
                         after it was written",
                        stored.checksum
                    )));
                }
                let version = format_version(&cal.params, &cal.reference);
                if v == 2 && version != 2 {
                    return Err(err(
                        "version 2 with an un-augmented view, which only version 3 has".into(),
                    ));
                }
                cal.version = version;
                cal
            }
            Some(other) => {
                return Err(err(format!(
                    "version {other}, this library reads versions 1 to {VERSION}"
                )));
            }
            None => {
                return Err(err(
                    "the version field is missing or not a non-negative integer".into(),
                ));
            }
        };
        cal.check()
            .map_err(|e| (format!("inconsistent: {e}"), Some(Box::new(e) as _)))?;
        Ok(cal)
    }

    /// SHA-256 (hex) of the compact JSON of `self` with an empty checksum field (the content; floats round-trip
    /// exactly, so the same calibration always serialises to the same bytes).
    fn checksum(&self) -> serde_json::Result<String> {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(serde_json::to_vec(&self.stored(""))?);
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    fn stored<'a>(&'a self, checksum: &'a str) -> StoredRef<'a> {
        StoredRef {
            format: &self.format,
            version: self.version,
            params: &self.params,
            embedder: &self.embedder,
            reference: &self.reference,
            combination: &self.combination,
            checksum,
        }
    }

    fn to_json_with_checksum(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&self.stored(&self.checksum()?))
    }

    fn check(&self) -> Result<()> {
        let bad = |r: &str| Err(Error::Degenerate(r.to_string()));
        self.params.clone().check()?;
        self.reference.check()?;
        if self.params.layout.is_transforms_only() && self.reference.holds_identity_units() {
            return bad(
                "the reference holds un-augmented views but the settings' features have none",
            );
        }
        if let Some(e) = &self.embedder
            && (self.reference.dim() != e.dim || e.probe.len() != e.dim)
        {
            return bad("μ or the probe does not match the feature dimension");
        }
        for &s in &self.params.method.statistics {
            self.reference.supports(s)?;
        }
        // A method that compares with no single reference image keeps none: per-image features in its file are
        // another method's calibration relabelled (hostile pass 17: a local-sum file read as the paper's method
        // flagged 70% of in-distribution images at α = 5%).
        if !self.params.method.needs_reference_images() && self.reference.image_means().is_some() {
            return bad(
                "the reference holds per-image features, which this method never keeps: the file is another \
                 method's calibration with its method changed",
            );
        }
        self.combination.check(&self.params.method)
    }
}

impl Cadet {
    /// Calibration from features computed elsewhere: X⁽¹⁾ `(m, n_trs', d)` and X⁽²⁾ `(m', n_trs, d)` (each with
    /// one more view first, the un-augmented one, with [`CadetParams::identity_view`]). `identity` records the
    /// embedder when known (needed to score images with [`Calibration::score`]); without it the calibration
    /// scores features only.
    pub fn calibrate_features(
        &self,
        identity: Option<EmbedderIdentity>,
        x1: ndarray::ArrayView3<'_, f32>,
        x2: ndarray::ArrayView3<'_, f32>,
        progress: &dyn Progress,
    ) -> Result<Calibration> {
        let layout = self.params.layout;
        if x2.dim().1 != layout.views(self.params.n_trs) {
            return Err(Error::ShapeMismatch {
                what: "X(2) features (images, views, d): n_trs transforms, 1 + n_trs with the un-augmented view",
                expected: vec![x2.dim().0, layout.views(self.params.n_trs), x2.dim().2],
                got: x2.shape().to_vec(),
            });
        }
        let mut reference =
            Reference::from_features(x1, layout, self.params.method.needs_reference_images())?;
        // The reference's un-augmented views only when a statistic compares with them (|X⁽¹⁾| × d floats).
        if !self
            .params
            .method
            .statistics
            .iter()
            .any(|s| matches!(s, crate::Statistic::IdentityCosine { .. }))
        {
            reference.drop_identity_units();
        }
        progress.start("CADet calibration from features", x2.dim().0 as u64);
        let stats = image_statistics(x2, layout, &reference, &self.params.method.statistics)?;
        progress.finish();
        Calibration::fit(self.params.clone(), identity, reference, &stats)
    }
}

/// A calibration bound to an embedder checked once ([`Calibration::bind`]): scores batch after batch with no
/// further probe.
#[derive(Debug)]
pub struct Scorer<'a, E: ?Sized> {
    calibration: &'a Calibration,
    identity: &'a EmbedderIdentity,
    embedder: &'a E,
}

impl<E: Embedder + ?Sized> Scorer<'_, E> {
    /// Scores images `(N, C, H, W)` in `[0, 1]` as [`Calibration::score`] does.
    pub fn score(
        &self,
        images: ArrayView4<'_, f32>,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageScore>> {
        if images.shape()[1..] != self.identity.image_shape {
            let mut expected = vec![0];
            expected.extend(self.identity.image_shape);
            return Err(Error::ShapeMismatch {
                what: "images",
                expected,
                got: images.shape().to_vec(),
            });
        }
        let cadet = Cadet {
            params: self.calibration.params.clone(),
        };
        progress.start("CADet scoring", images.dim().0 as u64);
        let feats =
            features::transform_features(&cadet, self.embedder, images, Stream::Scored, progress)?;
        progress.finish();
        self.calibration.score_features(feats.view())
    }
}
