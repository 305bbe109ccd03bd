//! The tensors of a SimCLRv2 network in the converter's state-dict layout (`net.0.0.weight`, …, `fc.bias`; the
//! head's `layers.0.weight`, …), with their shapes: what a file must hold, and the parameter counts.
//!
//! The layout follows the reference's module tree: `net` is `Sequential(Stem, Blocks × 4)`; the stem is
//! `conv, BatchNormRelu, …, MaxPool` (a `BatchNormRelu` is `Sequential(BatchNorm2d, ReLU)`, hence the `.0`);
//! a block has `projection` (`shortcut` — `Sequential(ZeroPad2d, AvgPool2d, conv)` with selective kernels —
//! and `bn`) and `net`, the sequence of its convolutions and batch norms.

use super::SimClrV2Config;
use crate::Result;

/// One tensor of a state dict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorSpec {
    /// Its key.
    pub(crate) key: String,
    /// Its shape.
    pub(crate) shape: Vec<usize>,
    /// A parameter (`false`: a batch-norm running statistic).
    pub(crate) trainable: bool,
}

#[derive(Default)]
struct Specs(Vec<TensorSpec>);

impl Specs {
    fn push(&mut self, key: String, shape: Vec<usize>, trainable: bool) {
        self.0.push(TensorSpec {
            key,
            shape,
            trainable,
        });
    }
    fn conv(&mut self, key: &str, cout: usize, cin: usize, k: usize) {
        self.push(format!("{key}.weight"), vec![cout, cin, k, k], true);
    }
    fn bn(&mut self, key: &str, c: usize) {
        for (name, trainable) in [
            ("weight", true),
            ("bias", true),
            ("running_mean", false),
            ("running_var", false),
        ] {
            self.push(format!("{key}.{name}"), vec![c], trainable);
        }
    }
}

/// One residual block: where it sits and its widths.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockPlan {
    /// Stage, 1 to 4.
    pub(crate) stage: usize,
    /// Index in the stage.
    pub(crate) index: usize,
    /// Input channels.
    pub(crate) cin: usize,
    /// Width of the 3 × 3 convolution(s).
    pub(crate) width: usize,
    /// Output channels (`4 · width` for a bottleneck).
    pub(crate) cout: usize,
    /// Stride of the block (on the 3 × 3 convolution and the shortcut).
    pub(crate) stride: usize,
    /// Whether it has a projection shortcut (each stage's first block).
    pub(crate) projection: bool,
    /// Bottleneck (else basic).
    pub(crate) bottleneck: bool,
}

/// The blocks of `config`, in order.
pub(crate) fn blocks(config: &SimClrV2Config) -> Result<Vec<BlockPlan>> {
    let (depths, bottleneck) = config.plan()?;
    let base = config.base_width * config.width_multiplier;
    let mut cin = base;
    let mut plan = Vec::new();
    for (s, &n) in depths.iter().enumerate() {
        let width = base << s;
        let cout = if bottleneck { 4 * width } else { width };
        for index in 0..n {
            plan.push(BlockPlan {
                stage: s + 1,
                index,
                cin,
                width,
                cout,
                stride: if index == 0 && s > 0 { 2 } else { 1 },
                projection: index == 0,
                bottleneck,
            });
            cin = cout;
        }
    }
    Ok(plan)
}

/// The encoder's tensors (and `fc`'s when it has classes).
pub(crate) fn encoder(config: &SimClrV2Config) -> Result<Vec<TensorSpec>> {
    let blocks = blocks(config)?;
    let mut t = Specs::default();
    let half = config.base_width * config.width_multiplier / 2;
    if config.selective() {
        t.conv("net.0.0", half, 3, 3);
        t.bn("net.0.1.0", half);
        t.conv("net.0.2", half, half, 3);
        t.bn("net.0.3.0", half);
        t.conv("net.0.4", 2 * half, half, 3);
        t.bn("net.0.5.0", 2 * half);
    } else {
        t.conv("net.0.0", 2 * half, 3, 7);
        t.bn("net.0.1.0", 2 * half);
    }
    for b in &blocks {
        let p = format!("net.{}.blocks.{}", b.stage, b.index);
        if b.projection {
            let shortcut = if config.selective() {
                format!("{p}.projection.shortcut.2")
            } else {
                format!("{p}.projection.shortcut")
            };
            t.conv(&shortcut, b.cout, b.cin, 1);
            t.bn(&format!("{p}.projection.bn.0"), b.cout);
        }
        let w = b.width;
        if !b.bottleneck {
            t.conv(&format!("{p}.net.0"), w, b.cin, 3);
            t.bn(&format!("{p}.net.1.0"), w);
            t.conv(&format!("{p}.net.2"), w, w, 3);
            t.bn(&format!("{p}.net.3.0"), w);
            continue;
        }
        t.conv(&format!("{p}.net.0"), w, b.cin, 1);
        t.bn(&format!("{p}.net.1.0"), w);
        let last = if config.selective() {
            let mid = config.sk_width(w);
            t.conv(&format!("{p}.net.2.main_conv.0"), 2 * w, w, 3);
            t.bn(&format!("{p}.net.2.main_conv.1.0"), 2 * w);
            t.conv(&format!("{p}.net.2.mixing_conv.0"), mid, w, 1);
            t.bn(&format!("{p}.net.2.mixing_conv.1.0"), mid);
            t.conv(&format!("{p}.net.2.mixing_conv.2"), 2 * w, mid, 1);
            3
        } else {
            t.conv(&format!("{p}.net.2"), w, w, 3);
            t.bn(&format!("{p}.net.3.0"), w);
            4
        };
        t.conv(&format!("{p}.net.{last}"), b.cout, w, 1);
        t.bn(&format!("{p}.net.{}.0", last + 1), b.cout);
    }
    if let Some(classes) = config.num_classes {
        let features = config.feature_dim();
        t.push("fc.weight".into(), vec![classes, features], true);
        t.push("fc.bias".into(), vec![classes], true);
    }
    Ok(t.0)
}

/// The contrastive head's tensors (keys without the file's `head.`): `Linear(d, d) → BN → ReLU → Linear(d, d)
/// → BN → ReLU → Linear(d, output) → BN`, linear layers without bias.
pub(crate) fn head(features: usize, output: usize) -> Vec<TensorSpec> {
    let mut t = Specs::default();
    for (i, (out, inp)) in [
        (features, features),
        (features, features),
        (output, features),
    ]
    .into_iter()
    .enumerate()
    {
        t.push(format!("layers.{}.weight", 3 * i), vec![out, inp], true);
        t.bn(&format!("layers.{}", 3 * i + 1), out);
    }
    t.0
}
