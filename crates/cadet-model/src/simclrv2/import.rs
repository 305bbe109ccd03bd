//! Loading the converter's checkpoints saved as safetensors: the encoder's state-dict keys unchanged
//! (`net.0.0.weight`, …, `fc.bias`) and the contrastive head's under `head.` (`head.layers.0.weight`, …).
//!
//! The file is checked against the architecture's layout before any weight is applied, so that a missing,
//! unknown or mis-shaped tensor is a typed error naming the key; then Burn's safetensors store applies it with
//! the key mapping below.

use std::collections::BTreeSet;
use std::path::Path;

use burn::prelude::*;
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};

use super::layout::{self, TensorSpec};
use super::{SimClrV2Config, SimClrV2ResNet};
use crate::resnet::{apply_error, escape_regex, shorten};
use crate::safetensors_header::{self, Header};
use crate::{
    Encoder, Error, FeatureModel, ImportReport, ProjectionHead, ProjectionHeadConfig, Result,
    SimClr,
};

/// Width of the released checkpoints' projections.
const HEAD_OUTPUT: usize = 128;

/// Loads a released SimCLRv2 checkpoint (converted to safetensors, see `docs/guide.md`) as a [`SimClr`]
/// model: its encoder and contrastive head (128 wide). The architecture comes from the file's `arch` metadata
/// or its name ([`SimClrV2Config::from_file`]); the supervised head `fc` is left aside.
pub fn load_simclrv2(path: impl AsRef<Path>, device: &Device) -> Result<(SimClr, ImportReport)> {
    let path = path.as_ref();
    SimClrV2Config::from_file(path)?
        .with_num_classes(None)
        .load_simclr(path, "", device)
}

impl SimClrV2Config {
    /// Builds the encoder on `device` and loads its weights (and `fc`'s when the configuration has classes)
    /// from the converter's layout in `path`. `prefix` is stripped from every key first (`""` for the layout
    /// as described; e.g. `"resnet."` or `"module.encoder."` for other flattenings). The contrastive head's
    /// tensors (`head.…`) may be present and are left aside.
    ///
    /// Errors: [`Error::MissingTensor`], [`Error::ShapeMismatch`], [`Error::UnexpectedTensor`] and
    /// [`Error::NonFiniteWeight`] name the first offending key; [`Error::Weights`] for an unreadable file.
    pub fn load(
        &self,
        path: impl AsRef<Path>,
        prefix: &str,
        device: &Device,
    ) -> Result<(SimClrV2ResNet, ImportReport)> {
        let path = path.as_ref();
        let header = read_header(path)?;
        let expected = layout::encoder(self)?;
        let with_fc = self.num_classes.is_some();
        let ignored = check(path, &header, prefix, &expected, |key| {
            key.starts_with("head.") || (!with_fc && key.starts_with("fc."))
        })?;
        let (net, loaded) = self.load_checked(path, prefix, device)?;
        Ok((
            net,
            ImportReport {
                loaded,
                skipped: ignored,
            },
        ))
    }

    /// Builds the encoder and applies the weights of `path`, already [`check`]ed.
    fn load_checked(
        &self,
        path: &Path,
        prefix: &str,
        device: &Device,
    ) -> Result<(SimClrV2ResNet, usize)> {
        let mut store = store(path, prefix);
        for (from, to) in encoder_keys(self.selective()) {
            store = store.with_key_remapping(from, to);
        }
        let mut net = self.init(device)?;
        let loaded = apply(path, &mut net, &mut store)?;
        Ok((net, loaded))
    }

    /// Builds a [`SimClr`] model with this encoder and SimCLRv2's contrastive head (hidden width = feature
    /// width, 128 wide) and loads both from `path` ([`Self::load`]; the head's keys are `<prefix>head.…`).
    pub fn load_simclr(
        &self,
        path: impl AsRef<Path>,
        prefix: &str,
        device: &Device,
    ) -> Result<(SimClr, ImportReport)> {
        let path = path.as_ref();
        let header = read_header(path)?;
        let mut expected = layout::encoder(self)?;
        let head_specs = layout::head(self.feature_dim(), HEAD_OUTPUT);
        expected.extend(head_specs.into_iter().map(|t| TensorSpec {
            key: format!("head.{}", t.key),
            ..t
        }));
        let with_fc = self.num_classes.is_some();
        let ignored = check(path, &header, prefix, &expected, |key| {
            !with_fc && key.starts_with("fc.")
        })?;
        let (encoder, loaded) = self.load_checked(path, prefix, device)?;
        let mut head: ProjectionHead = ProjectionHeadConfig::new(encoder.feature_dim())
            .with_hidden(encoder.feature_dim())
            .with_output(HEAD_OUTPUT)
            .init(device);
        let mut store = store(path, &format!("{prefix}head."));
        // `layers` is the reference's Sequential: Linear, BN, ReLU, Linear, BN, ReLU, Linear, BN.
        for (i, name) in [
            (0, "fc1"),
            (1, "bn1"),
            (3, "fc2"),
            (4, "bn2"),
            (6, "fc3"),
            (7, "bn3"),
        ] {
            store = store.with_key_remapping(format!(r"^layers\.{i}\."), format!("{name}."));
        }
        let loaded = loaded + apply(path, &mut head, &mut store)?;
        let model = SimClr {
            encoder: Encoder::SimClrV2(encoder),
            head,
        };
        Ok((
            model,
            ImportReport {
                loaded,
                skipped: ignored,
            },
        ))
    }
}

