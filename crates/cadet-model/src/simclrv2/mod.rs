//! SimCLRv2's own ResNets (Chen et al. 2020, "Big Self-Supervised Models are Strong Semi-Supervised Learners"),
//! in the layout of the community PyTorch converter of the released checkpoints (`SimCLRv2-Pytorch`'s
//! `resnet.py`): depths 50 / 101 / 152 / 200 with bottleneck blocks (and an 18-layer variant with basic blocks),
//! width multipliers, and selective kernels.
//!
//! Where they differ from torchvision's: with selective kernels (`sk_ratio > 0`) the stem is three 3 × 3
//! convolutions, every bottleneck's 3 × 3 convolution is a selective kernel (two branches mixed by a softmax
//! over a squeezed descriptor), and the projection shortcut pads by one on the bottom and right, average-pools
//! 2 × 2 with the stage's stride, then applies a 1 × 1 convolution (ResNet-D); every stage's first block has a
//! projection shortcut, even at stride 1. Batch norm uses ε = 1e-5 everywhere. The released checkpoints expect
//! images in `[0, 1]` without mean/std normalisation ([`Normalization::simclrv2`](crate::Normalization::simclrv2)).

mod blocks;
mod from_tf;
mod import;
mod layout;
mod tf_bundle;

use std::path::Path;

use burn::prelude::*;

pub use blocks::SimClrV2ResNet;
pub use import::load_simclrv2;

use crate::layers::{MAX_BASE_WIDTH, MAX_HEAD_WIDTH, MAX_WIDTH_MULTIPLIER, check_model_size};
use crate::{Error, Result};

/// The 13 released SimCLRv2 checkpoints, by the names the converter gives them.
pub const RELEASED_SIMCLRV2: [&str; 13] = [
    "r50_1x_sk0",
    "r50_1x_sk1",
    "r50_2x_sk0",
    "r50_2x_sk1",
    "r101_1x_sk0",
    "r101_1x_sk1",
    "r101_2x_sk0",
    "r101_2x_sk1",
    "r152_1x_sk0",
    "r152_1x_sk1",
    "r152_2x_sk0",
    "r152_2x_sk1",
    "r152_3x_sk1",
];

/// The selective-kernel ratio of the released `_sk1` checkpoints.
pub const SK_RATIO: f64 = 0.0625;

/// Configuration of a [`SimClrV2ResNet`]. [`SimClrV2Config::from_name`] gives the released architectures.
#[derive(Config, Debug, PartialEq)]
pub struct SimClrV2Config {
    /// 18 (basic blocks), 50, 101, 152 or 200 (bottleneck blocks).
    pub depth: usize,
    /// Width multiplier `k` (the released checkpoints: 1, 2, 3).
    #[config(default = 1)]
    pub width_multiplier: usize,
    /// Selective-kernel ratio: 0 turns selective kernels off (`_sk0`), the released `_sk1` use 0.0625.
    #[config(default = 0.0)]
    pub sk_ratio: f64,
    /// Least width of a selective kernel's squeezed descriptor (the reference's `min_dim`).
    #[config(default = 32)]
    pub sk_min_width: usize,
    /// Width of the first stage before the multiplier: 64 in every released checkpoint. Smaller values give the
    /// tiny networks of tests and CPU experiments.
    #[config(default = 64)]
    pub base_width: usize,
    /// Classes of the supervised linear head `fc` (1000 in the released checkpoints); none for an encoder.
    #[config(default = "None")]
    pub num_classes: Option<usize>,
}

