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

use std::path::Path;
use std::time::{Duration, Instant};

use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use cadet_core::Progress;
use ndarray::Array4;
use serde::{Deserialize, Serialize};

mod checkpoints;
mod views;

use views::{Inline, Prefetch, ViewPlan, ViewSource, Views};
pub use views::{MAX_PREFETCH, Waits};

use crate::{
    BurnEmbedder, Error, KnnMonitor, LarsConfig, Normalization, Precision, Result, ShardNorm,
    SimClr, SimClrConfig, WarmupCosine,
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
    /// The lock of the checkpoint folder while [`train`](Self::train) writes to it.
    folder_lock: Option<checkpoints::FolderLock>,
    /// Micro-batches of views made ahead of the steps by [`train`](Self::train) (0: in the step).
    prefetch: usize,
    /// The forward pass's arithmetic (the weights and the optimizer stay f32).
    precision: Precision,
    /// Who waited for whom in the last [`train`](Self::train).
    waits: Waits,
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
        // Batch norm over a shard's own rows: with one image a shard holds its two views alone, which batch norm
        // maps to opposite vectors (every positive pair at cosine −1; the loss rises as it trains).
        if !config.sync_batch_norm && micro / config.shards < 2 {
            return Err(Error::InvalidConfig {
                name: "shards",
                reason: format!(
                    "{} image(s) per shard with per-shard batch norm: each shard needs at least 2 (or \
                     synchronised batch norm)",
                    micro / config.shards
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
        if config.epochs == 0 {
            return Err(Error::InvalidConfig {
                name: "epochs",
                reason: "at least 1, got 0".into(),
            });
        }
        // 0 would keep only the live checkpoint, pruning the one a resume started from, while saying "none".
        if config.keep_checkpoints == 0 {
            return Err(Error::InvalidConfig {
                name: "keep_checkpoints",
                reason: "at least 1 (the newest checkpoint is always kept), got 0".into(),
            });
        }
        // Numbers that also come from checkpoints' settings: a NaN temperature or learning rate would only
        // show later, as a "diverged" loss; a huge temperature (a constant loss), a warm-up longer than the
        // schedule (a learning rate that never rises; up to two epochs are allowed) or a negative weight decay
        // would train silently wrong.
        let (lr, lars) = (config.base_lr.unwrap_or(1.0), &config.lars);
        let numbers = [
            (
                "temperature",
                config.temperature,
                (1e-3..=100.0).contains(&config.temperature),
                "in [0.001, 100]".to_string(),
            ),
            (
                "warmup_epochs",
                config.warmup_epochs,
                // At most the schedule, or two epochs (the warm-up train_simclr has always written,
                // whatever the schedule's length).
                (0.0..=(config.epochs as f64).max(2.0)).contains(&config.warmup_epochs),
                format!("in [0, max(epochs, 2)] (epochs = {})", config.epochs),
            ),
            (
                "base_lr",
                lr,
                0.0 < lr && lr <= 1000.0,
                "in (0, 1000]".into(),
            ),
            (
                "lars.momentum",
                lars.momentum,
                (0.0..1.0).contains(&lars.momentum),
                "in [0, 1)".into(),
            ),
            (
                "lars.weight_decay",
                lars.weight_decay,
                (0.0..=1.0).contains(&lars.weight_decay),
                "in [0, 1]".into(),
            ),
            (
                "lars.trust_coefficient",
                lars.trust_coefficient,
                0.0 < lars.trust_coefficient && lars.trust_coefficient <= 1.0,
                "in (0, 1]".into(),
            ),
        ];
        if let Some((name, value, _, range)) = numbers
            .into_iter()
            .find(|(_, v, in_range, _)| !(*in_range && v.is_finite()))
        {
            return Err(Error::InvalidConfig {
                name,
                reason: format!("{value}: a finite number {range} is needed"),
            });
        }
        normalization.validate()?;
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
            folder_lock: None,
            prefetch: DEFAULT_PREFETCH,
            precision: Precision::F32,
            waits: Waits::default(),
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
        for device in devices {
            self.precision.check(device)?;
        }
        self.shard_devices = devices.iter().map(|d| d.clone().autodiff()).collect();
        Ok(self)
    }

    /// The (autodiff) device of each shard.
    pub fn shard_devices(&self) -> &[Device] {
        &self.shard_devices
    }

    /// Makes [`train`](Self::train)'s views on a thread of their own, up to `depth` micro-batches ahead of the
    /// steps (at most [`MAX_PREFETCH`](crate::MAX_PREFETCH)), so that the device trains while the CPU makes the
    /// next views (default 2; 0: each step makes its own views first). The run is the same either way: the
    /// views depend only on the seed and the step. A panic of the data source becomes an error of `train`
    /// with prefetching; without it (and when `train` is called from a thread of rayon's pool, where views are
    /// always made in the steps) it is the caller's.
    pub fn with_prefetch(mut self, depth: usize) -> Self {
        self.prefetch = depth;
        self
    }

    /// Trains with the forward pass in `precision` ([`Precision::Bf16`]: mixed precision, `f32` weights,
    /// optimizer, batch norm and loss); an error if the run's device has no arithmetic in it. Not part of the
    /// run's settings: a resumed run trains in the precision it is given.
    pub fn with_precision(mut self, precision: Precision) -> Result<Self> {
        for device in std::iter::once(&self.device).chain(&self.shard_devices) {
            precision.check(device)?;
        }
        self.precision = precision;
        Ok(self)
    }

    /// The forward pass's precision.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Who waited for whom during the last [`train`](Self::train): the steps for their views (data-bound), or
    /// the view maker for the steps (device-bound).
    pub fn waits(&self) -> Waits {
        self.waits
    }

    /// What decides each step's images and views.
    fn plan(&self) -> ViewPlan {
        ViewPlan {
            dataset_len: self.state.dataset_len,
            batch_size: self.config.batch_size,
            accumulation: self.config.accumulation,
            seed: self.config.seed,
        }
    }

    /// Steps per epoch (incomplete last batches are dropped).
    pub fn steps_per_epoch(&self) -> u64 {
        self.plan().steps_per_epoch()
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

    fn tensor(&self, a: Array4<f32>, device: &Device) -> Tensor<4> {
        let x = self.normalization.apply(crate::array_to_tensor(a, device));
        self.precision.cast_input(x)
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
            // Mixed precision: a tracked cast, the gradients reach the f32 weights.
            .map(|replica| self.precision.cast_model(replica))
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
        self.check_data(data)?;
        self.step_from(&mut Inline::new(self.plan(), data))
    }

    fn check_data(&self, data: &dyn ViewPairs) -> Result<()> {
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
        Ok(())
    }

    /// [`step`](Self::step) with the views from `views`.
    fn step_from(&mut self, views: &mut dyn ViewSource) -> Result<f32> {
        let step = self.state.step;
        let micro = self.config.batch_size / self.config.accumulation;
        let mut accumulator = GradientsAccumulator::new();
        // The loss stays on the device until every micro-batch is queued: one read per step, not one per
        // micro-batch (each read waits for the device to finish what was queued).
        let mut total: Option<Tensor<1>> = None;
        for m in 0..self.config.accumulation {
            let (v1, v2): Views = views.next(step, m)?;
            let loss = self.micro_batch_loss(micro, v1, v2)? / self.config.accumulation as f64;
            let value = loss.clone().detach();
            total = Some(match total {
                None => value,
                Some(t) => t + value,
            });
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            accumulator.accumulate(&self.model, grads);
        }
        let total = total.map_or(f32::NAN, |t| t.into_scalar::<f32>());
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
        // One training process per checkpoint folder: its lock is held while this call runs, taken before any
        // step is spent (a second process's call is refused, rather than each removing the other's writes).
        self.folder_lock = match checkpoints {
            Some((dir, _)) => Some(checkpoints::FolderLock::acquire(dir)?),
            None => None,
        };
        let trained = self.train_holding_the_lock(data, progress, stop, checkpoints);
        self.folder_lock = None;
        trained
    }

    fn train_holding_the_lock(
        &mut self,
        data: &dyn ViewPairs,
        progress: &dyn Progress,
        stop: StopAfter,
        checkpoints: Option<(&Path, u64)>,
    ) -> Result<()> {
        if let Some((dir, _)) = checkpoints {
            // A folder this run may not write to is refused before any step is spent.
            self.check_folder(dir)?;
        }
        self.check_data(data)?;
        let start = Instant::now();
        let first = self.state.step;
        let last = match stop.steps {
            Some(steps) => first.saturating_add(steps).min(self.total_steps()),
            None => self.total_steps(),
        };
        progress.start("SimCLR training", self.total_steps().saturating_sub(first));
        let plan = self.plan();
        self.waits = Waits::default();
        // A thread of rayon's pool must not wait on a channel for views that rayon's pool makes: with every
        // worker waiting so, nothing makes them. Called from one (a sweep inside `par_iter`), views are made in
        // the steps.
        let depth = match rayon::current_thread_index() {
            Some(_) => 0,
            None => self.prefetch,
        };
        let (trained, waits) = match depth {
            0 => {
                let mut inline = Inline::new(plan, data);
                let trained = self.run_steps(&mut inline, progress, stop, checkpoints);
                let waits = Waits {
                    for_views: inline.waited(),
                    for_steps: Duration::ZERO,
                    training: start.elapsed(),
                    ahead: false,
                };
                (trained, waits)
            }
            depth => std::thread::scope(|scope| {
                let mut ahead = Prefetch::start(scope, plan, data, (first, last), depth);
                let trained = self.run_steps(&mut ahead, progress, stop, checkpoints);
                let (waits, panic) = ahead.finish(start.elapsed());
                // A panic while making views the steps took has already failed a step (its error is the
                // training's, with the message); one while making views ahead that no step took (after a stop)
                // cost nothing and is said.
                let trained = match (trained, panic) {
                    (Err(e), Some(message)) => Err(Error::InvalidConfig {
                        name: "views",
                        reason: format!(
                            "the thread making the training views panicked: {message} ({e})"
                        ),
                    }),
                    (Ok(()), Some(message)) => {
                        progress.note(&format!(
                            "the thread making views ahead panicked after the last step: {message}"
                        ));
                        Ok(())
                    }
                    (trained, None) => trained,
                };
                (trained, waits)
            }),
        };
        self.waits = waits;
        trained?;
        if self.state.step > first {
            progress.note(&self.waits.summary());
        }
        self.monitor_now(progress)?;
        progress.finish();
        if let Some((dir, _)) = checkpoints {
            self.save_checkpoint(dir)?;
        }
        Ok(())
    }

    /// Steps until the schedule ends or `stop` says so, with their progress, monitor and checkpoints.
    fn run_steps(
        &mut self,
        views: &mut dyn ViewSource,
        progress: &dyn Progress,
        stop: StopAfter,
        checkpoints: Option<(&Path, u64)>,
    ) -> Result<()> {
        let start = Instant::now();
        let first = self.state.step;
        while self.state.step < self.total_steps() {
            if stop.steps.is_some_and(|s| self.state.step - first >= s)
                || stop.time.is_some_and(|t| start.elapsed() >= t)
            {
                break;
            }
            let (t, waited) = (Instant::now(), views.waited());
            let loss = self.step_from(views)?;
            progress.advance(1);
            let elapsed = t.elapsed().as_secs_f64();
            let rate = self.config.batch_size as f64 / elapsed;
            let per_device = match self.config.shards {
                1 => String::new(),
                n => format!(" ({:.1} img/s per shard, {n} shards)", rate / n as f64),
            };
            let waiting = (views.waited() - waited).as_secs_f64() / elapsed.max(1e-9);
            progress.note(&format!(
                "step {} loss {loss:.4} lr {:.4} {rate:.1} img/s{per_device}, {:.0}% of it waiting for views",
                self.state.step,
                self.schedule().lr(self.state.step - 1),
                100.0 * waiting,
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
        Ok(())
    }
}

/// Micro-batches of views [`SimClrTrainer::train`] makes ahead of the steps unless told otherwise: two keep
/// the device busy while the next views are made, for the memory of two micro-batches of views.
pub const DEFAULT_PREFETCH: usize = 2;

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
