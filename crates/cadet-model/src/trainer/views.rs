//! The views a training step sees, and a thread that makes them ahead of the steps.
//!
//! A step's views depend only on the run's seed, the step and the micro-batch ([`ViewPlan`]), so they can be
//! made before the step runs: [`Prefetch`] draws them on a thread of their own (the augmentations themselves
//! run on all cores, through rayon) while the device trains on the previous ones, at most `depth` micro-batches
//! ahead; [`Inline`] makes them in the step instead. The views, and so the run, are the same either way; what
//! changes is who waits for whom, which [`Waits`] records.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use ndarray::Array4;

use super::ViewPairs;
use crate::{Error, Result};

/// Two views of each image of a micro-batch, `(n, C, H, W)` each.
pub(super) type Views = (Array4<f32>, Array4<f32>);

/// What decides a step's images and views: the data set's size, the batch, its micro-batches and the seed.
#[derive(Debug, Clone, Copy)]
pub(super) struct ViewPlan {
    pub(super) dataset_len: usize,
    pub(super) batch_size: usize,
    pub(super) accumulation: usize,
    pub(super) seed: u64,
}

impl ViewPlan {
    /// Steps per epoch (incomplete last batches are dropped).
    pub(super) fn steps_per_epoch(&self) -> u64 {
        (self.dataset_len / self.batch_size) as u64
    }

    /// The images of step `step`: a seeded permutation per epoch, cut into batches.
    pub(super) fn indices(&self, step: u64) -> Vec<usize> {
        let per_epoch = self.steps_per_epoch();
        let (epoch, k) = (step / per_epoch, (step % per_epoch) as usize);
        let order = crate::supervised::epoch_order(self.dataset_len, self.seed, epoch);
        order[k * self.batch_size..(k + 1) * self.batch_size].to_vec()
    }

    /// The views of micro-batch `micro` of step `step`, whose images are `indices` (`self.indices(step)`),
    /// drawn from `data`.
    pub(super) fn views(
        &self,
        data: &dyn ViewPairs,
        (step, indices): (u64, &[usize]),
        micro: usize,
    ) -> Result<Views> {
        let size = self.batch_size / self.accumulation;
        let chunk = &indices[micro * size..(micro + 1) * size];
        data.pairs(chunk, self.seed ^ (step << 16) ^ micro as u64)
    }
}

/// Time spent waiting on each side of the hand-over between the view maker and the steps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Waits {
    /// Time the steps waited for views (views made too slowly: the device idles). Without views made ahead,
    /// all the time spent making them.
    pub for_views: Duration,
    /// Time the view maker waited for a step to take its views (it is ahead: the device is the bottleneck).
    pub for_steps: Duration,
    /// The training time these waits are part of.
    pub training: Duration,
    /// Whether the views were made ahead, on a thread of their own ([`SimClrTrainer::with_prefetch`]).
    ///
    /// [`SimClrTrainer::with_prefetch`]: crate::SimClrTrainer::with_prefetch
    pub ahead: bool,
}

impl Waits {
    /// Which side waited, in words: data-bound when the steps spent more than a tenth of the training waiting
    /// for views.
    pub fn summary(&self) -> String {
        let share = self.for_views.as_secs_f64() / self.training.as_secs_f64().max(1e-9);
        if !self.ahead {
            return format!(
                "over {:.1} s of training, {:.1} s ({:.0}%) went to making views inside the steps (not made ahead)",
                self.training.as_secs_f64(),
                self.for_views.as_secs_f64(),
                100.0 * share
            );
        }
        let who = if share > 0.1 {
            "data-bound: the steps waited for the views (more CPU cores or cheaper views would speed it up)"
        } else {
            "device-bound: the views were ready before the steps took them"
        };
        format!(
            "over {:.1} s of training, the steps waited {:.1} s for views ({:.0}%) and the views {:.1} s for \
             steps: {who}",
            self.training.as_secs_f64(),
            self.for_views.as_secs_f64(),
            100.0 * share,
            self.for_steps.as_secs_f64(),
        )
    }
}

/// Where a run's steps take their views from, in step order.
pub(super) trait ViewSource {
    /// The views of micro-batch `micro` of step `step` (the next ones in order).
    fn next(&mut self, step: u64, micro: usize) -> Result<Views>;
    /// Time the steps have waited for views so far.
    fn waited(&self) -> Duration;
}

/// Views made in the step itself, when asked for (the steps wait for all of them).
pub(super) struct Inline<'a> {
    plan: ViewPlan,
    data: &'a dyn ViewPairs,
    waited: Duration,
    /// The images of the step asked for last (the epoch's permutation is drawn once per step).
    step: Option<(u64, Vec<usize>)>,
}

impl<'a> Inline<'a> {
    pub(super) fn new(plan: ViewPlan, data: &'a dyn ViewPairs) -> Self {
        Self {
            plan,
            data,
            waited: Duration::ZERO,
            step: None,
        }
    }
}