fn read_header(path: &Path) -> Result<Header> {
    if !path.is_file() {
        return Err(Error::Weights {
            path: path.to_path_buf(),
            reason: "no such file".into(),
        });
    }
    safetensors_header::read(path)
}

/// Checks the file's tensors against `expected` (keys without `prefix`): every expected tensor present with its
/// shape and finite values, every other tensor under the prefix a batch-norm counter or `ignorable`; tensors
/// outside a non-empty prefix are left aside. Returns the file keys left aside.
fn check(
    path: &Path,
    header: &Header,
    prefix: &str,
    expected: &[TensorSpec],
    ignorable: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    for spec in expected {
        let key = format!("{prefix}{}", spec.key);
        match header.tensors.get(&key) {
            None => {
                return Err(Error::MissingTensor {
                    path: path.to_path_buf(),
                    key,
                });
            }
            Some(got) if got.shape != spec.shape => {
                return Err(Error::ShapeMismatch {
                    path: path.to_path_buf(),
                    key,
                    expected: spec.shape.clone(),
                    got: got.shape.clone(),
                });
            }
            Some(_) => {}
        }
    }
    let known: BTreeSet<&str> = expected.iter().map(|t| t.key.as_str()).collect();
    let mut ignored = Vec::new();
    for key in header.tensors.keys() {
        let stripped = key.strip_prefix(prefix);
        match stripped {
            Some(k) if known.contains(k) => {}
            Some(k) if k.ends_with(".num_batches_tracked") || ignorable(k) => {
                ignored.push(key.clone());
            }
            // Outside the prefix: another part of a flattened checkpoint (e.g. `head.` beside `resnet.`).
            None if !prefix.is_empty() => ignored.push(key.clone()),
            _ => {
                return Err(Error::UnexpectedTensor {
                    path: path.to_path_buf(),
                    key: key.clone(),
                });
            }
        }
    }
    // What will be applied must be finite.
    safetensors_header::check_finite(path, header, |key| {
        key.strip_prefix(prefix).is_some_and(|k| known.contains(k))
    })?;
    Ok(ignored)
}

fn store(path: &Path, prefix: &str) -> SafetensorsStore {
    let store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        // Burn names the variant of the block enum in its paths (`layer1.0.Bottleneck.conv1`); the file does not.
        .skip_enum_variants(true)
        .allow_partial(true)
        .validate(false);
    if prefix.is_empty() {
        store
    } else {
        store.with_key_remapping(format!("^{}", escape_regex(prefix)), "")
    }
}

/// Applies `store` to `module`; after [`check`] nothing should be missing or fail, so anything that does is
/// reported as it stands.
fn apply<M: ModuleSnapshot>(
    path: &Path,
    module: &mut M,
    store: &mut SafetensorsStore,
) -> Result<usize> {
    let err = |reason: String| Error::Weights {
        path: path.to_path_buf(),
        reason,
    };
    let applied = module
        .load_from(store)
        .map_err(|e| err(shorten(e.to_string())))?;
    if let Some(e) = apply_error(path, &applied) {
        return Err(e);
    }
    Ok(applied.applied.len())
}

/// The converter's encoder keys → this crate's module paths, applied in order.
fn encoder_keys(selective: bool) -> Vec<(&'static str, &'static str)> {
    let mut map = vec![
        // Stem: `Sequential(conv, BatchNormRelu, conv, BatchNormRelu, conv, BatchNormRelu, MaxPool)`.
        (r"^net\.0\.0\.", "stem.conv1."),
        (r"^net\.0\.1\.0\.", "stem.bn1."),
        (r"^net\.0\.2\.", "stem.conv2."),
        (r"^net\.0\.3\.0\.", "stem.bn2."),
        (r"^net\.0\.4\.", "stem.conv3."),
        (r"^net\.0\.5\.0\.", "stem.bn3."),
        (r"^net\.([1-4])\.blocks\.([0-9]+)\.", "layer$1.$2."),
        (
            r"\.projection\.shortcut\.(2\.)?weight$",
            ".projection.conv.weight",
        ),
        (r"\.projection\.bn\.0\.", ".projection.bn."),
        (r"\.net\.0\.", ".conv1."),
        (r"\.net\.1\.0\.", ".bn1."),
    ];
    if selective {
        map.extend([
            (r"\.net\.2\.main_conv\.0\.", ".sk.conv."),
            (r"\.net\.2\.main_conv\.1\.0\.", ".sk.bn."),
            (r"\.net\.2\.mixing_conv\.0\.", ".sk.mixing.conv1."),
            (r"\.net\.2\.mixing_conv\.1\.0\.", ".sk.mixing.bn1."),
            (r"\.net\.2\.mixing_conv\.2\.", ".sk.mixing.conv2."),
            // Basic blocks (18 layers) keep plain 3 × 3 convolutions: `net.2` / `net.3.0` below.
            (r"^(layer[1-4]\.[0-9]+)\.net\.2\.", "$1.conv2."),
            (r"\.net\.3\.0\.", ".bn2."),
            (r"\.net\.3\.", ".conv3."),
            (r"\.net\.4\.0\.", ".bn3."),
        ]);
    } else {
        map.extend([
            (r"\.net\.2\.", ".conv2."),
            (r"\.net\.3\.0\.", ".bn2."),
            (r"\.net\.4\.", ".conv3."),
            (r"\.net\.5\.0\.", ".bn3."),
        ]);
    }
    map
}