impl SimClrV2Config {
    /// The architecture of a released checkpoint from its name (`r50_1x_sk1`), found anywhere in `name` (so a
    /// file name such as `r152_3x_sk1_ema.safetensors` works): `r<depth>_<k>x_sk<0|1>`.
    pub fn from_name(name: &str) -> Result<Self> {
        parse_name(name)
            .map(|(depth, k, sk, base)| {
                Self::new(depth)
                    .with_width_multiplier(k)
                    .with_sk_ratio(if sk { SK_RATIO } else { 0.0 })
                    .with_base_width(base.unwrap_or(64))
            })
            .ok_or_else(|| Error::InvalidConfig {
                name: "arch",
                reason: format!(
                    "`{name}` names no SimCLRv2 architecture (expected r<depth>_<k>x_sk<0|1>, e.g. r50_1x_sk1)"
                ),
            })
    }

    /// The architecture named exactly, as a flag gives it: `r<depth>_<k>x_sk<0|1>`, optionally followed by
    /// `_w<base width>` (what [`Self::name`] prints). Unlike [`Self::from_name`], nothing else may surround it:
    /// a typo (`r50_1x_sk10`, `r50_1x_sk1x`) is an error, not another network.
    ///
    /// ```
    /// use cadet_model::SimClrV2Config;
    ///
    /// let c = SimClrV2Config::from_arch("r50_2x_sk1")?;
    /// assert_eq!((c.depth, c.width_multiplier, c.base_width), (50, 2, 64));
    /// assert_eq!(SimClrV2Config::from_arch("r18_1x_sk0_w4")?.base_width, 4);
    /// for typo in ["r50_1x_sk10", "r50_1x_sk1x", "r50_1x_sk1.safetensors", "r50_1x_sk1_w", "x_r50_1x_sk1"] {
    ///     assert!(SimClrV2Config::from_arch(typo).is_err(), "{typo}");
    /// }
    /// # Ok::<(), cadet_model::Error>(())
    /// ```
    pub fn from_arch(arch: &str) -> Result<Self> {
        let invalid = || Error::InvalidConfig {
            name: "arch",
            reason: format!(
                "`{arch}` is no SimCLRv2 architecture: expected exactly r<depth>_<k>x_sk<0|1>, optionally \
                 _w<base width> (e.g. r50_1x_sk1, r18_1x_sk1_w4)"
            ),
        };
        let (depth, k, sk, rest) =
            parse_prefix(arch.strip_prefix('r').ok_or_else(invalid)?).ok_or_else(invalid)?;
        let mut config = Self::new(depth)
            .with_width_multiplier(k)
            .with_sk_ratio(if sk { SK_RATIO } else { 0.0 });
        match rest {
            "" => {}
            width => {
                let digits = width.strip_prefix("_w").ok_or_else(invalid)?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                config.base_width = digits.parse().map_err(|_| invalid())?;
                if config.base_width == 0 {
                    return Err(invalid());
                }
            }
        }
        Ok(config)
    }

