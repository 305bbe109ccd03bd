//! The checkpoint store of a [`SimClrTrainer`]: writing a checkpoint folder atomically with its checksums,
//! pruning old ones, clearing a folder, and resuming a run from its newest checkpoint with every file verified
//! and every setting checked before anything is built.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use super::{Settings, SimClrTrainer, TrainConfig, TrainState, io};
use crate::integrity::{self, io_error};
use crate::{Error, Result, SimClrConfig};

impl SimClrTrainer {
    /// Writes a checkpoint of the current step into `dir` and points `dir/latest` at it; returns its folder.
    ///
    /// The checkpoint is written completely under a unique temporary name, synced, and renamed to a name no
    /// other checkpoint has (`ckpt-<step>`, or `ckpt-<step>-<k>` when that is taken); only then is `latest`
    /// replaced (atomically), and only then are older checkpoints pruned (the newest
    /// [`TrainConfig::keep_checkpoints`] by step stay, and never the one `latest` names). The live checkpoint
    /// is never removed or overwritten before its replacement is in place: when nothing changed since it was
    /// written (a resume that ran no step), nothing is written and its folder is returned.
    ///
    /// The folder must be empty, new, or hold this run's checkpoints: one holding another run's is an
    /// [`Error::Checkpoint`] (see [`Self::clear_checkpoints`] to start over there).
    pub fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        // The folder's lock for this write, unless this run holds it already.
        let _lock = match &self.folder_lock {
            Some(lock) if lock.holds(dir) => {
                lock.check_still_held()?;
                None
            }
            _ => Some(FolderLock::acquire(dir)?),
        };
        let state_json = erased::Json::json(&self.state);
        let live = self.check_folder(dir)?;
        // The folder takes this run's checkpoints: what killed writes left of them goes.
        remove_stale_temporaries(dir)?;
        if let Some(live) = live {
            // (A checkpoint of an older version, without checksums, is rewritten rather than kept.)
            let same_state = read_small(&live.join("state.json"))
                .is_ok_and(|text| text == state_json)
                && live.join(integrity::MANIFEST).is_file();
            if same_state {
                return Ok(live);
            }
        }
        let base = format!("ckpt-{:08}", self.state.step);
        let name = (0..)
            .map(|k| match k {
                0 => base.clone(),
                k => format!("{base}-{k}"),
            })
            .find(|n| !dir.join(n).exists())
            .expect("some suffix is free");
        let final_dir = dir.join(&name);
        let staged = cadet_core::io::staging_dir(&final_dir).map_err(io_error(dir))?;
        let tmp = staged.path();
        // Burn keeps a batch norm's latest running statistics pending (per thread) until they are read with
        // synchronisation, and saving reads them without: `valid` synchronises them (the copy it returns is not
        // needed), so the checkpoint holds the current statistics and a resumed run continues with them.
        let _ = self.model.valid();
        self.model
            .clone()
            .save_file(tmp.join("model.bpk"))
            .map_err(|e| io(tmp, e))?;
        self.optim
            .save(tmp.join("optim.bpk"))
            .map_err(|e| io(tmp, e))?;
        let settings = Settings {
            train: serde_json::to_value(&self.config).map_err(|e| io(tmp, e))?,
            model: serde_json::to_value(&self.model_config).map_err(|e| io(tmp, e))?,
            normalization: self.normalization,
            run: self.run,
        };
        let settings_path = tmp.join("settings.json");
        std::fs::write(&settings_path, erased::Json::json(&settings))
            .map_err(io_error(&settings_path))?;
        let state_path = tmp.join("state.json");
        std::fs::write(&state_path, &state_json).map_err(io_error(&state_path))?;
        integrity::write_manifest(tmp, &CHECKPOINT_FILES)?;
        cadet_core::io::commit_dir(staged, &final_dir).map_err(io_error(&final_dir))?;
        let latest = dir.join("latest");
        cadet_core::io::write_atomic(&latest, name.as_bytes()).map_err(io_error(&latest))?;
        self.prune(dir, &name)?;
        Ok(final_dir)
    }

    /// The checkpoint `dir/latest` names, after checking that the folder may take this run's checkpoints.
    pub(super) fn check_folder(&self, dir: &Path) -> Result<Option<PathBuf>> {
        let conflict = |reason: String| Error::Checkpoint {
            path: dir.to_path_buf(),
            reason,
        };
        let latest = dir.join("latest");
        let name = match read_small(&latest) {
            Ok(name) => name.trim().to_string(),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                let held = checkpoints_in(dir)?;
                if let Some((_, name)) = held.first() {
                    return Err(conflict(format!(
                        "holds checkpoints ({name}, …) but no `latest`: not this run's; clear it or choose \
                         another folder"
                    )));
                }
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if parse_checkpoint(&name).is_none() {
            return Err(conflict(format!(
                "`latest` names `{name}`, not a checkpoint of this folder (ckpt-<step>)"
            )));
        }
        let live = dir.join(&name);
        let run = read_small(&live.join("settings.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Settings>(&t).ok())
            .map(|s| s.run);
        match run {
            Some(run) if run == self.run => Ok(Some(live)),
            _ => Err(conflict(format!(
                "holds another run (`latest` names {name}); resume it, clear the folder, or choose another \
                 folder"
            ))),
        }
    }

    /// Removes the checkpoints older than `live` beyond the newest `keep_checkpoints` (by step; `live` counts
    /// as one and is never removed, nor is anything newer than it).
    fn prune(&self, dir: &Path, live: &str) -> Result<()> {
        let all = checkpoints_in(dir)?;
        let Some(live_key) = all.iter().find(|(_, n)| n == live).map(|(k, _)| *k) else {
            return Ok(());
        };
        let keep = self.config.keep_checkpoints.max(1);
        // Newest first.
        let older = all.iter().rev().filter(|(k, _)| *k < live_key);
        for (_, stale) in older.skip(keep - 1) {
            let path = dir.join(stale);
            // A checkpoint that holds a file this crate did not write is left as it is: removing the folder
            // would delete the user's file with it.
            // File by file, and never a mount point (a folder mounted at a checkpoint's name is someone's
            // data: hostile pass 20).
            if only_checkpoint_files(&path)? {
                cadet_core::io::remove_flat_folder(&path, is_checkpoint_file)
                    .map_err(io_error(&path))?;
            }
        }
        Ok(())
    }

    /// Removes the checkpoints of `dir` (its `latest` first, then every `ckpt-*` folder and leftover temporary
    /// of a checkpoint), so that a fresh run may use it. Refuses, removing nothing, when the folder holds
    /// anything else: it may not be a checkpoint folder. A missing folder is fine.
    pub fn clear_checkpoints(dir: &Path) -> Result<()> {
        if !dir.exists() {
            return Ok(());
        }
        let _lock = FolderLock::acquire(dir)?;
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(Error::Io {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        let mut ours = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == LOCK_FILE {
                continue;
            }
            // The entry itself, not what a link named like a checkpoint points to (hostile pass 21).
            let is_folder = entry.file_type().map_err(io_error(dir))?.is_dir();
            let checkpoint = parse_checkpoint(&name).is_some() && is_folder;
            let temporary = is_temporary(&name);
            if checkpoint && !only_checkpoint_files(&entry.path())? {
                return Err(Error::Checkpoint {
                    path: entry.path(),
                    reason: "holds files that are not a checkpoint's: nothing removed".into(),
                });
            }
            if name == "latest" || checkpoint || temporary {
                ours.push((name != "latest", entry.path()));
            } else {
                return Err(Error::Checkpoint {
                    path: dir.to_path_buf(),
                    reason: format!("holds {name}, which is not a checkpoint: nothing removed"),
                });
            }
        }
        // `latest` first: from then on the folder holds no live run.
        ours.sort();
        for (_, path) in ours {
            let is_folder = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            let removed = if is_folder {
                cadet_core::io::remove_flat_folder(&path, is_checkpoint_file)
            } else {
                std::fs::remove_file(&path).map(|()| true)
            };
            if !removed.map_err(io_error(&path))? {
                return Err(Error::Checkpoint {
                    path: path.clone(),
                    reason: "a mount point, or a folder holding other files than a checkpoint's: left as it is"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Resumes from the checkpoint `dir/latest` names, on `device`, after checking every file of it against
    /// the checksums recorded when it was written ([`Error::ChecksumMismatch`] for altered bytes).
    pub fn resume(dir: &Path, device: &Device) -> Result<Self> {
        // With the folder's lock, what killed writes left goes. Without it — a run is training there, or the
        // folder is read-only (a downloaded checkpoint): reading is fine — nothing is removed, and training
        // this one there is refused until the lock can be taken.
        if dir.is_dir() && matches!(FolderLock::try_acquire(dir), Ok(Some(_))) {
            remove_stale_temporaries(dir)?;
        }
        let latest_path = dir.join("latest");
        // `latest` holds one checkpoint name: read at most 4 KiB of it, and quote at most 80 characters (a
        // 28 MB file, or a link to /etc/passwd, was quoted whole in the error).
        let latest = cadet_core::limits::read_capped(&latest_path, 4096)
            .map_err(|e| Error::reading(&latest_path, e))
            .and_then(|b| String::from_utf8(b).map_err(|_| io(&latest_path, "not UTF-8 text")))?;
        let name = latest.trim();
        // `latest` names a folder beside it, never a path elsewhere.
        let Some((named_step, _)) = parse_checkpoint(name) else {
            let shown: String = name.chars().take(80).collect();
            return Err(Error::Checkpoint {
                path: dir.to_path_buf(),
                reason: format!(
                    "`latest` names `{shown}`{}, not a checkpoint of this folder (ckpt-<step>)",
                    if shown.len() < name.len() { "…" } else { "" }
                ),
            });
        };
        if !dir.join(name).is_dir() {
            return Err(Error::Checkpoint {
                path: dir.to_path_buf(),
                reason: format!("`latest` names {name}, but the folder holds no such checkpoint"),
            });
        }
        // A checkpoint newer than the one `latest` names: `latest` was edited, or a run was killed between
        // writing a checkpoint and `latest`. Training on from the older one would put a second history beside
        // the first (and prune the newer); which one is meant is the user's to say.
        let named_key = parse_checkpoint(name).unwrap_or((named_step, 0));
        if let Some((_, newer)) = checkpoints_in(dir)?
            .into_iter()
            .rfind(|(k, _)| *k > named_key)
        {
            return Err(Error::Checkpoint {
                path: dir.to_path_buf(),
                reason: format!(
                    "`latest` names {name}, but {newer} is newer: write `{newer}` into `latest` to go on from \
                     it, or move the newer checkpoints away to go on from {name}"
                ),
            });
        }
        let ckpt = dir.join(name);
        integrity::verify_manifest(&ckpt, &CHECKPOINT_FILES)?;
        let read = |file: &str| read_small(&ckpt.join(file));
        let (settings_path, state_path) = (ckpt.join("settings.json"), ckpt.join("state.json"));
        // A key given twice (`temperature`) would leave its value to serde's choice, not the file's.
        let (settings_text, state_text) = (read("settings.json")?, read("state.json")?);
        cadet_core::json::unique_keys(settings_text.as_bytes())
            .map_err(|e| io(&settings_path, e))?;
        cadet_core::json::unique_keys(state_text.as_bytes()).map_err(|e| io(&state_path, e))?;
        let settings: Settings = serde_json::from_str(&settings_text).map_err(|e| {
            io(
                &settings_path,
                cadet_core::json::with_context(&e, &settings_text),
            )
        })?;
        let state: TrainState = serde_json::from_str(&state_text)
            .map_err(|e| io(&state_path, cadet_core::json::with_context(&e, &state_text)))?;
        let config = read_train_config(settings.train)
            .map_err(|e| io(&settings_path, format!("`train`: {e}")))?;
        let model_config: SimClrConfig = serde_json::from_value(settings.model)
            .map_err(|e| io(&settings_path, format!("`model`: {e}")))?;
        // A checkpoint is named after its step: a state.json of another step (an earlier checkpoint's, checksums
        // recomputed) would resume the schedule there with this checkpoint's weights.
        if state.step != named_step {
            return Err(Error::Checkpoint {
                path: state_path,
                reason: format!(
                    "step {}, but the checkpoint `{name}` was written at step {named_step}",
                    state.step
                ),
            });
        }
        // state.json's data set size before the model is built: it sizes the schedule.
        if state.dataset_len < config.batch_size {
            return Err(Error::Checkpoint {
                path: state_path,
                reason: format!(
                    "a data set of {} images, fewer than one batch of {}",
                    state.dataset_len, config.batch_size
                ),
            });
        }
        // The settings are checked (model sizes bounded) before the model is built.
        let mut trainer = Self::new(
            model_config,
            config,
            settings.normalization,
            device,
            state.dataset_len,
        )
        .map_err(|e| Error::Checkpoint {
            path: ckpt.clone(),
            reason: format!("settings.json: {e}"),
        })?;
        let model_file = ckpt.join("model.bpk");
        trainer.model = match trainer.model.clone().try_load_file(&model_file) {
            Ok(model) => model,
            // A checkpoint written before the encoder could be of either family.
            Err(e) => match trainer.model.clone().try_load_legacy_file(&model_file) {
                Some(Ok(model)) => model,
                _ => {
                    return Err(Error::Checkpoint {
                        path: ckpt,
                        reason: format!(
                            "model.bpk does not fit the model settings.json describes: {}",
                            summarize(&e.to_string())
                        ),
                    });
                }
            },
        };
        integrity::check_finite_module(&model_file, &trainer.model)?;
        // Velocities read on this thread are logged as they are read (see `take_loaded_states`).
        let _ = crate::optim::take_loaded_states();
        trainer.optim =
            trainer
                .optim
                .load(ckpt.join("optim.bpk"))
                .map_err(|e| Error::Checkpoint {
                    path: ckpt.clone(),
                    reason: format!(
                        "optim.bpk does not fit the model settings.json describes: {}",
                        summarize(&e.to_string())
                    ),
                })?;
        let loaded = crate::optim::take_loaded_states();
        if let Some((key, index, value)) = loaded.non_finite {
            return Err(Error::NonFiniteWeight {
                path: ckpt.join("optim.bpk"),
                tensor: key,
                index,
                value: f64::from(value),
            });
        }
        // The rest of state.json once the settings are known to be in range (the loss bound uses them).
        check_state(&state, &trainer.config).map_err(|reason| Error::Checkpoint {
            path: ckpt.join("state.json"),
            reason,
        })?;
        check_velocities(&trainer.model, &loaded.shapes, state.step).map_err(|reason| {
            Error::Checkpoint {
                path: ckpt.join("optim.bpk"),
                reason,
            }
        })?;
        // A step past the schedule's end (u64::MAX, say) would "resume" into a run that trains nothing and
        // writes checkpoints named after it.
        if state.step > trainer.total_steps() {
            return Err(Error::Checkpoint {
                path: ckpt,
                reason: format!(
                    "state.json: step {} is past the schedule's {} steps",
                    state.step,
                    trainer.total_steps()
                ),
            });
        }
        trainer.state = state;
        trainer.run = settings.run;
        Ok(trainer)
    }
}

/// The optimizer state belongs to this model: after a step every trained parameter has a velocity of its own shape,
/// keyed by its id (which the checkpoint's model.bpk restores); before the first step there is none. The state
/// of another run, or of another architecture with checksums recomputed, has other ids or shapes: Burn would
/// silently drop it and restart the momentum from zero.
fn check_velocities(
    model: &crate::SimClr,
    loaded: &[(String, Vec<usize>)],
    step: u64,
) -> std::result::Result<(), String> {
    struct Shapes(std::collections::BTreeMap<String, Vec<usize>>);
    impl burn::module::ModuleVisitor for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            // Trained parameters only: batch norm's running statistics are parameters without gradients.
            if param.val().is_require_grad() {
                self.0
                    .insert(param.id.val().to_string(), param.lazy_shape().to_vec());
            }
        }
    }
    let mut params = Shapes(Default::default());
    model.visit(&mut params);
    let params = params.0;
    if step == 0 {
        return match loaded.first() {
            None => Ok(()),
            Some((id, _)) => Err(format!("a velocity (parameter {id}) before the first step")),
        };
    }
    let mut seen = std::collections::BTreeSet::new();
    for (id, shape) in loaded {
        match params.get(id) {
            None => {
                return Err(format!(
                    "a velocity for parameter {id}, which this model does not have (the state of another run?)"
                ));
            }
            Some(expected) if expected != shape => {
                return Err(format!(
                    "the velocity of parameter {id} has shape {shape:?}, the parameter {expected:?}"
                ));
            }
            Some(_) => {
                seen.insert(id.as_str());
            }
        }
    }
    if seen.len() != params.len() {
        return Err(format!(
            "velocities for {} of the model's {} trained parameters after {step} steps",
            seen.len(),
            params.len()
        ));
    }
    Ok(())
}

/// What a run writes into `state.json` holds together: one loss per step, each within NT-Xent's range; k-NN evaluations at
/// steps done, in order, with accuracies in [0, 1]. Anything else was edited, and would be reported as results.
fn check_state(state: &TrainState, config: &TrainConfig) -> std::result::Result<(), String> {
    let batch_size = config.batch_size;
    if state.losses.len() as u64 != state.step {
        return Err(format!(
            "{} losses for {} steps (one per step)",
            state.losses.len(),
            state.step
        ));
    }
    // NT-Xent is a cross-entropy over 2N − 1 candidates of cosine / τ, cosines in [−1, 1]: it lies in
    // [0, 2/τ + ln(2N − 1)] (N the batch; micro-batches are smaller, and their mean stays below). A run stops
    // at a non-finite loss. (f32 rounding: a relative margin.)
    let most =
        (2.0 / config.temperature + (2.0 * batch_size as f64 - 1.0).max(1.0).ln()) * (1.0 + 1e-4);
    if let Some(i) = state
        .losses
        .iter()
        .position(|&l| !(l.is_finite() && l >= 0.0 && f64::from(l) <= most))
    {
        return Err(format!(
            "the loss of step {} is {} (NT-Xent losses lie in [0, {most:.3}] at temperature {} and batch {batch_size})",
            i + 1,
            state.losses[i],
            config.temperature
        ));
    }
    let mut last = 0;
    for &(step, accuracy) in &state.knn {
        if step > state.step || step < last {
            return Err(format!(
                "a k-NN evaluation at step {step}: after the run's {} steps, or out of order",
                state.step
            ));
        }
        if !(0.0..=1.0).contains(&accuracy) {
            return Err(format!(
                "a k-NN accuracy of {accuracy} at step {step} (a fraction in [0, 1])"
            ));
        }
        last = step;
    }
    Ok(())
}

/// A load error of Burn in a line: its records' errors list every mismatched tensor (`Apply errors: ["a", "b",
/// …]`, kilobytes for a whole model), shown as the first and how many more.
fn summarize(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let short = match line.split_once(": [\"") {
        Some((head, list)) => {
            let items: Vec<&str> = list.trim_end_matches("\"]").split("\", \"").collect();
            let more = match items.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            format!(
                "{head}: {}{more}",
                items.first().copied().unwrap_or_default()
            )
        }
        None => line.to_string(),
    };
    match short.char_indices().nth(400) {
        Some((cut, _)) => format!("{} …", &short[..cut]),
        None => short,
    }
}

/// A small file of a checkpoint (`latest`, settings, state) as text, read whole within
/// [`Limits::max_file_bytes`](cadet_core::limits::Limits::max_file_bytes) (regular files only).
fn read_small(path: &Path) -> Result<String> {
    let bytes =
        cadet_core::limits::read_capped(path, cadet_core::limits::Limits::default().max_file_bytes)
            .map_err(|e| Error::reading(path, e))?;
    String::from_utf8(bytes).map_err(|_| io(path, "not UTF-8 text"))
}

/// Whether `name` is a temporary of this module's writes: a checkpoint folder staged by
/// [`cadet_core::io::staging_dir`] (`.ckpt-<step>[-k].XXXXXX.tmp`) or `latest` written by
/// [`cadet_core::io::write_atomic`] (`.latest.XXXXXX.tmp`), where `XXXXXX` is tempfile's six random
/// alphanumerics.
fn is_temporary(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let Some((target, random)) = rest.rsplit_once('.') else {
        return false;
    };
    let random_ok = random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric());
    random_ok && (target == "latest" || parse_checkpoint(target).is_some())
}

/// Removes the temporaries of this module's writes that a killed process left in `dir` (see [`is_temporary`]);
/// nothing else. A missing folder is fine.
fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        if !is_temporary(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io_error(&path))?;
        // Only what a killed write of this module leaves: a staged folder of checkpoint files (nothing else in
        // it, removed file by file, so a subfolder or a mount is never entered), or a `latest` in progress (a
        // few bytes of a checkpoint's name). An input named like a temporary is left alone (hostile pass 19:
        // an image folder and a .npy named so were deleted when a checkpoint was read).
        let removed = if kind.is_dir() {
            cadet_core::io::remove_flat_folder(&path, is_checkpoint_file)
        } else if kind.is_file() && is_latest_in_progress(&path) {
            std::fs::remove_file(&path).map(|()| true)
        } else {
            Ok(false)
        };
        removed.map_err(io_error(&path))?;
    }
    Ok(())
}

/// Whether `name` is one of a checkpoint folder's files.
fn is_checkpoint_file(name: &str) -> bool {
    CHECKPOINT_FILES.contains(&name) || name == integrity::MANIFEST
}

/// Whether the file at `path` is what a killed write of `latest` leaves: at most 64 bytes of (the start of) a
/// checkpoint's name.
fn is_latest_in_progress(path: &Path) -> bool {
    let Ok(bytes) = cadet_core::limits::read_capped(path, 64) else {
        return false;
    };
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_end();
    let name = "ckpt-";
    text.len() <= name.len() && name.starts_with(text)
        || text
            .strip_prefix(name)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
}

/// A run's settings as a checkpoint holds them. Those written before data parallelism have no `shards` and
/// `sync_batch_norm` (Burn's `Config` deserialisation requires every field): they were one-device runs.
fn read_train_config(mut train: serde_json::Value) -> serde_json::Result<TrainConfig> {
    if let Some(fields) = train.as_object_mut() {
        fields.entry("shards").or_insert(1.into());
        fields.entry("sync_batch_norm").or_insert(true.into());
    }
    serde_json::from_value(train)
}

/// The files of a checkpoint, each with its checksum in `checksums.json`.
const CHECKPOINT_FILES: [&str; 4] = ["model.bpk", "optim.bpk", "settings.json", "state.json"];

/// Whether the checkpoint folder `path` holds only what a checkpoint is made of (its files and their
/// checksums), all regular files: only then may pruning or `--overwrite` remove it whole.
fn only_checkpoint_files(path: &Path) -> Result<bool> {
    for entry in std::fs::read_dir(path).map_err(io_error(path))? {
        let entry = entry.map_err(io_error(path))?;
        let name = entry.file_name();
        let known = CHECKPOINT_FILES
            .iter()
            .chain(&[crate::integrity::MANIFEST])
            .any(|f| name == *f);
        let regular = entry.file_type().map_err(io_error(path))?.is_file();
        if !(known && regular) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The lock file of a checkpoint folder (never removed: a second file would make a second lock).
const LOCK_FILE: &str = ".lock";

/// An exclusive advisory lock on a checkpoint folder (`dir/.lock`), held while a trainer writes there: a second
/// process training into the same folder is refused, instead of each removing the other's writes in progress.
/// The lock dies with the process, so a killed run leaves nothing to clean.
pub(super) struct FolderLock {
    dir: PathBuf,
    file: std::fs::File,
}

impl FolderLock {
    /// Takes the lock of `dir` (created if needed); `Ok(None)` when another process holds it.
    fn try_acquire(dir: &Path) -> Result<Option<Self>> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let path = dir.join(LOCK_FILE);
        // A FIFO or a device planted as the lock file would block or misbehave: only a regular file.
        if let Ok(meta) = std::fs::symlink_metadata(&path)
            && !meta.is_file()
        {
            return Err(Error::Checkpoint {
                path,
                reason: "the folder's lock file is not a regular file".into(),
            });
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self {
                dir: dir.canonicalize().map_err(io_error(dir))?,
                file,
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Io { path, source: e }),
        }
    }

    /// Takes the lock of `dir`, or says the folder is in use.
    pub(super) fn acquire(dir: &Path) -> Result<Self> {
        Self::try_acquire(dir)?.ok_or_else(|| Error::Checkpoint {
            path: dir.to_path_buf(),
            reason: "in use by another training process (it holds the folder's lock): wait for it to end, \
                     or choose another folder"
                .into(),
        })
    }

    /// Whether this is the lock of `dir`.
    pub(super) fn holds(&self, dir: &Path) -> bool {
        dir.canonicalize().is_ok_and(|d| d == self.dir)
    }

    /// Checks that `.lock` is still the file this lock holds: a lock file deleted or replaced by hand while a
    /// run trains would let a second run in, so the first stops at its next checkpoint instead of writing on.
    pub(super) fn check_still_held(&self) -> Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let path = self.dir.join(LOCK_FILE);
            let ours = self.file.metadata().map_err(io_error(&path))?;
            let same = std::fs::symlink_metadata(&path)
                .is_ok_and(|now| now.dev() == ours.dev() && now.ino() == ours.ino());
            if !same {
                return Err(Error::Checkpoint {
                    path,
                    reason: "the folder's lock file was removed or replaced while this run trained: another \
                             run may be writing here, so this one stops (its last checkpoint is kept)"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

/// `(step, k)` of a checkpoint folder named `ckpt-<step>` or `ckpt-<step>-<k>`.
fn parse_checkpoint(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("ckpt-")?;
    let (step, k) = match rest.split_once('-') {
        Some((step, k)) => (step, k.parse().ok()?),
        None => (rest, 0),
    };
    if step.is_empty() || !step.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((step.parse().ok()?, k))
}

/// The checkpoint folders of `dir`, sorted by `(step, k)` (oldest first).
fn checkpoints_in(dir: &Path) -> Result<Vec<((u64, u64), String)>> {
    let mut found: Vec<((u64, u64), String)> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            parse_checkpoint(&name).map(|key| (key, name))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// JSON for the small files of a checkpoint.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string_pretty(self).expect("plain data serialises")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LarsConfig;

    #[test]
    fn settings_without_shards_read_as_one_device() {
        let config = TrainConfig::new(8, 1, LarsConfig::new()).with_shards(2);
        let mut json = serde_json::to_value(&config).unwrap();
        assert_eq!(read_train_config(json.clone()).unwrap().shards, 2);
        let fields = json.as_object_mut().unwrap();
        assert!(fields.remove("shards").is_some() && fields.remove("sync_batch_norm").is_some());
        let old = read_train_config(json).unwrap();
        assert_eq!((old.shards, old.sync_batch_norm), (1, true));
    }

    /// Checkpoints are ordered by step, not by name: `ckpt-100000000` is newer than `ckpt-99999999`, and a
    /// second checkpoint of one step (`-1`) is newer than the first.
    #[test]
    fn checkpoints_sort_by_step() {
        assert_eq!(parse_checkpoint("ckpt-00000050"), Some((50, 0)));
        assert_eq!(parse_checkpoint("ckpt-00000050-2"), Some((50, 2)));
        assert_eq!(parse_checkpoint("ckpt-"), None);
        assert_eq!(parse_checkpoint("ckpt-12a"), None);
        assert_eq!(parse_checkpoint("ckpt-1-x"), None);
        assert_eq!(parse_checkpoint(".ckpt-1.tmp"), None);
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "ckpt-100000000",
            "ckpt-99999999",
            "ckpt-99999999-1",
            "notes",
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        let names: Vec<String> = checkpoints_in(dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(
            names,
            ["ckpt-99999999", "ckpt-99999999-1", "ckpt-100000000"]
        );
    }
}
