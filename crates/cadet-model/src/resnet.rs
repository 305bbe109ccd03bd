//! ResNet-18/34/50 in torchvision's layout (v1.5 bottleneck: stride on the 3 × 3 convolution), with the ImageNet
//! stem (7 × 7 stride 2 and max-pool) or the CIFAR stem (3 × 3 stride 1, no max-pool), a width multiplier, and
//! an optional classifier.

use std::path::Path;

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::activation::relu;

use crate::layers::{
    MAX_BASE_WIDTH, MAX_HEAD_WIDTH, MAX_WIDTH_MULTIPLIER, bn, check_model_size, conv, conv_forward,
};
use crate::shard::{self, ShardNorm};
use crate::{Error, FeatureModel, Result};

/// Configuration of a [`ResNet`].
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// 18, 34 or 50.
    pub depth: usize,
    /// CIFAR stem (3 × 3, stride 1, no max-pool) for small images; ImageNet stem otherwise.
    #[config(default = false)]
    pub cifar_stem: bool,
    /// Width multiplier: stage widths are `64·k, 128·k, 256·k, 512·k` (SimCLRv2's ResNet-50 (2×) is `k = 2`).
    #[config(default = 1)]
    pub width_multiplier: usize,
    /// Width of the stem and first stage before the multiplier: torchvision's 64. Smaller values (16, 32) give
    /// narrow networks that train on a CPU in minutes.
    #[config(default = 64)]
    pub base_width: usize,
    /// Classes of a linear classifier on the pooled features; none for an encoder.
    #[config(default = "None")]
    pub num_classes: Option<usize>,
}

/// The two 3 × 3 convolutions of ResNet-18/34.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    downsample: Option<Downsample>,
}

/// 1 × 1 → 3 × 3 (strided) → 1 × 1 ×4 of ResNet-50.
#[derive(Module, Debug)]
pub struct Bottleneck {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Conv2d,
    bn3: BatchNorm,
    downsample: Option<Downsample>,
}

/// Projection shortcut (torchvision's `downsample.0` / `downsample.1`).
#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
    bn: BatchNorm,
}

/// A residual block of either kind.
// Burn's `Module` derive has no `Box<T>` support, and a stage holds blocks of one kind only, so the size
// difference between the variants costs nothing in practice.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Block {
    /// ResNet-18/34.
    Basic(BasicBlock),
    /// ResNet-50.
    Bottleneck(Bottleneck),
}

impl Downsample {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: conv(cin, cout, 1, stride, device),
            bn: bn(cout, device),
        }
    }
}

impl Block {
    fn new(
        bottleneck: bool,
        cin: usize,
        width: usize,
        stride: usize,
        device: &Device,
    ) -> (Self, usize) {
        let cout = if bottleneck { width * 4 } else { width };
        let downsample =
            (stride != 1 || cin != cout).then(|| Downsample::new(cin, cout, stride, device));
        let block = if bottleneck {
            Block::Bottleneck(Bottleneck {
                conv1: conv(cin, width, 1, 1, device),
                bn1: bn(width, device),
                conv2: conv(width, width, 3, stride, device),
                bn2: bn(width, device),
                conv3: conv(width, cout, 1, 1, device),
                bn3: bn(cout, device),
                downsample,
            })
        } else {
            Block::Basic(BasicBlock {
                conv1: conv(cin, width, 3, stride, device),
                bn1: bn(width, device),
                conv2: conv(width, width, 3, 1, device),
                bn2: bn(width, device),
                downsample,
            })
        };
        (block, cout)
    }

    /// The block's convolutions with their batch norms, in order, and its shortcut.
    fn parts(&self) -> (Vec<(&Conv2d, &BatchNorm)>, Option<&Downsample>) {
        match self {
            Block::Basic(b) => (
                vec![(&b.conv1, &b.bn1), (&b.conv2, &b.bn2)],
                b.downsample.as_ref(),
            ),
            Block::Bottleneck(b) => (
                vec![(&b.conv1, &b.bn1), (&b.conv2, &b.bn2), (&b.conv3, &b.bn3)],
                b.downsample.as_ref(),
            ),
        }
    }