    /// The architecture of a converted checkpoint: the `arch` entry of its safetensors metadata (read exactly,
    /// [`Self::from_arch`]) and `base_width` when present, else its file name ([`Self::from_name`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let header = crate::safetensors_header::read(path)?;
        let mut config = match header.metadata.get("arch") {
            Some(arch) => Self::from_arch(arch).map_err(|e| Error::Weights {
                path: path.to_path_buf(),
                reason: format!("metadata arch: {e}"),
            })?,
            None => Self::from_name(
                &path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )?,
        };
        if let Some(base) = Self::metadata_base_width(path, &header.metadata)? {
            // An `arch` that names its base width (`_w4`) and a `base_width` that says another: the file
            // contradicts itself (hostile pass 17), and either reading could be the wrong network.
            let named = header.metadata.get("arch").filter(|a| a.contains("_w"));
            if let Some(arch) = named
                && config.base_width != base
            {
                return Err(Error::Weights {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the metadata's arch {arch} says base width {}, its base_width says {base}",
                        config.base_width
                    ),
                });
            }
            config.base_width = base;
        }
        config.checked_for(path)
    }

    /// The architecture `arch` ([`Self::from_arch`]) for the checkpoint at `path`: depth, multiplier and
    /// selective kernels from `arch`; the base width from `arch`'s `_w<width>` when it has one, else from the
    /// file's metadata, else 64. A flag that names the architecture does not drop the file's base width.
    pub fn from_file_as(path: impl AsRef<Path>, arch: &str) -> Result<Self> {
        let path = path.as_ref();
        let mut config = Self::from_arch(arch)?;
        if !arch.contains("_w") {
            let header = crate::safetensors_header::read(path)?;
            if let Some(base) = Self::metadata_base_width(path, &header.metadata)? {
                config.base_width = base;
            }
        }
        config.checked_for(path)
    }

    /// This configuration, read for the file at `path`, when it can be built (its sizes checked as
    /// [`Self::init`] checks them): an error naming the file otherwise (a base width of 0 or 100,000 in a
    /// file's metadata was reported as a bare `base_width` setting).
    fn checked_for(self, path: &Path) -> Result<Self> {
        let params = self
            .num_params()
            .and_then(|p| Ok(p + self.num_running_stats()?))
            .and_then(|p| check_model_size("arch", &self.name(), p as u128));
        match params {
            Ok(()) => Ok(self),
            Err(e) => Err(Error::Weights {
                path: path.to_path_buf(),
                reason: format!(
                    "the architecture its metadata or name gives (depth {}, width multiplier {}, base width {}) \
                     cannot be built: {e}",
                    self.depth, self.width_multiplier, self.base_width
                ),
            }),
        }
    }

    fn metadata_base_width(
        path: &Path,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<usize>> {
        metadata
            .get("base_width")
            .map(|base| {
                base.parse().map_err(|_| Error::Weights {
                    path: path.to_path_buf(),
                    reason: format!("metadata base_width `{base}` is not a width"),
                })
            })
            .transpose()
    }

    /// The converter's name of this architecture (`r50_1x_sk1`); base widths other than 64 are appended
    /// (`r50_1x_sk1_w4`). For display: [`Self::from_name`] reads back depth, multiplier and whether selective
    /// kernels are on (at the released ratio), not the base width or another ratio.
    pub fn name(&self) -> String {
        let sk = u8::from(self.sk_ratio > 0.0);
        let name = format!("r{}_{}x_sk{sk}", self.depth, self.width_multiplier);
        match self.base_width {
            64 => name,
            b => format!("{name}_w{b}"),
        }
    }

    /// Width of the pooled features: `2048 · k` for the bottleneck depths at base width 64, `512 · k` for 18.
    pub fn feature_dim(&self) -> usize {
        let expansion = if self.depth == 18 { 1 } else { 4 };
        8 * self.base_width * self.width_multiplier * expansion
    }

    /// Trainable parameters of the encoder (with `fc` when it has classes), counted from the architecture
    /// without building it: the reference's `sum(p.numel() for p in model.parameters())`.
    pub fn num_params(&self) -> Result<usize> {
        Ok(layout::encoder(self)?
            .iter()
            .filter(|t| t.trainable)
            .map(|t| t.shape.iter().product::<usize>())
            .sum())
    }

    /// Batch-norm running means and variances of the encoder: Burn's `Module::num_params` counts them with the
    /// parameters (PyTorch keeps them as buffers).
    pub fn num_running_stats(&self) -> Result<usize> {
        Ok(layout::encoder(self)?
            .iter()
            .filter(|t| !t.trainable)
            .map(|t| t.shape.iter().product::<usize>())
            .sum())
    }

    /// Trainable parameters of SimCLRv2's contrastive head on this encoder (hidden width = feature width,
    /// `output` wide): the reference's `ContrastiveHead(channels_out, out_dim=output)`.
    pub fn head_num_params(&self, output: usize) -> usize {
        layout::head(self.feature_dim(), output)
            .iter()
            .filter(|t| t.trainable)
            .map(|t| t.shape.iter().product::<usize>())
            .sum()
    }

    /// Stage depths and whether blocks are bottlenecks, after checking every setting.
    fn plan(&self) -> Result<([usize; 4], bool)> {
        let invalid = |name, reason: String| Err(Error::InvalidConfig { name, reason });
        let stages = match self.depth {
            18 => ([2, 2, 2, 2], false),
            50 => ([3, 4, 6, 3], true),
            101 => ([3, 4, 23, 3], true),
            152 => ([3, 8, 36, 3], true),
            200 => ([3, 24, 36, 3], true),
            d => return invalid("depth", format!("18, 50, 101, 152 or 200, got {d}")),
        };
        // Settings may come from file names and metadata: bound them before any product of widths (the released
        // checkpoints use base width 64 and multipliers 1 to 3). Each is blamed by its own name.
        for (name, value, max) in [
            ("base_width", self.base_width, MAX_BASE_WIDTH),
            (
                "width_multiplier",
                self.width_multiplier,
                MAX_WIDTH_MULTIPLIER,
            ),
        ] {
            if !(1..=max).contains(&value) {
                return invalid(name, format!("1 to {max}, got {value}"));
            }
        }
        if self.num_classes.is_some_and(|c| c > MAX_HEAD_WIDTH) {
            return invalid(
                "num_classes",
                format!(
                    "at most {MAX_HEAD_WIDTH} classes, got {:?}",
                    self.num_classes
                ),
            );
        }
        // The stem's convolutions are half as wide as the first stage.
        if !(self.base_width * self.width_multiplier).is_multiple_of(2) {
            return invalid(
                "base_width",
                format!(
                    "base width × multiplier must be even (the stem is half as wide), got {} × {}",
                    self.base_width, self.width_multiplier
                ),
            );
        }
        if !(0.0..1.0).contains(&self.sk_ratio) || self.sk_min_width == 0 {
            return invalid(
                "sk_ratio",
                format!(
                    "a ratio in [0, 1) and a least width ≥ 1, got {} and {}",
                    self.sk_ratio, self.sk_min_width
                ),
            );
        }
        if self.num_classes == Some(0) {
            return invalid("num_classes", "at least 1 class".into());
        }
        Ok(stages)
    }

    fn selective(&self) -> bool {
        self.sk_ratio > 0.0
    }

    /// The selective kernel's squeezed width for a block of width `width`: `max(⌊width · ratio⌋, min)`.
    fn sk_width(&self, width: usize) -> usize {
        ((width as f64 * self.sk_ratio) as usize).max(self.sk_min_width)
    }

    /// Builds the network on `device`, after checking every setting and that its parameters fit
    /// [`Limits::max_alloc_bytes`](cadet_core::limits::Limits) ([`Error::InvalidConfig`]).
    pub fn init(&self, device: &Device) -> Result<SimClrV2ResNet> {
        let params = self.num_params()? + self.num_running_stats()?;
        // Named for the whole architecture: depth, width multiplier and base width together set the size.
        check_model_size("arch", &self.name(), params as u128)?;
        blocks::build(self, device)
    }
}

