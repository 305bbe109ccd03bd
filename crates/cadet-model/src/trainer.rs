//! SimCLR training: seeded batches of two views, LARS with warm-up and cosine decay, gradient accumulation,
//! progress, and checkpoints that a later run resumes from exactly where this one stopped.
//!
//! Sample order and views depend only on the seed and the step, so a resumed run sees what the uninterrupted
//! run would have seen. A checkpoint is a folder `ckpt-<step>` (model and optimizer in Burn's burnpack format,
//! which keeps the parameter ids the optimizer state is keyed by; state and settings in JSON), written under a
//! unique temporary name, synced and renamed, then named in the file `latest` (also replaced atomically); a
//! `checksums.json` records the SHA-256 of each file, checked on resume. A folder holds one run: a fresh run
//! refuses a folder with another run's checkpoints.
//!
//! Data parallelism ([`TrainConfig::shards`]): each micro-batch is cut into shards, one per device, through
//! [`SimClr::sharded_loss`]; with synchronised batch norm a sharded run is the one-device run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use cadet_core::Progress;
use ndarray::Array4;
use serde::{Deserialize, Serialize};

use crate::integrity::{self, io_error};
use crate::{
    BurnEmbedder, Error, KnnMonitor, LarsConfig, Normalization, Result, ShardNorm, SimClr,
    SimClrConfig, WarmupCosine,
};

/// A source of two views per image (e.g. `cadet-augment`'s `simclr_train` over a data set).
pub trait ViewPairs: Sync {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there is no image.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Two views of each image in `indices`, `(n, C, H, W)` each in `[0, 1]`, drawn with `seed`.
    fn pairs(&self, indices: &[usize], seed: u64) -> Result<(Array4<f32>, Array4<f32>)>;
}

/// Settings of a training run.
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// Images per optimizer step (the effective batch; the paper: 1024).
    pub batch_size: usize,
    /// Epochs in the schedule.
    pub epochs: usize,
    /// Micro-batches per step: gradients of `batch_size / accumulation` images at a time are summed. NT-Xent's
    /// negatives come from the micro-batch.
    #[config(default = 1)]
    pub accumulation: usize,
    /// Peak learning rate; `None`: SimCLR's `0.3 × batch_size / 256`.
    #[config(default = "None")]
    pub base_lr: Option<f64>,
    /// Epochs of linear warm-up (the paper: 40 of 800).
    #[config(default = 1.0)]
    pub warmup_epochs: f64,
    /// The optimizer.
    pub lars: LarsConfig,
    /// NT-Xent temperature.
    #[config(default = 0.1)]
    pub temperature: f64,
    /// Seed of the sample order and of the views.
    #[config(default = 0)]
    pub seed: u64,
    /// Checkpoints kept in the checkpoint folder (the newest ones; at least 1).
    #[config(default = 3)]
    pub keep_checkpoints: usize,
    /// Data parallelism: each micro-batch is cut into this many equal shards of consecutive images, one per
    /// device (see [`SimClrTrainer::with_shard_devices`]); NT-Xent sees the embeddings of every shard. The paper
    /// trains on 8 devices.
    #[config(default = 1)]
    pub shards: usize,
    /// Synchronised batch norm across shards (the paper's setting): the run is then that of one device with
    /// the whole micro-batch. Off: each shard normalises with its own statistics.
    #[config(default = true)]
    pub sync_batch_norm: bool,
}

