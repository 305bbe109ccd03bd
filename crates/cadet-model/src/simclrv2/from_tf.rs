//! SimCLRv2's original TensorFlow checkpoints → the converter's layout as safetensors, the way the converter's
//! `convert.py` maps them: the encoder's convolutions (`base_model/conv2d_<i>/kernel`) and batch norms
//! (`base_model/batch_normalization_<j>/…`) numbered in the order the PyTorch modules are built, kernels from HWIO
//! to OIHW; `head_supervised/linear_layer/dense` → `fc`; `head_contrastive/nl_<k>` → `head.layers.…` (dense kernels
//! transposed; the last layer's batch norm has no beta, left at 0). Optimizer slots (`…/Momentum`) and other
//! variables are left aside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cadet_core::limits::Limits;

use super::SimClrV2Config;
use super::layout;
use super::tf_bundle::Bundle;
use crate::{Error, Result};

/// A tensor for the output file.
struct Out {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// The `<i>` of `<name>` (0) or `<name>_<i>`.
fn numbered(component: &str, name: &str) -> Option<usize> {
    match component.strip_prefix(name)? {
        "" => Some(0),
        rest => rest.strip_prefix('_')?.parse().ok(),
    }
}

impl SimClrV2Config {
    /// Converts the TensorFlow checkpoint `prefix` (e.g. `r50_1x_sk1/model.ckpt-250228`, as released) into the
    /// converter's layout, written as safetensors to `out` with the architecture in its metadata: what
    /// [`Self::load`] and [`load_simclrv2`](crate::load_simclrv2) read. `ema` takes the moving-average weights
    /// (`ema_model/…`) instead. Returns the number of tensors written.
    ///
    /// The checkpoint is untrusted input: every checksum TensorFlow recorded is verified
    /// ([`Error::Crc32cMismatch`]), sizes are bounded by [`Limits::default`] before anything is allocated, and
    /// every value must be finite ([`Error::NonFiniteWeight`]). `out` may not be one of the checkpoint's files
    /// ([`Error::OutputIsInput`]): that would destroy the input.
    ///
    /// Errors: [`Error::WrongArchitecture`] when the checkpoint's numbers of convolutions and batch norms are not
    /// this architecture's, [`Error::ShapeMismatch`] / [`Error::MissingTensor`] / [`Error::UnexpectedTensor`]
    /// naming the TensorFlow variable, [`Error::Weights`] for an unreadable bundle.
    pub fn convert_tf_checkpoint(
        &self,
        prefix: impl AsRef<Path>,
        ema: bool,
        out: impl AsRef<Path>,
    ) -> Result<usize> {
        let prefix = prefix.as_ref();
        let bundle = Bundle::open(prefix, &Limits::default())?;
        refuse_overwriting_inputs(out.as_ref(), &bundle.files())?;
        let path = prefix.to_path_buf();
        let scope = if ema { "ema_model/" } else { "" };
        let base = format!("{scope}base_model/");
        let encoder = layout::encoder(&self.clone().with_num_classes(None))?;

        // The encoder's variables, by number.
        let mut convs = BTreeMap::new();
        let mut norms = BTreeMap::new();
        for name in bundle.entries.keys() {
            let Some(rest) = name.strip_prefix(&base) else {
                continue;
            };
            if name.ends_with("/Momentum") {
                continue;
            }
            let (component, leaf) = rest.split_once('/').unwrap_or((rest, ""));
            if let Some(i) = numbered(component, "conv2d")
                && leaf == "kernel"
            {
                convs.insert(i, name.clone());
            } else if let Some(j) = numbered(component, "batch_normalization") {
                norms.insert(j, format!("{base}{component}/"));
            } else {
                return Err(Error::UnexpectedTensor {
                    path,
                    key: name.clone(),
                });
            }
        }
        let conv_specs: Vec<_> = encoder.iter().filter(|t| t.shape.len() == 4).collect();
        let norm_specs: Vec<_> = encoder
            .iter()
            .filter_map(|t| t.key.strip_suffix(".running_mean").map(|k| (k, &t.shape)))
            .collect();
        if ema && convs.is_empty() && norms.is_empty() {
            return Err(Error::Weights {
                path,
                reason: "no moving-average weights (no `ema_model/base_model/…` variable): this checkpoint has \
                         only the trained weights; convert it without `ema` (--ema)"
                    .into(),
            });
        }
        if convs.len() != conv_specs.len() || norms.len() != norm_specs.len() {
            return Err(Error::WrongArchitecture {
                path,
                expected: format!(
                    "{} ({} convolutions, {} batch norms)",
                    self.name(),
                    conv_specs.len(),
                    norm_specs.len()
                ),
                found: format!("{} convolutions, {} batch norms", convs.len(), norms.len()),
            });
        }

        let read = |name: &str, expected: &[usize]| -> Result<Vec<f32>> {
            let entry = bundle
                .entries
                .get(name)
                .ok_or_else(|| Error::MissingTensor {
                    path: prefix.to_path_buf(),
                    key: name.to_string(),
                })?;
            if entry.shape != expected {
                return Err(Error::ShapeMismatch {
                    path: prefix.to_path_buf(),
                    key: name.to_string(),
                    expected: expected.to_vec(),
                    got: entry.shape.clone(),
                });
            }
            bundle.floats(name)
        };
        let mut tensors: BTreeMap<String, Out> = BTreeMap::new();
        for (spec, name) in conv_specs.iter().zip(convs.values()) {
            let [o, i, h, w] = spec.shape[..] else {
                unreachable!("4-D specs only")
            };
            let hwio = read(name, &[h, w, i, o])?;
            let mut oihw = vec![0.0; hwio.len()];
            for (at, v) in hwio.into_iter().enumerate() {
                let (rest, oo) = (at / o, at % o);
                let (rest, ii) = (rest / i, rest % i);
                let (hh, ww) = (rest / w, rest % w);
                oihw[((oo * i + ii) * h + hh) * w + ww] = v;
            }
            tensors.insert(
                spec.key.clone(),
                Out {
                    shape: spec.shape.clone(),
                    values: oihw,
                },
            );
        }
        let bn = |tensors: &mut BTreeMap<String, Out>, scope: &str, key: &str, c: usize| {
            for (tf, ours) in [
                ("gamma", "weight"),
                ("beta", "bias"),
                ("moving_mean", "running_mean"),
                ("moving_variance", "running_var"),
            ] {
                let name = format!("{scope}{tf}");
                // The contrastive head's last batch norm has no beta in the released checkpoints.
                let values = if tf == "beta"
                    && !bundle.entries.contains_key(&name)
                    && key.starts_with("head.")
                {
                    vec![0.0; c]
                } else {
                    read(&name, &[c])?
                };
                tensors.insert(
                    format!("{key}.{ours}"),
                    Out {
                        shape: vec![c],
                        values,
                    },
                );
            }
            Ok::<_, Error>(())
        };
        for ((key, shape), scope) in norm_specs.iter().zip(norms.values()) {
            bn(&mut tensors, scope, key, shape[0])?;
        }

        // The supervised head, when the checkpoint has one (its dense layer is (features, classes)).
        let features = self.feature_dim();
        let fc = "head_supervised/linear_layer/dense/";
        if let Some(kernel) = bundle.entries.get(&format!("{fc}kernel")) {
            let classes = kernel.shape.get(1).copied().unwrap_or(0);
            let weight = read(&format!("{fc}kernel"), &[features, classes])?;
            tensors.insert("fc.weight".into(), transposed(&weight, features, classes));
            let bias = read(&format!("{fc}bias"), &[classes])?;
            tensors.insert(
                "fc.bias".into(),
                Out {
                    shape: vec![classes],
                    values: bias,
                },
            );
        }
        // The contrastive head: three dense layers, each with its batch norm.
        let head = format!("{scope}head_contrastive/");
        if bundle
            .entries
            .contains_key(&format!("{head}nl_0/dense/kernel"))
        {
            for k in 0..3 {
                let name = format!("{head}nl_{k}/dense/kernel");
                let width = match bundle.entries.get(&name) {
                    Some(e) if k == 2 => e.shape.get(1).copied().unwrap_or(0),
                    _ => features,
                };
                let weight = read(&name, &[features, width])?;
                tensors.insert(
                    format!("head.layers.{}.weight", 3 * k),
                    transposed(&weight, features, width),
                );
                let scope = format!("{head}nl_{k}/batch_normalization/");
                bn(
                    &mut tensors,
                    &scope,
                    &format!("head.layers.{}", 3 * k + 1),
                    width,
                )?;
            }
        }
        let arch = self.clone().with_base_width(64).name();
        let mut metadata = BTreeMap::from([("arch".to_string(), arch)]);
        if self.base_width != 64 {
            metadata.insert("base_width".into(), self.base_width.to_string());
        }
        write_safetensors(out.as_ref(), &tensors, &metadata)?;
        Ok(tensors.len())
    }
}

/// Refuses an output path that is one of `inputs`, through whatever path or link it is named.
fn refuse_overwriting_inputs(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    // A path that does not exist yet is no input.
    let Ok(out_meta) = std::fs::metadata(out) else {
        return Ok(());
    };
    for input in inputs {
        let Ok(meta) = std::fs::metadata(input) else {
            continue;
        };
        if same_file(out, &out_meta, input, &meta) {
            return Err(Error::OutputIsInput {
                output: out.to_path_buf(),
                input: input.clone(),
            });
        }
    }
    Ok(())
}

/// Whether two existing paths are one file: the same device and inode (hard links included) where there are
/// such, else the same canonical path.
fn same_file(a: &Path, a_meta: &std::fs::Metadata, b: &Path, b_meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let _ = (a, b);
        a_meta.dev() == b_meta.dev() && a_meta.ino() == b_meta.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a_meta, b_meta);
        matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    }
}

/// `(rows, cols)` row-major values as the `(cols, rows)` tensor.
fn transposed(values: &[f32], rows: usize, cols: usize) -> Out {
    let mut t = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = values[r * cols + c];
        }
    }
    Out {
        shape: vec![cols, rows],
        values: t,
    }
}

/// Writes `tensors` (float32) and `metadata` as a safetensors file, atomically (a temporary file renamed).
fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, Out>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(metadata));
    let mut offset = 0;
    for (name, t) in tensors {
        let end = offset + 4 * t.values.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = serde_json::to_vec(&header).expect("a JSON map serialises");
    text.resize(text.len().next_multiple_of(8), b' ');
    let mut bytes = Vec::with_capacity(8 + text.len() + offset);
    bytes.extend((text.len() as u64).to_le_bytes());
    bytes.extend(text);
    for t in tensors.values() {
        bytes.extend(t.values.iter().flat_map(|v| v.to_le_bytes()));
    }
    // A uniquely named temporary file, synced, then renamed: a crash never leaves a half-written file at `path`.
    cadet_core::io::write_atomic(path, &bytes).map_err(Error::Write)
}
