//! The calibration artefact: `μ`, `γ`, the sorted calibration scores, the settings and the embedder's identity.
//! A few KB of JSON, versioned, written atomically.

use std::io::Write;
use std::path::Path;

use cadet_core::{Embedder, Progress};
use ndarray::{Array4, ArrayView4};
use serde::{Deserialize, Serialize};

use super::{Cadet, CadetParams, STREAM_SCORE, features};
use crate::stats::{ViewStats, view_stats};
use crate::{Error, Result};

const FORMAT: &str = "cadet-calibration";
const VERSION: u32 = 1;

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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImageScore {
    /// Mean similarity between the image's own transforms.
    pub m_in: f64,
    /// Mean similarity between its transforms and X⁽¹⁾'s.
    pub m_out: f64,
    /// `m_in + γ · m_out`: low means anomalous.
    pub score: f64,
    /// `(#{x' ∈ X⁽²⁾ : score(x') < score} + 1) / (|X⁽²⁾| + 1)`: small means anomalous.
    pub p_value: f64,
}

/// A fitted CADet detector (see [`Cadet::calibrate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    format: String,
    version: u32,
    /// The settings used, reused when scoring.
    pub params: CadetParams,
    /// The embedder calibrated with.
    pub embedder: EmbedderIdentity,
    /// `μ`: mean unit feature of X⁽¹⁾'s transforms.
    pub mu: Vec<f64>,
    /// `γ = sqrt(Var m_in / Var m_out)` over X⁽²⁾.
    pub gamma: f64,
    /// Scores of X⁽²⁾, ascending.
    pub scores: Vec<f64>,
    /// `|X⁽¹⁾|`.
    pub x1_size: usize,
}

impl Calibration {
    /// Fits `γ` and the calibration scores from X⁽²⁾'s statistics.
    pub fn fit(
        params: CadetParams,
        embedder: EmbedderIdentity,
        mu: Vec<f64>,
        x2: &[ViewStats],
        x1_size: usize,
    ) -> Result<Self> {
        let var = |f: fn(&ViewStats) -> f64| {
            let n = x2.len() as f64;
            let mean = x2.iter().map(f).sum::<f64>() / n;
            x2.iter().map(|s| (f(s) - mean).powi(2)).sum::<f64>() / (n - 1.0)
        };
        let (v_in, v_out) = (var(|s| s.m_in), var(|s| s.m_out));
        if !(v_out > 0.0 && v_in.is_finite()) {
            return Err(Error::Degenerate(format!(
                "Var m_out = {v_out:.3e} over X(2): γ is undefined"
            )));
        }
        let gamma = (v_in / v_out).sqrt();
        let mut scores: Vec<f64> = x2.iter().map(|s| s.m_in + gamma * s.m_out).collect();
        scores.sort_by(f64::total_cmp);
        Ok(Self {
            format: FORMAT.into(),
            version: VERSION,
            params,
            embedder,
            mu,
            gamma,
            scores,
            x1_size,
        })
    }

    /// Scores images `(N, C, H, W)` in `[0, 1]`, after checking the embedder is the calibrated one. Image `i` of
    /// the call uses view stream `i` of the scoring streams, so a call is reproducible.
    pub fn score<E: Embedder + ?Sized>(
        &self,
        embedder: &E,
        images: ArrayView4<'_, f32>,
        progress: &dyn Progress,
    ) -> Result<Vec<ImageScore>> {
        self.embedder.verify(embedder)?;
        if images.shape()[1..] != self.embedder.image_shape {
            let mut expected = vec![0];
            expected.extend(self.embedder.image_shape);
            return Err(Error::ShapeMismatch {
                what: "images",
                expected,
                got: images.shape().to_vec(),
            });
        }
        let cadet = Cadet {
            params: self.params.clone(),
        };
        progress.start("CADet scoring", images.dim().0 as u64);
        let feats = features::transform_features(&cadet, embedder, images, STREAM_SCORE, progress)?;
        progress.finish();
        let stats: Vec<ViewStats> = feats
            .outer_iter()
            .map(|img| view_stats(img, &self.mu))
            .collect::<Result<_>>()?;
        Ok(self.score_stats(&stats))
    }

    /// Scores precomputed statistics (e.g. from features computed elsewhere, [`crate::stats_from_features`]).
    pub fn score_stats(&self, stats: &[ViewStats]) -> Vec<ImageScore> {
        stats
            .iter()
            .map(|s| {
                let score = s.m_in + self.gamma * s.m_out;
                ImageScore {
                    m_in: s.m_in,
                    m_out: s.m_out,
                    score,
                    p_value: self.p_value(score),
                }
            })
            .collect()
    }

    /// The p-value of a score (PAPER.md §3).
    pub fn p_value(&self, score: f64) -> f64 {
        let below = self.scores.partition_point(|&s| s < score);
        (below + 1) as f64 / (self.scores.len() + 1) as f64
    }

    /// Writes the calibration as JSON, atomically: a temporary file in the same folder, synced, then renamed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let err = |e: &dyn std::fmt::Display| Error::CalibrationFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(&e))?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| err(&e))?;
        f.write_all(&json)
            .and_then(|_| f.sync_all())
            .map_err(|e| err(&e))?;
        std::fs::rename(&tmp, path).map_err(|e| err(&e))
    }

    /// Reads a calibration written by [`save`](Self::save), checking format, version and consistency.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let err = |reason: String| Error::CalibrationFile {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| err(format!("corrupt: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(err("not a CADet calibration file".into()));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            other => {
                return Err(err(format!(
                    "version {other:?}, this library reads version {VERSION}"
                )));
            }
        }
        let cal: Calibration =
            serde_json::from_value(value).map_err(|e| err(format!("corrupt: {e}")))?;
        cal.check().map_err(|e| err(e.to_string()))?;
        Ok(cal)
    }

    fn check(&self) -> Result<()> {
        let bad = |r: &str| Err(Error::Degenerate(r.to_string()));
        if self.mu.len() != self.embedder.dim || self.embedder.probe.len() != self.embedder.dim {
            return bad("μ or the probe does not match the feature dimension");
        }
        if !(self.gamma.is_finite() && self.gamma >= 0.0) || self.mu.iter().any(|v| !v.is_finite())
        {
            return bad("γ or μ is not finite");
        }
        if self.scores.is_empty()
            || self.scores.iter().any(|v| !v.is_finite())
            || self.scores.windows(2).any(|w| w[0] > w[1])
        {
            return bad("calibration scores missing, not finite or not sorted");
        }
        self.params.clone().check().map(|_| ())
    }
}

impl Cadet {
    /// Calibration from features computed elsewhere: X⁽¹⁾ `(m, n_trs, d)` and X⁽²⁾ `(m', n_trs, d)`; the
    /// embedder's identity is recorded as given.
    pub fn calibrate_features(
        &self,
        identity: EmbedderIdentity,
        x1: ndarray::ArrayView3<'_, f32>,
        x2: ndarray::ArrayView3<'_, f32>,
        progress: &dyn Progress,
    ) -> Result<Calibration> {
        let mu = crate::stats::mean_unit_feature(x1)?;
        progress.start("CADet calibration from features", x2.dim().0 as u64);
        let stats: Vec<ViewStats> = x2
            .outer_iter()
            .map(|img| view_stats(img, &mu))
            .collect::<Result<_>>()?;
        progress.finish();
        Calibration::fit(self.params.clone(), identity, mu, &stats, x1.dim().0)
    }
}