    /// The block over a batch given as shards (`blocks[s]`: shard `s`'s replica).
    fn forward_shards(blocks: &[&Block], xs: Vec<Tensor<4>>, norm: ShardNorm) -> Vec<Tensor<4>> {
        let parts: Vec<_> = blocks.iter().map(|b| b.parts()).collect();
        let downsample: Option<Vec<&Downsample>> = parts.iter().map(|(_, d)| *d).collect();
        let identity = match downsample {
            Some(d) => {
                let out = shard::apply(&shard::each(&d, |d| &d.conv), xs.clone(), conv_forward);
                shard::batch_norm(&shard::each(&d, |d| &d.bn), out, norm)
            }
            None => xs.clone(),
        };
        let stages = parts[0].0.len();
        let mut out = xs;
        for k in 0..stages {
            let convs: Vec<&Conv2d> = parts.iter().map(|(p, _)| p[k].0).collect();
            let bns: Vec<&BatchNorm> = parts.iter().map(|(p, _)| p[k].1).collect();
            out = shard::apply(&convs, out, conv_forward);
            out = shard::batch_norm(&bns, out, norm);
            if k + 1 < stages {
                out = shard::map(out, relu);
            }
        }
        shard::map(shard::add(out, identity), relu)
    }
}

/// A ResNet: [`FeatureModel::forward_features`] gives the pooled features, [`ResNet::forward`] the logits when
/// configured with classes.
#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    maxpool: Option<MaxPool2d>,
    layer1: Vec<Block>,
    layer2: Vec<Block>,
    layer3: Vec<Block>,
    layer4: Vec<Block>,
    pool: AdaptiveAvgPool2d,
    fc: Option<Linear>,
    feature_dim: usize,
}

impl ResNetConfig {
    /// Refuses widths, classes or a parameter count beyond the bounds of [`crate::layers`]: settings come from
    /// flags and checkpoints, and are checked before any product of them is formed or allocated.
    fn check_size(&self, blocks: &[usize; 4], bottleneck: bool) -> Result<()> {
        let (k, base) = (self.width_multiplier, self.base_width);
        if k > MAX_WIDTH_MULTIPLIER || base > MAX_BASE_WIDTH {
            return Err(Error::InvalidConfig {
                name: if base > MAX_BASE_WIDTH {
                    "base_width"
                } else {
                    "width_multiplier"
                },
                reason: format!(
                    "width multiplier at most {MAX_WIDTH_MULTIPLIER} and base width at most {MAX_BASE_WIDTH}, \
                     got {k} and {base}"
                ),
            });
        }
        let classes = self.num_classes.unwrap_or(0);
        if classes > MAX_HEAD_WIDTH {
            return Err(Error::InvalidConfig {
                name: "num_classes",
                reason: format!("at most {MAX_HEAD_WIDTH} classes, got {classes}"),
            });
        }
        // Convolution weights (and batch norms) block by block; each stage's first block counted with a
        // projection shortcut: an upper bound, in u128 so that no product overflows.
        let stem = (base * k) as u128;
        let mut params = 3 * stem * if self.cifar_stem { 9 } else { 49 } + 4 * stem;
        let mut cin = stem;
        for (s, &n) in blocks.iter().enumerate() {
            let w = (base * k) as u128 * (1 << s);
            let cout = if bottleneck { 4 * w } else { w };
            for _ in 0..n {
                params += match bottleneck {
                    true => cin * w + 9 * w * w + w * cout + 8 * w + 4 * cout,
                    false => cin * w * 9 + 9 * w * w + 8 * w,
                } + cin * cout
                    + 4 * cout;
                cin = cout;
            }
        }
        params += (cin + 1) * classes as u128;
        let what = format!("resnet{} of base width {base} × {k}", self.depth);
        check_model_size("base_width", &what, params)
    }

    /// Builds the network on `device` (torchvision's initialisation); the settings are checked first
    /// ([`Error::InvalidConfig`]), sizes included.
    pub fn init(&self, device: &Device) -> Result<ResNet> {
        let (blocks, bottleneck) = match self.depth {
            18 => ([2, 2, 2, 2], false),
            34 => ([3, 4, 6, 3], false),
            50 => ([3, 4, 6, 3], true),
            d => {
                return Err(Error::InvalidConfig {
                    name: "depth",
                    reason: format!("18, 34 or 50, got {d}"),
                });
            }
        };
        for (name, value) in [
            ("base_width", self.base_width),
            ("width_multiplier", self.width_multiplier),
        ] {
            if value == 0 {
                return Err(Error::InvalidConfig {
                    name,
                    reason: "must be at least 1, got 0".into(),
                });
            }
        }
        self.check_size(&blocks, bottleneck)?;
        let k = self.width_multiplier;
        let stem_width = self.base_width * k;
        let (conv1, maxpool) = if self.cifar_stem {
            (conv(3, stem_width, 3, 1, device), None)
        } else {
            let pool = MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init();
            (conv(3, stem_width, 7, 2, device), Some(pool))
        };
        let mut cin = stem_width;
        let mut stages: Vec<Vec<Block>> = Vec::new();
        for (stage, (&n, width)) in blocks
            .iter()
            .zip([1, 2, 4, 8].map(|f| f * self.base_width))
            .enumerate()
        {
            let mut layer = Vec::with_capacity(n);
            for i in 0..n {
                let stride = if i == 0 && stage > 0 { 2 } else { 1 };
                let (block, cout) = Block::new(bottleneck, cin, width * k, stride, device);
                layer.push(block);
                cin = cout;
            }
            stages.push(layer);
        }
        let fc = self
            .num_classes
            .map(|c| LinearConfig::new(cin, c).init(device));
        let mut stages = stages.into_iter();
        Ok(ResNet {
            conv1,
            bn1: bn(stem_width, device),
            maxpool,
            layer1: stages.next().expect("4 stages"),
            layer2: stages.next().expect("4 stages"),
            layer3: stages.next().expect("4 stages"),
            layer4: stages.next().expect("4 stages"),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc,
            feature_dim: cin,
        })
    }
}