/// `(depth, k, sk)` of the first `r<depth>_<k>x_sk<0|1>` in `name`.
fn parse_name(name: &str) -> Option<(usize, usize, bool, Option<usize>)> {
    let ends = |rest: &str| matches!(rest.bytes().next(), None | Some(b'_' | b'.' | b'-' | b'/'));
    name.match_indices('r').find_map(|(at, _)| {
        let (depth, k, sk, rest) = parse_prefix(&name[at + 1..])?;
        // In a file name the architecture ends at a separator (`r50_1x_sk1_ema.safetensors`): `sk10` or `sk1x`
        // are no architecture, not `sk1` followed by noise. A base width may follow (`r50_1x_sk1_w2/`, what
        // `name` prints for widths other than 64).
        if !ends(rest) {
            return None;
        }
        let width = rest.strip_prefix("_w").and_then(|w| {
            let digits = w.bytes().take_while(u8::is_ascii_digit).count();
            (digits > 0 && ends(&w[digits..])).then(|| w[..digits].parse().ok())?
        });
        Some((depth, k, sk, width))
    })
}

/// `<depth>_<k>x_sk<0|1>` at the start of `text` (after the `r`), and what follows it.
fn parse_prefix(text: &str) -> Option<(usize, usize, bool, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let depth = text[..digits].parse().ok()?;
    let rest = text[digits..].strip_prefix('_')?;
    let k_digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let k = rest[..k_digits].parse().ok()?;
    let rest = rest[k_digits..].strip_prefix("x_sk")?;
    let sk = match rest.bytes().next()? {
        b'0' => false,
        b'1' => true,
        _ => return None,
    };
    Some((depth, k, sk, &rest[1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A base width from a file's metadata that cannot be built is an error naming the file (it was a bare
    /// `base_width` setting, raised when the network was built); `_w0` in an architecture is no architecture.
    #[test]
    fn unbuildable_architectures_of_a_file_name_it() {
        let dir = tempfile::tempdir().unwrap();
        for width in ["0", "100000", "18446744073709551615"] {
            let header =
                format!(r#"{{"__metadata__":{{"arch":"r18_1x_sk0","base_width":"{width}"}}}}"#);
            let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
            bytes.extend_from_slice(header.as_bytes());
            let path = dir.path().join(format!("w{width}.safetensors"));
            std::fs::write(&path, bytes).unwrap();
            for e in [
                SimClrV2Config::from_file(&path).unwrap_err(),
                SimClrV2Config::from_file_as(&path, "r18_1x_sk0").unwrap_err(),
            ] {
                let e = e.to_string();
                assert!(
                    e.contains(&format!("w{width}.safetensors")) && e.contains("base width"),
                    "{e}"
                );
            }
        }
        let e = SimClrV2Config::from_arch("r18_1x_sk0_w0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("arch"), "{e}");
    }

    #[test]
    fn names_parse_and_print_back() {
        for name in RELEASED_SIMCLRV2 {
            assert_eq!(SimClrV2Config::from_name(name).unwrap().name(), name);
        }
        let c = SimClrV2Config::from_name("weights/r152_3x_sk1_ema.safetensors").unwrap();
        assert_eq!(
            (c.depth, c.width_multiplier, c.sk_ratio),
            (152, 3, SK_RATIO)
        );
        assert_eq!(c.feature_dim(), 6144);
        // A base width in the name, as `name` prints it, is read back (it was ignored: 64 was used).
        let w = SimClrV2Config::from_name("tf/r50_1x_sk1_w2/model.ckpt-1").unwrap();
        assert_eq!((w.base_width, w.name()), (2, "r50_1x_sk1_w2".to_string()));
        assert_eq!(
            SimClrV2Config::from_name("r18_1x_sk0_w")
                .unwrap()
                .base_width,
            64
        );
        for bad in [
            "resnet50",
            "r50_x_sk1",
            "r50_1x_sk2",
            "r_1x_sk0",
            "",
            "r50_1x_sk10",
            "r50_1x_sk1x",
            "r50_2x_sk0junk",
        ] {
            assert!(
                matches!(
                    SimClrV2Config::from_name(bad),
                    Err(Error::InvalidConfig { name: "arch", .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn invalid_settings_are_refused() {
        let device = Device::flex();
        for config in [
            SimClrV2Config::new(34),
            SimClrV2Config::new(50).with_width_multiplier(0),
            SimClrV2Config::new(50).with_base_width(3),
            SimClrV2Config::new(50).with_sk_ratio(1.5),
            SimClrV2Config::new(50).with_num_classes(Some(0)),
        ] {
            assert!(matches!(
                config.init(&device),
                Err(Error::InvalidConfig { .. })
            ));
        }
    }
}