impl TrainConfig {
    /// The batch norm of shards this configuration asks for.
    pub fn shard_norm(&self) -> ShardNorm {
        if self.sync_batch_norm {
            ShardNorm::Synchronized
        } else {
            ShardNorm::PerShard
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: u64,
    /// Loss of every step done.
    pub losses: Vec<f32>,
    /// Images in the data set trained on.
    pub dataset_len: usize,
    /// `(step, accuracy)` of every [`KnnMonitor`] evaluation (empty without a monitor).
    #[serde(default)]
    pub knn: Vec<(u64, f64)>,
}

/// When [`SimClrTrainer::train`] returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct StopAfter {
    /// At most this many more steps.
    pub steps: Option<u64>,
    /// At most this much time (checked between steps).
    pub time: Option<Duration>,
}

/// A SimCLR training run.
pub struct SimClrTrainer {
    config: TrainConfig,
    model_config: SimClrConfig,
    normalization: Normalization,
    device: Device,
    /// The (autodiff) device of each shard.
    shard_devices: Vec<Device>,
    model: SimClr,
    optim: ModuleOptimizer,
    state: TrainState,
    monitor: Option<KnnMonitor>,
    run: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Settings {
    train: serde_json::Value,
    model: serde_json::Value,
    normalization: Normalization,
    /// The run's identity (absent in checkpoints of older versions).
    #[serde(default)]
    run: Option<u64>,
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Weights {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

impl SimClrTrainer {
    /// A fresh run on `device` (training happens on its autodiff version) over `dataset_len` images.
    pub fn new(
        model: SimClrConfig,
        config: TrainConfig,
        normalization: Normalization,
        device: &Device,
        dataset_len: usize,
    ) -> Result<Self> {
        if config.batch_size < 2
            || config.accumulation == 0
            || !config.batch_size.is_multiple_of(config.accumulation)
            || config.batch_size / config.accumulation < 2
        {
            return Err(Error::InvalidConfig {
                name: "batch_size",
                reason: format!(
                    "need batch_size divisible by accumulation with ≥ 2 images per micro-batch: {} / {}",
                    config.batch_size, config.accumulation
                ),
            });
        }
        let micro = config.batch_size / config.accumulation;
        if config.shards == 0 || !micro.is_multiple_of(config.shards) {
            return Err(Error::InvalidConfig {
                name: "shards",
                reason: format!(
                    "need micro-batches ({micro} images) divisible by the shards, at least 1: {}",
                    config.shards
                ),
            });
        }
        if config.shards > 1 && matches!(model.encoder, crate::EncoderConfig::SimClrV2 { .. }) {
            return Err(Error::InvalidConfig {
                name: "shards",
                reason: format!(
                    "{} shards: data-parallel training supports torchvision-layout encoders only, not SimCLRv2's",
                    config.shards
                ),
            });
        }
        // Numbers that also come from checkpoints' settings: a NaN temperature or learning rate would only
        // show later, as a "diverged" loss.
        let numbers = [
            ("temperature", config.temperature, 0.0 < config.temperature),
            (
                "warmup_epochs",
                config.warmup_epochs,
                0.0 <= config.warmup_epochs,
            ),
            (
                "base_lr",
                config.base_lr.unwrap_or(1.0),
                config.base_lr.unwrap_or(1.0) > 0.0,
            ),
        ];
        if let Some((name, value, _)) = numbers
            .into_iter()
            .find(|&(_, v, in_range)| !(in_range && v.is_finite()))
        {
            return Err(Error::InvalidConfig {
                name,
                reason: format!("{value}: a finite number in range is needed"),
            });
        }
        normalization.check()?;
        if dataset_len < config.batch_size {
            return Err(Error::InvalidConfig {
                name: "batch_size",
                reason: format!(
                    "{} images per batch, but the data set has only {dataset_len}: use a batch of at most \
                     {dataset_len}",
                    config.batch_size
                ),
            });
        }
        if config.epochs == 0 {
            return Err(Error::InvalidConfig {
                name: "epochs",
                reason: "at least 1, got 0".into(),
            });
        }
        let device = device.clone().autodiff();
        let net = model.init_seeded(&device, config.seed)?;
        let optim = config.lars.init()?;
        Ok(Self {
            shard_devices: vec![device.clone(); config.shards],
            config,
            model_config: model,
            normalization,
            device,
            model: net,
            optim,
            state: TrainState {
                step: 0,
                losses: Vec::new(),
                dataset_len,
                knn: Vec::new(),
            },
            monitor: None,
            run: Some(new_run_id()),
        })
    }

    /// Puts shard `s` on `devices[s]` (one device per [`TrainConfig::shards`]; by default every shard is on the
    /// run's device). The model stays on the run's device; each step copies it to the other devices, and the
    /// gradients of every shard come back to it in the backward pass. A device may take several shards.
    pub fn with_shard_devices(mut self, devices: &[Device]) -> Result<Self> {
        if devices.len() != self.config.shards {
            return Err(Error::InvalidConfig {
                name: "devices",
                reason: format!(
                    "{} devices for {} shards: give one device per shard",
                    devices.len(),
                    self.config.shards
                ),
            });
        }
        self.shard_devices = devices.iter().map(|d| d.clone().autodiff()).collect();
        Ok(self)
    }

    /// The (autodiff) device of each shard.
    pub fn shard_devices(&self) -> &[Device] {
        &self.shard_devices
    }

    /// Steps per epoch (incomplete last batches are dropped).
    pub fn steps_per_epoch(&self) -> u64 {
        (self.state.dataset_len / self.config.batch_size) as u64
    }

    /// Steps in the whole schedule.
    pub fn total_steps(&self) -> u64 {
        // Saturating: settings read from a checkpoint may claim any number of epochs.
        self.steps_per_epoch()
            .saturating_mul(self.config.epochs as u64)
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> WarmupCosine {
        let per_epoch = self.steps_per_epoch() as f64;
        WarmupCosine {
            base_lr: self
                .config
                .base_lr
                .unwrap_or_else(|| WarmupCosine::simclr_base_lr(self.config.batch_size)),
            warmup_steps: (self.config.warmup_epochs * per_epoch).round() as u64,
            total_steps: self.total_steps(),
        }
    }

    /// Where the run stands.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// The run's settings (a resumed run keeps those of its first start).
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The input normalisation the run trains with.
    pub fn normalization(&self) -> Normalization {
        self.normalization
    }

    /// The model (on the autodiff device).
    pub fn model(&self) -> &SimClr {
        &self.model
    }

    /// The images of step `step`: a seeded permutation per epoch, cut into batches.
    fn batch_indices(&self, step: u64) -> Vec<usize> {
        let per_epoch = self.steps_per_epoch();
        let (epoch, k) = (step / per_epoch, (step % per_epoch) as usize);
        let order = crate::supervised::epoch_order(self.state.dataset_len, self.config.seed, epoch);
        order[k * self.config.batch_size..(k + 1) * self.config.batch_size].to_vec()
    }

    fn tensor(&self, a: Array4<f32>, device: &Device) -> Tensor<4> {
        self.normalization.apply(crate::array_to_tensor(a, device))
    }

    /// The loss of one micro-batch: its views cut into the shards, each on its device with its replica.
    fn micro_batch_loss(
        &self,
        images: usize,
        v1: Array4<f32>,
        v2: Array4<f32>,
    ) -> Result<Tensor<1>> {
        if v1.dim() != v2.dim() || v1.dim().0 != images {
            return Err(Error::ImageShape {
                channels: v1.dim().1,
                got: vec![v2.dim().0, v2.dim().1, v2.dim().2, v2.dim().3],
            });
        }
        let per_shard = images / self.config.shards;
        let replicas: Vec<SimClr> = self
            .shard_devices
            .iter()
            .map(|d| match *d == self.device {
                true => self.model.clone(),
                // A tracked copy: the backward pass brings this shard's gradients back to the model.
                false => self.model.clone().to_device(d),
            })
            .collect();
        let views = self
            .shard_devices
            .iter()
            .enumerate()
            .map(|(s, d)| {
                let rows = ndarray::s![s * per_shard..(s + 1) * per_shard, .., .., ..];
                (
                    self.tensor(v1.slice(rows).to_owned(), d),
                    self.tensor(v2.slice(rows).to_owned(), d),
                )
            })
            .collect();
        let replicas: Vec<&SimClr> = replicas.iter().collect();
        SimClr::sharded_loss(
            &replicas,
            views,
            self.config.temperature,
            self.config.shard_norm(),
        )
    }

    /// One optimizer step; returns its loss (mean over micro-batches). A NaN or infinite loss is an
    /// [`Error::NonFiniteLoss`] and leaves the weights, the optimizer and the state as they were; batch norm's
    /// running statistics, which the forward pass updates, have seen the failed batch (as they have after an
    /// error from a later micro-batch): resume from the last checkpoint to undo that.
    pub fn step(&mut self, data: &dyn ViewPairs) -> Result<f32> {
        if data.len() != self.state.dataset_len {
            return Err(Error::InvalidConfig {
                name: "data",
                reason: format!(
                    "{} images, the run was set up for {}",
                    data.len(),
                    self.state.dataset_len
                ),
            });
        }
        let step = self.state.step;
        let indices = self.batch_indices(step);
        let micro = self.config.batch_size / self.config.accumulation;
        let mut accumulator = GradientsAccumulator::new();
        let mut total = 0.0f32;
        for (m, chunk) in indices.chunks(micro).enumerate() {
            let seed = self.config.seed ^ (step << 16) ^ m as u64;
            let (v1, v2) = data.pairs(chunk, seed)?;
            let loss =
                self.micro_batch_loss(chunk.len(), v1, v2)? / self.config.accumulation as f64;
            total += loss.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            accumulator.accumulate(&self.model, grads);
        }
        if !total.is_finite() {
            return Err(Error::NonFiniteLoss {
                step: step + 1,
                value: total,
            });
        }
        let lr = self.schedule().lr(step);
        self.model = self.optim.step(lr, self.model.clone(), accumulator.grads());
        self.state.step += 1;
        self.state.losses.push(total);
        Ok(total)
    }

    /// Watches the run with `monitor`: its k-NN accuracy every `monitor.every()` steps and at the end of
    /// [`Self::train`], reported as progress notes and kept in [`TrainState::knn`].
    pub fn with_monitor(mut self, monitor: KnnMonitor) -> Self {
        self.monitor = Some(monitor);
        self
    }

    /// Evaluates the monitor (if any) on the current encoder and records the result.
    fn monitor_now(&mut self, progress: &dyn Progress) -> Result<()> {
        let Some(monitor) = &self.monitor else {
            return Ok(());
        };
        if self
            .state
            .knn
            .last()
            .is_some_and(|&(s, _)| s == self.state.step)
        {
            return Ok(());
        }
        let embedder = BurnEmbedder::new(
            self.model.encoder.clone(),
            self.device.clone(),
            self.normalization,
            "monitor",
        );
        let accuracy = monitor.accuracy(&embedder)?;
        self.state.knn.push((self.state.step, accuracy));
        progress.note(&format!(
            "step {} kNN accuracy {:.1}%",
            self.state.step,
            100.0 * accuracy
        ));
        Ok(())
    }

    /// Trains until the schedule ends or `stop` says so, reporting progress and writing a checkpoint into
    /// `checkpoints` every `every` steps and at the end (see [`Self::save_checkpoint`]; a folder holding
    /// another run is refused before the first step).
    pub fn train(
        &mut self,
        data: &dyn ViewPairs,
        progress: &dyn Progress,
        stop: StopAfter,
        checkpoints: Option<(&Path, u64)>,
    ) -> Result<()> {
        if let Some((dir, _)) = checkpoints
            && dir.is_dir()
        {
            // A folder this run may not write to is refused before any step is spent.
            self.check_folder(dir)?;
        }
        let start = Instant::now();
        let first = self.state.step;
        progress.start("SimCLR training", self.total_steps().saturating_sub(first));
        while self.state.step < self.total_steps() {
            if stop.steps.is_some_and(|s| self.state.step - first >= s)
                || stop.time.is_some_and(|t| start.elapsed() >= t)
            {
                break;
            }
            let t = Instant::now();
            let loss = self.step(data)?;
            progress.advance(1);
            let rate = self.config.batch_size as f64 / t.elapsed().as_secs_f64();
            let per_device = match self.config.shards {
                1 => String::new(),
                n => format!(" ({:.1} img/s per shard, {n} shards)", rate / n as f64),
            };
            progress.note(&format!(
                "step {} loss {loss:.4} lr {:.4} {rate:.1} img/s{per_device}",
                self.state.step,
                self.schedule().lr(self.state.step - 1),
            ));
            if self
                .monitor
                .as_ref()
                .is_some_and(|m| self.state.step.is_multiple_of(m.every()))
            {
                self.monitor_now(progress)?;
            }
            if let Some((dir, every)) = checkpoints
                && every > 0
                && self.state.step.is_multiple_of(every)
            {
                self.save_checkpoint(dir)?;
            }
        }
        self.monitor_now(progress)?;
        progress.finish();
        if let Some((dir, _)) = checkpoints {
            self.save_checkpoint(dir)?;
        }
        Ok(())
    }

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
    fn check_folder(&self, dir: &Path) -> Result<Option<PathBuf>> {
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
            std::fs::remove_dir_all(&path).map_err(io_error(&path))?;
        }
        Ok(())
    }

    /// Removes the checkpoints of `dir` (its `latest` first, then every `ckpt-*` folder and leftover temporary
    /// of a checkpoint), so that a fresh run may use it. Refuses, removing nothing, when the folder holds
    /// anything else: it may not be a checkpoint folder. A missing folder is fine.
    pub fn clear_checkpoints(dir: &Path) -> Result<()> {
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
            let checkpoint = parse_checkpoint(&name).is_some() && entry.path().is_dir();
            let temporary = is_temporary(&name);
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
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(io_error(&path))?;
        }
        Ok(())
    }

    /// Resumes from the checkpoint `dir/latest` names, on `device`, after checking every file of it against
    /// the checksums recorded when it was written ([`Error::ChecksumMismatch`] for altered bytes).
    pub fn resume(dir: &Path, device: &Device) -> Result<Self> {
        remove_stale_temporaries(dir)?;
        let latest_path = dir.join("latest");
        let latest = read_small(&latest_path)?;
        let name = latest.trim();
        // `latest` names a folder beside it, never a path elsewhere.
        if parse_checkpoint(name).is_none() {
            return Err(Error::Checkpoint {
                path: dir.to_path_buf(),
                reason: format!(
                    "`latest` names `{name}`, not a checkpoint of this folder (ckpt-<step>)"
                ),
            });
        }
        let ckpt = dir.join(name);
        integrity::verify_manifest(&ckpt, &CHECKPOINT_FILES)?;
        let read = |file: &str| read_small(&ckpt.join(file));
        let settings: Settings =
            serde_json::from_str(&read("settings.json")?).map_err(|e| io(&ckpt, e))?;
        let state: TrainState =
            serde_json::from_str(&read("state.json")?).map_err(|e| io(&ckpt, e))?;
        let config = read_train_config(settings.train).map_err(|e| io(&ckpt, e))?;
        let model_config: SimClrConfig =
            serde_json::from_value(settings.model).map_err(|e| io(&ckpt, e))?;
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
        // Not followed: a link is removed itself, never what it points to.
        let removed = match entry.file_type().map_err(io_error(&path))?.is_dir() {
            true => std::fs::remove_dir_all(&path),
            false => std::fs::remove_file(&path),
        };
        removed.map_err(io_error(&path))?;
    }
    Ok(())
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

/// A run's identity: unique per fresh run, kept by resumed ones.
fn new_run_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
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