impl ResNet {
    /// Logits `(N, classes)`; `None` for an encoder without classifier.
    pub fn forward(&self, x: Tensor<4>) -> Option<Tensor<2>> {
        let features = self.forward_features(x);
        self.fc.as_ref().map(|fc| fc.forward(features))
    }

    /// The architecture's name as torchvision spells it: `resnet18`, `resnet34`, `resnet50`.
    pub fn arch(&self) -> String {
        let blocks: Vec<&Block> = [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .flatten()
            .collect();
        let per_block = match blocks.first() {
            Some(Block::Bottleneck(_)) => 3,
            _ => 2,
        };
        format!("resnet{}", per_block * blocks.len() + 2)
    }

    /// Loads weights saved from a torchvision-layout ResNet (`torchvision.models.resnet18/34/50`, or a SimCLR
    /// or supervised checkpoint of that layout) as safetensors. `prefix` is stripped from every key first
    /// (`""` for torchvision's own files, e.g. `"encoder."` or `"module.backbone."` for wrapped models).
    ///
    /// Every parameter and batch-norm statistic of `self` must be found with its shape; the file may hold more
    /// (a classifier when `self` has none, `num_batches_tracked`, a projection head), which is returned in
    /// [`ImportReport::skipped`](crate::ImportReport::skipped) for the caller to report. An `arch` of the form `resnet<depth>` in the file's
    /// metadata must be [`Self::arch`] ([`Error::WrongArchitecture`]), and the tensors under `prefix` finite
    /// ([`Error::NonFiniteWeight`] names the first that is not). PyTorch `.pth` files: convert once with
    /// `safetensors.torch.save_file(torch.load(p, map_location="cpu"), out)` (see `docs/guide.md`).
    pub fn load_torchvision(
        mut self,
        path: impl AsRef<Path>,
        prefix: &str,
    ) -> Result<(Self, crate::ImportReport)> {
        let path = path.as_ref();
        let err = |reason: String| Error::Weights {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(err("no such file".into()));
        }
        let header = crate::safetensors_header::read(path)?;
        if let Some(found) = header.metadata.get("arch")
            && found
                .strip_prefix("resnet")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            && *found != self.arch()
        {
            return Err(Error::WrongArchitecture {
                path: path.to_path_buf(),
                expected: self.arch(),
                found: found.clone(),
            });
        }
        // A prefix no tensor has would be ignored by the key remapping: the file's unprefixed tensors (another
        // copy of the network, say) would load instead of the ones asked for.
        if !prefix.is_empty() && !header.tensors.keys().any(|k| k.starts_with(prefix)) {
            let example = header.tensors.keys().next().cloned().unwrap_or_default();
            return Err(err(format!(
                "no tensor name starts with the prefix `{prefix}` (names look like `{example}`)"
            )));
        }
        // A prefix is whole name parts: `ema` is read as `ema.` (stripping `ema` alone left `.conv1.weight`,
        // which matched nothing, and the file's unprefixed copy loaded instead); `enc` of `encoder.` is refused.
        let dotted = format!("{prefix}.");
        let prefix = if prefix.is_empty() || prefix.ends_with('.') {
            prefix
        } else if let Some(inside) = header
            .tensors
            .keys()
            .find(|k| k.starts_with(prefix) && !k.starts_with(&dotted))
        {
            return Err(err(format!(
                "the prefix `{prefix}` ends inside the name `{inside}`: give whole parts, up to a dot"
            )));
        } else {
            dotted.as_str()
        };
        // The tensors under the prefix are those that may be applied: none may be NaN or infinite.
        crate::safetensors_header::check_finite(path, &header, |key| key.starts_with(prefix))?;
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            // Burn names the variant of the `Block` enum in its paths (`layer1.0.Basic.conv1`); PyTorch does not.
            .skip_enum_variants(true)
            .allow_partial(true)
            .validate(false);
        if !prefix.is_empty() {
            // Only the tensors under the prefix may load: every name is first moved aside, then those under the
            // prefix are brought back without it. Stripping alone left the file's unprefixed tensors (a plain
            // encoder beside an `ema.` copy) under the same names, and which of two equal names loaded changed
            // from run to run.
            store = store
                .with_key_remapping("^(.*)$", "__outside_prefix__.${1}")
                .with_key_remapping(
                    format!("^__outside_prefix__\\.{}", escape_regex(prefix)),
                    "",
                );
        }
        // torchvision's `downsample` is a Sequential(conv, bn): indices where this crate has names.
        store = store
            .with_key_remapping(r"\.downsample\.0\.", ".downsample.conv.")
            .with_key_remapping(r"\.downsample\.1\.", ".downsample.bn.");
        let applied = self
            .load_from(&mut store)
            .map_err(|e| err(shorten(e.to_string())))?;
        if let Some(e) = apply_error(path, &applied) {
            return Err(e);
        }
        let report = crate::ImportReport {
            loaded: applied.applied.len(),
            skipped: applied.unused,
        };
        Ok((self, report))
    }
}

/// A message cut to its first 600 characters (Burn lists every mismatching tensor).
pub(crate) fn shorten(text: String) -> String {
    match text.char_indices().nth(600) {
        Some((cut, _)) => format!("{} … (shortened)", &text[..cut]),
        None => text,
    }
}

/// What went wrong when `applied` came back from Burn's store (built with `validate(false)` and
/// `allow_partial(true)`, so that mismatches come back as data rather than as Burn's debug dump): the first shape
/// mismatch as [`Error::ShapeMismatch`] naming the key and both shapes (the first is enough to tell another
/// width or depth; shapes in the model's layout, where a linear layer's weight is PyTorch's transposed), else
/// missing or unapplied tensors, with their count. `None` when everything applied.
pub(crate) fn apply_error(path: &Path, applied: &burn::store::ApplyResult) -> Option<Error> {
    use burn::store::ApplyError;
    if let Some((key, expected, got)) = applied.errors.iter().find_map(|e| match e {
        ApplyError::ShapeMismatch {
            path,
            expected,
            found,
        } => Some((path, expected.to_vec(), found.to_vec())),
        _ => None,
    }) {
        return Some(Error::ShapeMismatch {
            path: path.to_path_buf(),
            key: key.clone(),
            expected,
            got,
        });
    }
    let mut parts = Vec::new();
    if let Some((key, _)) = applied.missing.first() {
        parts.push(format!(
            "{} tensor(s) missing (first: `{key}`)",
            applied.missing.len()
        ));
    }
    if let Some(first) = applied.errors.first() {
        parts.push(format!(
            "{} tensor(s) not applied (first: {first})",
            applied.errors.len()
        ));
    }
    (!parts.is_empty()).then(|| Error::Weights {
        path: path.to_path_buf(),
        reason: parts.join(", "),
    })
}

/// `text` with the regex metacharacters escaped.
pub(crate) fn escape_regex(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

impl ResNet {
    /// Pooled features `(N_s, D)` of a batch given as shards: `replicas[s]` is shard `s`'s copy of the network
    /// (on its device), `xs[s]` its images; batch norm per `norm`. One shard is [`FeatureModel::forward_features`].
    pub(crate) fn forward_features_sharded(
        replicas: &[&ResNet],
        xs: Vec<Tensor<4>>,
        norm: ShardNorm,
    ) -> Vec<Tensor<2>> {
        let mut x = shard::apply(&shard::each(replicas, |r| &r.conv1), xs, conv_forward);
        x = shard::batch_norm(&shard::each(replicas, |r| &r.bn1), x, norm);
        x = shard::map(x, relu);
        if let Some(pool) = replicas.first().and_then(|r| r.maxpool.as_ref()) {
            x = shard::map(x, |x| pool.forward(x));
        }
        let first = replicas[0];
        for (stage, layer) in [&first.layer1, &first.layer2, &first.layer3, &first.layer4]
            .into_iter()
            .enumerate()
        {
            for i in 0..layer.len() {
                let blocks = shard::each(replicas, |r| &r.stages()[stage][i]);
                x = Block::forward_shards(&blocks, x, norm);
            }
        }
        shard::map(x, |x| first.pool.forward(x).flatten(1, 3))
    }

    fn stages(&self) -> [&Vec<Block>; 4] {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
    }
}

impl FeatureModel for ResNet {
    fn forward_features(&self, x: Tensor<4>) -> Tensor<2> {
        Self::forward_features_sharded(&[self], vec![x], ShardNorm::Synchronized)
            .pop()
            .expect("one shard in, one out")
    }
    fn feature_dim(&self) -> usize {
        self.feature_dim
    }
}
