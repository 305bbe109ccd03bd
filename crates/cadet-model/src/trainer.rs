//! SimCLR training: seeded batches of two views, LARS with warm-up and cosine decay, gradient accumulation,
//! progress, and checkpoints that a later run resumes from exactly where this one stopped.
//!
//! Sample order and views depend only on the seed and the step, so a resumed run sees what the uninterrupted
//! run would have seen. A checkpoint is a folder `ckpt-<step>` (model and optimizer in Burn's burnpack format,
//! which keeps the parameter ids the optimizer state is keyed by; state and settings in JSON), written under a
//! temporary name and renamed, then named in the file `latest` (also replaced atomically).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use cadet_core::Progress;
use ndarray::Array4;
use serde::{Deserialize, Serialize};

use crate::{
    BurnEmbedder, Error, KnnMonitor, LarsConfig, Normalization, Result, SimClr, SimClrConfig,
    WarmupCosine,
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
    model: SimClr,
    optim: ModuleOptimizer,
    state: TrainState,
    monitor: Option<KnnMonitor>,
}

#[derive(Serialize, Deserialize)]
struct Settings {
    train: serde_json::Value,
    model: serde_json::Value,
    normalization: Normalization,
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
            || config.batch_size % config.accumulation != 0
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
        if dataset_len < config.batch_size || config.epochs == 0 {
            return Err(Error::InvalidConfig {
                name: "epochs",
                reason: format!(
                    "{dataset_len} images for batches of {}, {} epochs",
                    config.batch_size, config.epochs
                ),
            });
        }
        let device = device.clone().autodiff();
        // Initialisation draws from the device's generator, which is shared by every thread: seed it and
        // initialise under one lock so a run is reproducible even while other models are being built.
        let net = {
            static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            device.seed(config.seed);
            let net = model.init(&device)?;
            // Burn draws initial weights lazily, on first use: draw them all now, under the lock.
            net.visit(&mut Materialize);
            net
        };
        let optim = config.lars.init()?;
        Ok(Self {
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
        })
    }

    /// Steps per epoch (incomplete last batches are dropped).
    pub fn steps_per_epoch(&self) -> u64 {
        (self.state.dataset_len / self.config.batch_size) as u64
    }

    /// Steps in the whole schedule.
    pub fn total_steps(&self) -> u64 {
        self.steps_per_epoch() * self.config.epochs as u64
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

    fn tensor(&self, a: Array4<f32>) -> Tensor<4> {
        let (n, c, h, w) = a.dim();
        let x = Tensor::<4>::from_data(
            TensorData::new(a.into_raw_vec_and_offset().0, [n, c, h, w]),
            &self.device,
        );
        self.normalization.apply(x)
    }

    /// One optimizer step; returns its loss (mean over micro-batches).
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
            let loss = self
                .model
                .loss(self.tensor(v1), self.tensor(v2), self.config.temperature)
                / self.config.accumulation as f64;
            total += loss.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            accumulator.accumulate(&self.model, grads);
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
    /// `checkpoints` every `every` steps and at the end.
    pub fn train(
        &mut self,
        data: &dyn ViewPairs,
        progress: &dyn Progress,
        stop: StopAfter,
        checkpoints: Option<(&Path, u64)>,
    ) -> Result<()> {
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
            progress.note(&format!(
                "step {} loss {loss:.4} lr {:.4} {:.1} img/s",
                self.state.step,
                self.schedule().lr(self.state.step - 1),
                self.config.batch_size as f64 / t.elapsed().as_secs_f64()
            ));
            if self
                .monitor
                .as_ref()
                .is_some_and(|m| self.state.step % m.every() == 0)
            {
                self.monitor_now(progress)?;
            }
            if let Some((dir, every)) = checkpoints
                && every > 0
                && self.state.step % every == 0
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

    /// Writes `dir/ckpt-<step>` and points `dir/latest` at it, atomically.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let name = format!("ckpt-{:08}", self.state.step);
        let final_dir = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        self.model
            .clone()
            .save_file(tmp.join("model.bpk"))
            .map_err(|e| io(&tmp, format!("{e:?}")))?;
        self.optim
            .save(tmp.join("optim.bpk"))
            .map_err(|e| io(&tmp, format!("{e:?}")))?;
        let settings = Settings {
            train: serde_json::to_value(&self.config).map_err(|e| io(&tmp, e))?,
            model: serde_json::to_value(&self.model_config).map_err(|e| io(&tmp, e))?,
            normalization: self.normalization,
        };
        let write = |file: &str, value: &dyn erased::Json| -> Result<()> {
            std::fs::write(tmp.join(file), value.json()).map_err(|e| io(&tmp, e))
        };
        write("settings.json", &settings)?;
        write("state.json", &self.state)?;
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&tmp, &final_dir).map_err(|e| io(&final_dir, e))?;
        let latest_tmp = dir.join(".latest.tmp");
        std::fs::write(&latest_tmp, &name).map_err(|e| io(&latest_tmp, e))?;
        std::fs::rename(&latest_tmp, dir.join("latest")).map_err(|e| io(dir, e))?;
        // Older checkpoints go only once the new one is complete and named in `latest`.
        let mut old: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("ckpt-"))
            })
            .collect();
        old.sort();
        let keep = self.config.keep_checkpoints.max(1);
        for stale in old.iter().take(old.len().saturating_sub(keep)) {
            std::fs::remove_dir_all(stale).map_err(|e| io(stale, e))?;
        }
        Ok(final_dir)
    }

    /// Resumes from the checkpoint `dir/latest` names, on `device`.
    pub fn resume(dir: &Path, device: &Device) -> Result<Self> {
        let latest =
            std::fs::read_to_string(dir.join("latest")).map_err(|e| io(&dir.join("latest"), e))?;
        let ckpt = dir.join(latest.trim());
        let read = |file: &str| -> Result<String> {
            std::fs::read_to_string(ckpt.join(file)).map_err(|e| io(&ckpt.join(file), e))
        };
        let settings: Settings =
            serde_json::from_str(&read("settings.json")?).map_err(|e| io(&ckpt, e))?;
        let state: TrainState =
            serde_json::from_str(&read("state.json")?).map_err(|e| io(&ckpt, e))?;
        let config: TrainConfig =
            serde_json::from_value(settings.train).map_err(|e| io(&ckpt, e))?;
        let model_config: SimClrConfig =
            serde_json::from_value(settings.model).map_err(|e| io(&ckpt, e))?;
        let mut trainer = Self::new(
            model_config,
            config,
            settings.normalization,
            device,
            state.dataset_len,
        )?;
        trainer.model = trainer
            .model
            .clone()
            .try_load_file(ckpt.join("model.bpk"))
            .map_err(|e| io(&ckpt, format!("{e:?}")))?;
        trainer.optim = trainer
            .optim
            .load(ckpt.join("optim.bpk"))
            .map_err(|e| io(&ckpt, format!("{e:?}")))?;
        trainer.state = state;
        Ok(trainer)
    }
}

/// Touches every float parameter, which makes Burn draw lazily initialised weights.
struct Materialize;

impl burn::module::ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let _ = param.val();
    }
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
