//! The sidecar `layout.json` written beside saved CADet transform features (e.g. by the examples'
//! `--save-features DIR`): how the views of each image are laid out in the `.npy` files, so that a reader told
//! another layout (e.g. `detect` without `--identity-view`) refuses them instead of reading the un-augmented view
//! as a transform.
//!
//! ```
//! use cadet_detect::ViewLayout;
//! use cadet_detect::features_layout::FeaturesLayout;
//!
//! let dir = std::env::temp_dir().join(format!("cadet-layout-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! FeaturesLayout { layout: ViewLayout::IdentityFirst, n_trs: 20 }.save(&dir)?;
//! let saved = FeaturesLayout::load(&dir)?.expect("written above");
//! assert_eq!(saved.layout.views(saved.n_trs), 21);
//! // A reader told "transforms only" is refused, naming the sidecar.
//! assert!(FeaturesLayout::check_against(&dir.join("x2.npy"), ViewLayout::Transforms).is_err());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result, ViewLayout};

/// The sidecar's file name, in the features' folder.
pub const LAYOUT_FILE: &str = "layout.json";

const FORMAT: &str = "cadet-features";

/// What `layout.json` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeaturesLayout {
    /// The views' layout of every `.npy` file in the folder.
    pub layout: ViewLayout,
    /// Transforms per image of the scored sets and X⁽²⁾ (X⁽¹⁾ may have fewer).
    pub n_trs: usize,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    #[serde(flatten)]
    layout: FeaturesLayout,
}

impl FeaturesLayout {
    /// Writes `dir/layout.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(LAYOUT_FILE);
        let error = |reason: String| Error::FeaturesFile {
            path: path.clone(),
            reason,
        };
        let file = File {
            format: FORMAT.into(),
            layout: *self,
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| error(e.to_string()))?;
        cadet_core::io::write_atomic(&path, &json).map_err(|e| error(e.to_string()))
    }

    /// Reads `dir/layout.json`: `None` when the folder has none (features from elsewhere), an error when it is
    /// there but unreadable or not a layout file.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(LAYOUT_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let error = |reason: String| Error::FeaturesFile {
            path: path.clone(),
            reason,
        };
        let max = cadet_core::limits::Limits::default().max_file_bytes;
        let bytes =
            cadet_core::limits::read_capped(&path, max).map_err(|e| error(e.to_string()))?;
        let file: File = serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
        if file.format != FORMAT {
            return Err(error(format!(
                "format {:?}, expected {FORMAT:?}",
                file.format
            )));
        }
        Ok(Some(file.layout))
    }

    /// The sidecar of the folder holding `features` (a `.npy` file) and its path, if there is one.
    pub fn beside(features: &Path) -> Result<Option<(Self, PathBuf)>> {
        let dir = features.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        Ok(Self::load(dir)?.map(|l| (l, dir.join(LAYOUT_FILE))))
    }

    /// The sidecar of the folder holding `features` (a `.npy` file), checked against the layout a reader was
    /// told: an error naming the sidecar and the flag when they disagree; `Ok` when they agree or there is no
    /// sidecar.
    pub fn check_against(features: &Path, told: ViewLayout) -> Result<()> {
        match Self::beside(features)? {
            Some((saved, path)) if saved.layout != told => Err(Error::FeaturesFile {
                path,
                reason: match saved.layout {
                    ViewLayout::IdentityFirst => format!(
                        "the features here hold each image's un-augmented view first, then {} transforms: \
                         pass --identity-view",
                        saved.n_trs
                    ),
                    ViewLayout::Transforms => {
                        "the features here hold transforms only: leave out --identity-view".into()
                    }
                },
            }),
            _ => Ok(()),
        }
    }

    /// Checks that `features` (a `.npy` file of X⁽²⁾ or a scored set) has the views per image its sidecar
    /// promises (`1 + n_trs` or `n_trs`); `Ok` when there is no sidecar.
    pub fn check_views(features: &Path, views: usize) -> Result<()> {
        match Self::beside(features)? {
            Some((saved, path)) if saved.layout.views(saved.n_trs) != views => {
                Err(Error::FeaturesFile {
                    path,
                    reason: format!(
                        "promises {} views per image ({}{} transforms), {} has {views}",
                        saved.layout.views(saved.n_trs),
                        if saved.layout == ViewLayout::IdentityFirst {
                            "the un-augmented view and "
                        } else {
                            ""
                        },
                        saved.n_trs,
                        features.display()
                    ),
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips_and_disagreement_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let x1 = dir.path().join("x1.npy");
        // No sidecar: whatever the reader was told stands.
        assert!(FeaturesLayout::check_against(&x1, ViewLayout::Transforms).is_ok());
        let saved = FeaturesLayout {
            layout: ViewLayout::IdentityFirst,
            n_trs: 20,
        };
        saved.save(dir.path()).unwrap();
        assert_eq!(FeaturesLayout::load(dir.path()).unwrap(), Some(saved));
        assert!(FeaturesLayout::check_against(&x1, ViewLayout::IdentityFirst).is_ok());
        let e = FeaturesLayout::check_against(&x1, ViewLayout::Transforms).unwrap_err();
        assert!(e.to_string().contains("--identity-view"), "{e}");
        assert!(FeaturesLayout::check_views(&x1, 21).is_ok());
        let e = FeaturesLayout::check_views(&x1, 20).unwrap_err();
        assert!(e.to_string().contains("promises 21 views"), "{e}");
        std::fs::write(dir.path().join(LAYOUT_FILE), b"{\"format\":\"other\"}").unwrap();
        assert!(FeaturesLayout::load(dir.path()).is_err());
    }
}
