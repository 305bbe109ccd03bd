//! Detectors from logits alone.

use crate::detector::{ClassifierOutputs, Detector};
use crate::{Error, Result};

use super::logsumexp;

fn rows(input: &ClassifierOutputs<'_>) -> Result<Vec<Vec<f64>>> {
    cadet_core::validate::samples("logits", input.logits, None)?;
    Ok(input
        .logits
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&v| f64::from(v)).collect())
        .collect())
}

/// Maximum softmax probability (Hendrycks & Gimpel, 2017): anomaly score `−max_c softmax(l)_c`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Msp;

impl Detector for Msp {
    type Input<'a> = ClassifierOutputs<'a>;
    fn name(&self) -> &str {
        "MSP"
    }
    fn anomaly_scores(&self, input: ClassifierOutputs<'_>) -> Result<Vec<f64>> {
        Ok(rows(&input)?
            .into_iter()
            .map(|r| {
                let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                -(-logsumexp(r.iter().map(|v| v - max))).exp()
            })
            .collect())
    }
}

/// Maximum logit (Hendrycks et al., 2022): anomaly score `−max_c l_c`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaxLogit;

impl Detector for MaxLogit {
    type Input<'a> = ClassifierOutputs<'a>;
    fn name(&self) -> &str {
        "MaxLogit"
    }
    fn anomaly_scores(&self, input: ClassifierOutputs<'_>) -> Result<Vec<f64>> {
        Ok(rows(&input)?
            .into_iter()
            .map(|r| -r.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            .collect())
    }
}

/// Energy (Liu et al., 2020): anomaly score `E(x) = −T · logsumexp(l / T)`.
#[derive(Debug, Clone, Copy)]
pub struct Energy {
    /// Temperature `T > 0` (1 by default).
    pub temperature: f64,
}

impl Default for Energy {
    fn default() -> Self {
        Self { temperature: 1.0 }
    }
}

impl Detector for Energy {
    type Input<'a> = ClassifierOutputs<'a>;
    fn name(&self) -> &str {
        "Energy"
    }
    fn anomaly_scores(&self, input: ClassifierOutputs<'_>) -> Result<Vec<f64>> {
        let t = self.temperature;
        if !(t > 0.0 && t.is_finite()) {
            return Err(Error::Core(cadet_core::Error::InvalidParameter {
                name: "temperature",
                reason: format!("must be > 0, got {t}"),
            }));
        }
        Ok(rows(&input)?
            .into_iter()
            .map(|r| -t * logsumexp(r.iter().map(|v| v / t)))
            .collect())
    }
}
