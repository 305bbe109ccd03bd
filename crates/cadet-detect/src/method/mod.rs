//! Detection methods beyond the paper's single score, as composable parts: [`Statistic`]s of an image's transform features against a stored [`Reference`] (X⁽¹⁾), and a
//! [`Combination`] of them fitted on X⁽²⁾ into a score and a valid p-value. [`DetectionMethod::paper`] — `m_in + γ·m_out`
//! — is the default and exactly the paper's.

mod combination;
mod statistic;

pub use combination::{Combination, DetectionMethod, FittedCombination, Tail};
pub use statistic::{
    ImageStatistics, MAX_REFERENCE_IMAGES, Reference, Statistic, ViewLayout, image_statistics,
};
