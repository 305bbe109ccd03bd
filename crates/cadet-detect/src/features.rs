//! Saved CADet transform features: [`TransformFeatures`] (an `(images, views, d)` array and how each image's
//! views are laid out), and [`FeatureFolder`], the folder the examples' `--save-features DIR` write and
//! `detect` / `validity` read — `x1.npy`, `x2.npy`, one `.npy` per scored set, and the sidecar `layout.json`
//! ([`FeaturesLayout`]) that says how the views are laid out, so that a reader told another layout (e.g.
//! `detect` without `--identity-view`) refuses them instead of reading the un-augmented view as a transform.
//!
//! ```
//! use cadet_core::limits::Limits;
//! use cadet_detect::ViewLayout;
//! use cadet_detect::features::{FeatureFolder, TransformFeatures};
//! use ndarray::Array3;
//!
//! let dir = tempfile::tempdir()?;
//! // 4 images, the un-augmented view then 3 transforms each, 8 features.
//! let folder = FeatureFolder::create(dir.path(), ViewLayout::IdentityFirst, 3)?;
//! folder.save("x2", Array3::ones((4, 4, 8)).view())?;
//! // A set with another number of views than the folder promises is refused.
//! assert!(folder.save("test", Array3::ones((4, 3, 8)).view()).is_err());
//!
//! let read = FeatureFolder::open(dir.path())?.load("x2")?;
//! assert_eq!((read.layout, read.n_trs()), (ViewLayout::IdentityFirst, 3));
//! // A reader told "transforms only" is refused, naming the sidecar.
//! let x2 = dir.path().join("x2.npy");
//! assert!(TransformFeatures::load(&x2, ViewLayout::Transforms, &Limits::default()).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use cadet_core::limits::Limits;
use ndarray::{Array3, ArrayView3};
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
        cadet_core::json::unique_keys(&bytes).map_err(error)?;
        let file: File = serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
        if file.format != FORMAT {
            return Err(error(format!(
                "format {:?}, expected {FORMAT:?}",
                file.format
            )));
        }
        // A count read from a file: bounded as a calibration's (views = n_trs + 1 must not overflow).
        if !(1..=crate::MAX_TRANSFORMS).contains(&file.layout.n_trs) {
            return Err(error(format!(
                "n_trs {}: 1 to {} transforms per image",
                file.layout.n_trs,
                crate::MAX_TRANSFORMS
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

/// Transform features of a set of images, `(images, views, d)`, and how each image's views are laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformFeatures {
    /// The features, `(images, views, d)`.
    pub array: Array3<f32>,
    /// Where each image's un-augmented view sits, if it has one.
    pub layout: ViewLayout,
}

impl TransformFeatures {
    /// Features laid out as `layout`: at least one image, one feature, and one transform per image.
    pub fn new(array: Array3<f32>, layout: ViewLayout) -> Result<Self> {
        let (n, views, d) = array.dim();
        if n == 0 || d == 0 || views < layout.views(1) {
            return Err(Error::ShapeMismatch {
                what: "transform features (images ≥ 1, views, d ≥ 1)",
                expected: vec![n.max(1), layout.views(1), d.max(1)],
                got: vec![n, views, d],
            });
        }
        Ok(Self { array, layout })
    }

    /// Images in the set.
    pub fn n_images(&self) -> usize {
        self.array.dim().0
    }

    /// Transforms per image (the views less the un-augmented one, when the layout has it).
    pub fn n_trs(&self) -> usize {
        self.array.dim().1 - self.layout.views(0)
    }

    /// A view of the array, as the calibration and scoring functions take it.
    pub fn view(&self) -> ArrayView3<'_, f32> {
        self.array.view()
    }

    /// Reads float32 features `(images, views, d)` from the `.npy` file at `path`, its header checked against
    /// `limits` before anything is allocated. `told` is the layout the reader was told (e.g. by a flag): when
    /// the file's folder has a `layout.json`, it must agree, and the file must have the views it promises.
    pub fn load(path: &Path, told: ViewLayout, limits: &Limits) -> Result<Self> {
        let features = Self::load_reference(path, told, limits)?;
        FeaturesLayout::check_views(path, features.array.dim().1)?;
        Ok(features)
    }

    /// As [`load`](Self::load), for a reference X⁽¹⁾, which may have fewer transforms per image than its
    /// folder's sidecar promises for the other sets (a large reference is cheaper with few transforms).
    pub fn load_reference(path: &Path, told: ViewLayout, limits: &Limits) -> Result<Self> {
        FeaturesLayout::check_against(path, told)?;
        Self::read_npy(path, told, limits)
    }

    /// Reads float32 features `(images, views, d)` laid out as `layout` from the `.npy` file at `path`, its
    /// header checked against `limits` first, without consulting a `layout.json` beside it (features from
    /// elsewhere; [`load`](Self::load) checks the sidecar).
    pub fn read_npy(path: &Path, layout: ViewLayout, limits: &Limits) -> Result<Self> {
        let array: Array3<f32> = cadet_data::formats::read_npy(path, limits)
            .map_err(|source| Error::FeaturesRead { source })?;
        // A NaN or an infinity is named with the file here; found later, it was "image 3" of a pooled set.
        if let Some(((image, view, k), v)) = array.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::FeaturesFile {
                path: path.to_path_buf(),
                reason: format!(
                    "image {image}, view {view}, feature {k} is {v}: features must be finite"
                ),
            });
        }
        Self::new(array, layout).map_err(|e| Error::FeaturesFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Writes the array to `path` as `.npy`, atomically (the layout goes in the folder's sidecar: see
    /// [`FeatureFolder`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        Ok(cadet_data::formats::save_npy(&self.array, path)?)
    }
}

/// A folder of saved transform features of one layout: `x1.npy` (the reference X⁽¹⁾), `x2.npy` (X⁽²⁾), one
/// `NAME.npy` per scored set, all `(images, views, d)` float32, and `layout.json`.
#[derive(Debug, Clone)]
pub struct FeatureFolder {
    dir: PathBuf,
    saved: FeaturesLayout,
}

/// The reference X⁽¹⁾'s file stem in a [`FeatureFolder`].
pub const REFERENCE: &str = "x1";

impl FeatureFolder {
    /// Creates `dir` (and its parents) for features laid out as `layout` with `n_trs` transforms per image,
    /// and writes its `layout.json` at once (atomically).
    pub fn create(dir: &Path, layout: ViewLayout, n_trs: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::FeaturesFile {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let saved = FeaturesLayout { layout, n_trs };
        saved.save(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            saved,
        })
    }

    /// Opens a folder written by [`create`](Self::create): an error naming `layout.json` when it has none.
    pub fn open(dir: &Path) -> Result<Self> {
        let saved = FeaturesLayout::load(dir)?.ok_or_else(|| Error::FeaturesFile {
            path: dir.join(LAYOUT_FILE),
            reason:
                "missing: not a folder of saved transform features (save them with the examples' \
                     --save-features: quickstart, reproduce_cifar)"
                    .into(),
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            saved,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What its `layout.json` records.
    pub fn layout(&self) -> FeaturesLayout {
        self.saved
    }

    /// The path of the set `name` (`dir/name.npy`).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.npy"))
    }

    /// Writes the set `name` as `name.npy`: it must have the views per image the folder promises.
    pub fn save(&self, name: &str, features: ArrayView3<'_, f32>) -> Result<PathBuf> {
        self.check_set(name, features.dim().1, true)?;
        self.write(name, features)
    }

    /// Writes the reference X⁽¹⁾ as `x1.npy`: at most the views per image the folder promises.
    pub fn save_reference(&self, features: ArrayView3<'_, f32>) -> Result<PathBuf> {
        self.check_set(REFERENCE, features.dim().1, false)?;
        self.write(REFERENCE, features)
    }

    /// Reads the set `name` (`name.npy`), bounded by the default [`Limits`], with the folder's layout.
    pub fn load(&self, name: &str) -> Result<TransformFeatures> {
        TransformFeatures::load(&self.path(name), self.saved.layout, &Limits::default())
    }

    /// Reads the reference X⁽¹⁾ (`x1.npy`), which may have fewer transforms than the other sets.
    pub fn load_reference(&self) -> Result<TransformFeatures> {
        let path = self.path(REFERENCE);
        let features =
            TransformFeatures::load_reference(&path, self.saved.layout, &Limits::default())?;
        self.check_set(REFERENCE, features.array.dim().1, false)?;
        Ok(features)
    }

    fn check_set(&self, name: &str, views: usize, exact: bool) -> Result<()> {
        let promised = self.saved.layout.views(self.saved.n_trs);
        let (lowest, ok) = (self.saved.layout.views(1), |v: usize| {
            if exact { v == promised } else { v <= promised }
        });
        if views < lowest || !ok(views) {
            return Err(Error::FeaturesFile {
                path: self.path(name),
                reason: format!(
                    "{views} views per image; {} promises {}{promised}",
                    LAYOUT_FILE,
                    if exact { "" } else { "at most " }
                ),
            });
        }
        Ok(())
    }

    fn write(&self, name: &str, features: ArrayView3<'_, f32>) -> Result<PathBuf> {
        let path = self.path(name);
        cadet_data::formats::save_npy(&features, &path)?;
        Ok(path)
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
        // Counts no features have: refused, not an overflow of n_trs + 1.
        for n_trs in ["0", "18446744073709551615", "1e30"] {
            let text = format!(
                "{{\"format\":\"cadet-features\",\"layout\":\"identity_first\",\"n_trs\":{n_trs}}}"
            );
            std::fs::write(dir.path().join(LAYOUT_FILE), text).unwrap();
            assert!(FeaturesLayout::load(dir.path()).is_err(), "{n_trs}");
        }
    }

    #[test]
    fn folder_round_trips_and_checks_views() {
        let dir = tempfile::tempdir().unwrap();
        let folder = FeatureFolder::create(dir.path(), ViewLayout::Transforms, 3).unwrap();
        let x2 = Array3::from_shape_fn((5, 3, 4), |(i, j, k)| (i * 12 + j * 4 + k) as f32);
        folder.save("x2", x2.view()).unwrap();
        // X1 with fewer transforms is a valid reference, not a valid set.
        let x1 = Array3::from_elem((2, 2, 4), 0.5f32);
        folder.save_reference(x1.view()).unwrap();
        assert!(folder.save("test", x1.view()).is_err());
        assert!(
            folder
                .save_reference(Array3::zeros((2, 4, 4)).view())
                .is_err()
        );
        let opened = FeatureFolder::open(dir.path()).unwrap();
        assert_eq!(opened.layout(), folder.layout());
        let read = opened.load("x2").unwrap();
        assert_eq!((read.array, read.layout), (x2, ViewLayout::Transforms));
        let reference = opened.load_reference().unwrap();
        assert_eq!((reference.n_images(), reference.n_trs()), (2, 2));
        // x1 read as a set has fewer views than layout.json promises.
        let e = opened.load("x1").unwrap_err();
        assert!(e.to_string().contains("promises 3 views"), "{e}");
        // A folder without the sidecar is not a features folder.
        let other = tempfile::tempdir().unwrap();
        let e = FeatureFolder::open(other.path()).unwrap_err();
        assert!(e.to_string().contains(LAYOUT_FILE), "{e}");
    }

    #[test]
    fn non_finite_features_are_refused_naming_file_and_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x2.npy");
        let mut x = Array3::<f32>::ones((3, 2, 4));
        x[[1, 0, 2]] = f32::NAN;
        cadet_data::formats::save_npy(&x, &path).unwrap();
        let e = TransformFeatures::read_npy(&path, ViewLayout::Transforms, &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x2.npy") && e.contains("image 1, view 0, feature 2"),
            "{e}"
        );
    }

    #[test]
    fn features_need_one_image_one_transform_and_one_feature() {
        for (shape, layout) in [
            ((0, 3, 4), ViewLayout::Transforms),
            ((2, 3, 0), ViewLayout::Transforms),
            ((2, 0, 4), ViewLayout::Transforms),
            ((2, 1, 4), ViewLayout::IdentityFirst),
        ] {
            assert!(TransformFeatures::new(Array3::zeros(shape), layout).is_err());
        }
        let f =
            TransformFeatures::new(Array3::zeros((2, 3, 4)), ViewLayout::IdentityFirst).unwrap();
        assert_eq!(f.n_trs(), 2);
    }
}