impl ViewSource for Inline<'_> {
    fn next(&mut self, step: u64, micro: usize) -> Result<Views> {
        let t = Instant::now();
        if self.step.as_ref().is_none_or(|(s, _)| *s != step) {
            self.step = Some((step, self.plan.indices(step)));
        }
        let indices = self.step.as_ref().map_or(&[][..], |(_, i)| i.as_slice());
        let views = self.plan.views(self.data, (step, indices), micro);
        self.waited += t.elapsed();
        views
    }

    fn waited(&self) -> Duration {
        self.waited
    }
}

/// One micro-batch's views as the maker sends them.
struct Made {
    step: u64,
    micro: usize,
    views: Result<Views>,
}

/// Views made ahead on a thread of their own, in step order.
pub(super) struct Prefetch<'scope> {
    receiver: Receiver<Made>,
    maker: std::thread::ScopedJoinHandle<'scope, ()>,
    /// How long the maker blocked on a full queue, in nanoseconds (it writes, the steps read).
    maker_waited: Arc<AtomicU64>,
    waited_for_views: Duration,
}

impl<'scope> Prefetch<'scope> {
    /// Starts making views for steps `first..last` on a thread of `scope`, up to `depth` micro-batches (≥ 1)
    /// ahead of the steps. The thread stops at `last`, at an error (which the steps receive), or at
    /// [`finish`](Self::finish).
    pub(super) fn start(
        scope: &'scope std::thread::Scope<'scope, '_>,
        plan: ViewPlan,
        data: &'scope dyn ViewPairs,
        (first, last): (u64, u64),
        depth: usize,
    ) -> Self {
        // A queue of depth − 1 plus the views the maker holds while it waits to hand them over.
        let (sender, receiver) = sync_channel(depth.clamp(1, MAX_PREFETCH) - 1);
        let maker_waited = Arc::new(AtomicU64::new(0));
        let waited = maker_waited.clone();
        let maker = scope.spawn(move || make(plan, data, (first, last), &sender, &waited));
        Self {
            receiver,
            maker,
            maker_waited,
            waited_for_views: Duration::ZERO,
        }
    }

    /// Stops the maker (views made ahead are dropped) and gives the waits of the whole run, and the maker's
    /// panic message if it panicked (while making views the steps took, or only views made ahead).
    pub(super) fn finish(self, training: Duration) -> (Waits, Option<String>) {
        let waits = Waits {
            for_views: self.waited_for_views,
            for_steps: Duration::from_nanos(self.maker_waited.load(Ordering::Relaxed)),
            training,
            ahead: true,
        };
        // Dropping the receiver makes the maker's next hand-over fail, which ends it.
        drop(self.receiver);
        let panic = self.maker.join().err().map(|payload| {
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into())
        });
        (waits, panic)
    }
}

/// Micro-batches of views [`SimClrTrainer::train`](crate::SimClrTrainer::train) makes ahead at most, whatever
/// depth [`with_prefetch`](crate::SimClrTrainer::with_prefetch) asks for (the queue's slots are allocated up
/// front, and each holds a micro-batch of views).
pub const MAX_PREFETCH: usize = 64;

fn maker_stopped() -> Error {
    Error::InvalidConfig {
        name: "views",
        reason: "the thread making the training views stopped: it panicked (its message is above and in the \
                 error the training returns)"
            .into(),
    }
}

impl ViewSource for Prefetch<'_> {
    fn next(&mut self, step: u64, micro: usize) -> Result<Views> {
        let t = Instant::now();
        let made = self.receiver.recv();
        self.waited_for_views += t.elapsed();
        match made {
            Ok(made) if (made.step, made.micro) == (step, micro) => made.views,
            Ok(made) => Err(Error::InvalidConfig {
                name: "views",
                reason: format!(
                    "views of step {} micro-batch {} made where step {} micro-batch {} was asked for",
                    made.step + 1,
                    made.micro + 1,
                    step + 1,
                    micro + 1
                ),
            }),
            Err(_) => Err(maker_stopped()),
        }
    }

    fn waited(&self) -> Duration {
        self.waited_for_views
    }
}

fn make(
    plan: ViewPlan,
    data: &dyn ViewPairs,
    (first, last): (u64, u64),
    sender: &SyncSender<Made>,
    waited: &AtomicU64,
) {
    for step in first..last {
        let indices = plan.indices(step);
        for micro in 0..plan.accumulation {
            let views = plan.views(data, (step, &indices), micro);
            let failed = views.is_err();
            let t = Instant::now();
            if sender.send(Made { step, micro, views }).is_err() {
                return; // the steps stopped
            }
            let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
            waited.fetch_add(nanos, Ordering::Relaxed);
            if failed {
                return;
            }
        }
    }
}
