//! SimCLR training on a tiny problem: the loss falls, and a resumed run continues exactly.

use burn::prelude::*;
use cadet_model::{
    BurnEmbedder, KnnMonitor, LarsConfig, Normalization, ResNetConfig, SimClrConfig, SimClrTrainer,
    StopAfter, TrainConfig, ViewPairs,
};
use ndarray::Array4;

/// Sixteen 8 × 8 images of four patterns; the two views of an image are it with different seeded noise.
struct Patterns;

impl ViewPairs for Patterns {
    fn len(&self) -> usize {
        16
    }
    fn pairs(
        &self,
        indices: &[usize],
        seed: u64,
    ) -> cadet_model::Result<(Array4<f32>, Array4<f32>)> {
        let view = |salt: u64| {
            Array4::from_shape_fn((indices.len(), 3, 8, 8), |(i, c, y, x)| {
                let class = indices[i] % 4;
                let base = match class {
                    0 => (x < 4) as u8 as f32,
                    1 => (y < 4) as u8 as f32,
                    2 => ((x + y) % 2) as f32,
                    _ => (x == y) as u8 as f32,
                };
                let h = (seed.wrapping_mul(6364136223846793005).wrapping_add(
                    salt * 1442695040888963407 + (i * 199 + c * 61 + y * 8 + x) as u64,
                )) >> 40;
                (0.2 + 0.6 * base + 0.15 * ((h % 1000) as f32 / 1000.0 - 0.5)).clamp(0.0, 1.0)
            })
        };
        Ok((view(1), view(2)))
    }
}

fn trainer(accumulation: usize) -> SimClrTrainer {
    let model = SimClrConfig::new(ResNetConfig::new(18).with_cifar_stem(true).into())
        .with_hidden(64)
        .with_output(16);
    let config = TrainConfig::new(8, 6, LarsConfig::new())
        .with_accumulation(accumulation)
        .with_base_lr(Some(1.0))
        .with_warmup_epochs(0.5)
        .with_seed(3);
    SimClrTrainer::new(
        model,
        config,
        Normalization::identity(),
        &Device::flex(),
        16,
    )
    .unwrap()
}

#[test]
fn loss_falls_on_a_learnable_problem() {
    let mut t = trainer(1);
    assert_eq!((t.steps_per_epoch(), t.total_steps()), (2, 12));
    t.train(
        &Patterns,
        &cadet_core::NoProgress,
        StopAfter::default(),
        None,
    )
    .unwrap();
    let losses = &t.state().losses;
    assert_eq!(losses.len(), 12);
    let (first, last) = (
        losses[..3].iter().sum::<f32>() / 3.0,
        losses[9..].iter().sum::<f32>() / 3.0,
    );
    assert!(last < first, "{losses:?}");
}

/// `n` images: the patterns under strong per-pixel noise (a SplitMix64 hash of `seed` and the pixel), with
/// labels that cut across the patterns, so that which neighbour wins depends on the fine detail of the features
/// and the accuracy moves with the weights. (With the patterns' own labels it is 100% for any encoder, and the
/// test below could not tell a stale encoder from the current one.)
fn probe_set(n: usize, seed: u64) -> (Array4<f32>, Vec<u32>) {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let images = Array4::from_shape_fn((n, 3, 8, 8), |(i, c, y, x)| {
        let base = match i % 4 {
            0 => (x < 4) as u8 as f32,
            1 => (y < 4) as u8 as f32,
            2 => ((x + y) % 2) as f32,
            _ => (x == y) as u8 as f32,
        };
        let h = mix(seed ^ mix((i * 192 + c * 64 + y * 8 + x) as u64));
        (0.3 * base + 0.7 * (h % 1000) as f32 / 1000.0).clamp(0.0, 1.0)
    });
    (images, (0..n).map(|i| (i * 7 % 5) as u32).collect())
}

fn probe_monitor() -> KnnMonitor {
    KnnMonitor::new(probe_set(40, 99), probe_set(40, 7), 1, 4).unwrap()
}

#[test]
fn the_monitor_watches_without_changing_the_run() {
    let mut watched = trainer(1).with_monitor(probe_monitor());
    watched
        .train(
            &Patterns,
            &cadet_core::NoProgress,
            StopAfter {
                steps: Some(10),
                time: None,
            },
            None,
        )
        .unwrap();
    // Every 4 steps and at the end, once each.
    let knn = &watched.state().knn;
    assert_eq!(
        knn.iter().map(|&(s, _)| s).collect::<Vec<_>>(),
        vec![4, 8, 10]
    );
    assert!(knn.iter().all(|&(_, a)| (0.0..=1.0).contains(&a)));
    // The last figure is the trained encoder's own.
    let embedder = BurnEmbedder::new(
        watched.model().encoder.clone(),
        Device::flex().autodiff(),
        Normalization::identity(),
        "trained",
    );
    let again = probe_monitor().accuracy(&embedder).unwrap();
    assert_eq!(again, knn[2].1);
    // The figures follow the weights (here 10%, 17.5%, 30%): a monitor reading a stale copy would repeat one.
    assert!(knn[0].1 != knn[1].1 || knn[1].1 != knn[2].1, "{knn:?}");
    // The same losses as an unwatched run: evaluation does not touch training.
    let mut plain = trainer(1);
    for _ in 0..10 {
        plain.step(&Patterns).unwrap();
    }
    assert_eq!(plain.state().losses, watched.state().losses);
    assert!(plain.state().knn.is_empty());
}

/// A checkpoint's state written before the monitor existed has no `knn` field: it loads with none.
#[test]
fn states_without_monitor_results_still_load() {
    let state: cadet_model::TrainState =
        serde_json::from_str(r#"{"step": 3, "losses": [1.5, 1.25, 1.0], "dataset_len": 16}"#)
            .unwrap();
    assert_eq!((state.step, state.dataset_len), (3, 16));
    assert!(state.knn.is_empty());
}

#[test]
fn a_resumed_run_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut straight = trainer(2);
    for _ in 0..3 {
        straight.step(&Patterns).unwrap();
    }
    let mut first = trainer(2);
    first
        .train(
            &Patterns,
            &cadet_core::NoProgress,
            StopAfter {
                steps: Some(2),
                time: None,
            },
            Some((dir.path(), 1)),
        )
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("latest")).unwrap(),
        "ckpt-00000002"
    );
    let mut resumed = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    assert_eq!(resumed.state().step, 2);
    resumed.step(&Patterns).unwrap();
    let (a, b) = (
        straight.state().losses.clone(),
        resumed.state().losses.clone(),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-4, "{a:?} vs {b:?}");
    }
    assert!(SimClrTrainer::resume(&dir.path().join("nothing"), &Device::flex()).is_err());
    // Only the newest checkpoints stay (3 by default): three more saves at steps 4, 5, 6 push out steps 1 and 2.
    for _ in 0..3 {
        resumed.step(&Patterns).unwrap();
        resumed.save_checkpoint(dir.path()).unwrap();
    }
    let mut kept: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("ckpt-"))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        vec!["ckpt-00000004", "ckpt-00000005", "ckpt-00000006"]
    );
}

#[test]
fn bad_settings_are_errors() {
    let model = SimClrConfig::new(ResNetConfig::new(18).into());
    let bad = TrainConfig::new(8, 1, LarsConfig::new()).with_accumulation(3);
    assert!(
        SimClrTrainer::new(
            model.clone(),
            bad,
            Normalization::identity(),
            &Device::flex(),
            16
        )
        .is_err()
    );
    let small = TrainConfig::new(32, 1, LarsConfig::new());
    assert!(
        SimClrTrainer::new(model, small, Normalization::identity(), &Device::flex(), 16).is_err()
    );
}

fn steps(n: u64) -> StopAfter {
    StopAfter {
        steps: Some(n),
        time: None,
    }
}

fn latest(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("latest")).unwrap()
}

/// A fresh run must not write into a folder that holds a longer run: today's pruning sorted the new
/// `ckpt-00000001` before the old run's and deleted it, leaving `latest` pointing at nothing.
#[test]
fn a_fresh_run_refuses_a_folder_holding_another_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut long = trainer(1);
    long.train(
        &Patterns,
        &cadet_core::NoProgress,
        steps(4),
        Some((dir.path(), 1)),
    )
    .unwrap();
    assert_eq!(latest(dir.path()), "ckpt-00000004");
    let mut fresh = trainer(1);
    let out = fresh.train(
        &Patterns,
        &cadet_core::NoProgress,
        steps(1),
        Some((dir.path(), 1)),
    );
    assert!(
        matches!(out, Err(cadet_model::Error::Checkpoint { .. })),
        "{out:?}"
    );
    assert_eq!(fresh.state().step, 0, "refused before any step");
    // The old run is intact and resumable.
    assert_eq!(latest(dir.path()), "ckpt-00000004");
    let resumed = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    assert_eq!(resumed.state().step, 4);
    // Clearing refuses a folder with anything else in it, removing nothing.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), "mine").unwrap();
    std::fs::create_dir(other.path().join("ckpt-00000001")).unwrap();
    assert!(SimClrTrainer::clear_checkpoints(other.path()).is_err());
    assert!(other.path().join("ckpt-00000001").exists());
    // Cleared, the folder takes the fresh run, and pruning keeps its newest checkpoint.
    SimClrTrainer::clear_checkpoints(dir.path()).unwrap();
    // (Only the folder's lock file stays: removing it would let two processes lock two files.)
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [".lock"]);
    fresh
        .train(
            &Patterns,
            &cadet_core::NoProgress,
            steps(1),
            Some((dir.path(), 1)),
        )
        .unwrap();
    assert_eq!(latest(dir.path()), "ckpt-00000001");
    assert_eq!(
        SimClrTrainer::resume(dir.path(), &Device::flex())
            .unwrap()
            .state()
            .step,
        1
    );
}

/// A resume that runs no step (no time, or a finished schedule) must leave the live checkpoint in place:
/// today it was deleted and rewritten, and a kill in between broke `latest`.
#[test]
fn a_resume_without_steps_keeps_the_live_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = trainer(1);
    first
        .train(
            &Patterns,
            &cadet_core::NoProgress,
            steps(2),
            Some((dir.path(), 1)),
        )
        .unwrap();
    let live = dir.path().join("ckpt-00000002");
    // A marker only the original folder holds: a rewrite would lose it.
    std::fs::write(live.join("marker"), "original").unwrap();
    let mut resumed = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    resumed
        .train(
            &Patterns,
            &cadet_core::NoProgress,
            steps(0),
            Some((dir.path(), 1)),
        )
        .unwrap();
    assert_eq!(latest(dir.path()), "ckpt-00000002");
    assert!(live.join("marker").exists());
    // A state that changed without a step (a monitor's first reading) is written beside it, not over it.
    let mut watched = SimClrTrainer::resume(dir.path(), &Device::flex())
        .unwrap()
        .with_monitor(probe_monitor());
    watched
        .train(
            &Patterns,
            &cadet_core::NoProgress,
            steps(0),
            Some((dir.path(), 1)),
        )
        .unwrap();
    assert_eq!(latest(dir.path()), "ckpt-00000002-1");
    assert!(live.join("marker").exists());
    let again = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    assert_eq!(again.state().knn.len(), 1);
    assert_eq!(again.state().step, 2);
}

/// Views full of NaN give a NaN loss: a typed error naming the step, nothing applied, nothing saved.
#[test]
fn a_non_finite_loss_is_an_error_naming_the_step() {
    struct Poisoned;
    impl ViewPairs for Poisoned {
        fn len(&self) -> usize {
            16
        }
        fn pairs(
            &self,
            indices: &[usize],
            seed: u64,
        ) -> cadet_model::Result<(Array4<f32>, Array4<f32>)> {
            let (mut a, b) = Patterns.pairs(indices, seed)?;
            a[[0, 0, 0, 0]] = f32::NAN;
            Ok((a, b))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut t = trainer(1);
    t.train(
        &Patterns,
        &cadet_core::NoProgress,
        steps(1),
        Some((dir.path(), 1)),
    )
    .unwrap();
    let out = t.train(
        &Poisoned,
        &cadet_core::NoProgress,
        steps(1),
        Some((dir.path(), 1)),
    );
    match out {
        Err(e @ cadet_model::Error::NonFiniteLoss { step: 2, .. }) => {
            assert!(e.to_string().contains("step 2"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.state().step, 1);
    assert_eq!(t.state().losses.len(), 1);
    // The checkpoint on disk is still the good one, and it loads.
    assert_eq!(latest(dir.path()), "ckpt-00000001");
    let resumed = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    assert!(resumed.state().losses.iter().all(|l| l.is_finite()));
}

/// Every file of a checkpoint is checked against the SHA-256 recorded when it was written.
#[test]
fn flipped_bytes_in_a_checkpoint_are_an_error() {
    for file in ["model.bpk", "optim.bpk", "state.json"] {
        let dir = tempfile::tempdir().unwrap();
        let mut t = trainer(1);
        t.train(
            &Patterns,
            &cadet_core::NoProgress,
            steps(1),
            Some((dir.path(), 1)),
        )
        .unwrap();
        let path = dir.path().join("ckpt-00000001").join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x04;
        std::fs::write(&path, bytes).unwrap();
        match SimClrTrainer::resume(dir.path(), &Device::flex()) {
            Err(cadet_model::Error::ChecksumMismatch { path: p, .. }) => assert_eq!(p, path),
            Err(e) => panic!("{file}: {e}"),
            Ok(_) => panic!("{file}: a corrupt checkpoint loaded"),
        }
    }
}

/// The views a user's `ViewPairs` returns in any memory layout: the same batches, hence the same losses.
#[test]
fn views_in_any_layout_train_the_same() {
    use ndarray::{ShapeBuilder, s};
    #[derive(Clone, Copy)]
    enum Layout {
        ColumnMajor,
        Permuted,
        Sliced,
    }
    struct Relaid(Layout);
    impl ViewPairs for Relaid {
        fn len(&self) -> usize {
            16
        }
        fn pairs(
            &self,
            indices: &[usize],
            seed: u64,
        ) -> cadet_model::Result<(Array4<f32>, Array4<f32>)> {
            let (a, b) = Patterns.pairs(indices, seed)?;
            let relay = |x: Array4<f32>| -> Array4<f32> {
                let (n, c, h, w) = x.dim();
                match self.0 {
                    Layout::ColumnMajor => {
                        let mut f = Array4::zeros((n, c, h, w).f());
                        f.assign(&x);
                        f
                    }
                    Layout::Permuted => x
                        .permuted_axes([0, 2, 3, 1])
                        .as_standard_layout()
                        .into_owned()
                        .permuted_axes([0, 3, 1, 2]),
                    Layout::Sliced => {
                        let mut big = Array4::from_elem((n + 2, c, h, w), 9.0f32);
                        big.slice_mut(s![1..n + 1, .., .., ..]).assign(&x);
                        big.slice_move(s![1..n + 1, .., .., ..])
                    }
                }
            };
            Ok((relay(a), relay(b)))
        }
    }
    let losses = |data: &dyn ViewPairs| {
        let mut t = trainer(1);
        for _ in 0..2 {
            t.step(data).unwrap();
        }
        t.state().losses.clone()
    };
    let expected = losses(&Patterns);
    for layout in [Layout::ColumnMajor, Layout::Permuted, Layout::Sliced] {
        assert_eq!(losses(&Relaid(layout)), expected);
    }
}

/// What a run's encoder makes of four fixed images: equal only for equal weights (to the last bit).
fn weights(t: &SimClrTrainer) -> Vec<f32> {
    let embedder = BurnEmbedder::new(
        t.model().encoder.clone(),
        Device::flex().autodiff(),
        Normalization::identity(),
        "weights",
    );
    let x = Patterns.pairs(&[0, 1, 2, 3], 9).unwrap().0;
    cadet_core::Embedder::embed(&embedder, x.view())
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn views_made_ahead_train_the_same_run() {
    for accumulation in [1, 2] {
        let run = |depth: usize| {
            let mut t = trainer(accumulation).with_prefetch(depth);
            t.train(&Patterns, &cadet_core::NoProgress, steps(5), None)
                .unwrap();
            (t.state().losses.clone(), weights(&t))
        };
        let inline = run(0);
        assert_eq!(inline.0.len(), 5);
        for depth in [1, 2, 3] {
            assert_eq!(
                run(depth),
                inline,
                "accumulation {accumulation}, depth {depth}"
            );
        }
        // And the same as step() one at a time.
        let mut t = trainer(accumulation);
        let losses: Vec<f32> = (0..5).map(|_| t.step(&Patterns).unwrap()).collect();
        assert_eq!((losses, weights(&t)), inline);
    }
}

/// Patterns whose views fail from step `fail_at` (0-based) on, by error or by panic, and are slow to make.
struct Failing {
    fail_at: u64,
    panic: bool,
    delay: std::time::Duration,
}

impl ViewPairs for Failing {
    fn len(&self) -> usize {
        16
    }
    fn pairs(
        &self,
        indices: &[usize],
        seed: u64,
    ) -> cadet_model::Result<(Array4<f32>, Array4<f32>)> {
        std::thread::sleep(self.delay);
        // The trainer's seed of step s, micro-batch 0, is (run seed 3) ^ (s << 16).
        if (seed ^ 3) >> 16 >= self.fail_at {
            if self.panic {
                panic!("views of a failing test source");
            }
            return Err(cadet_model::Error::InvalidConfig {
                name: "test views",
                reason: "made to fail".into(),
            });
        }
        Patterns.pairs(indices, seed)
    }
}

#[test]
fn a_failing_view_maker_stops_the_run_with_its_error() {
    // Without a maker thread (depth 0) a panic is the caller's own: only errors are tried there.
    for (depth, panic) in [(0, false), (2, false), (2, true)] {
        let mut t = trainer(1).with_prefetch(depth);
        let source = Failing {
            fail_at: 3,
            panic,
            delay: std::time::Duration::ZERO,
        };
        let err = t
            .train(&source, &cadet_core::NoProgress, StopAfter::default(), None)
            .unwrap_err()
            .to_string();
        let expected = if panic { "panicked" } else { "made to fail" };
        assert!(err.contains(expected), "depth {depth}: {err}");
        assert_eq!(
            t.state().step,
            3,
            "the three steps before the failure count"
        );
    }
}

#[test]
fn slow_views_are_reported_as_what_the_steps_wait_for() {
    let mut t = trainer(1);
    let source = Failing {
        fail_at: u64::MAX,
        panic: false,
        // Views far slower than a step of this tiny model, even in a debug build on a loaded machine.
        delay: std::time::Duration::from_millis(1500),
    };
    t.train(&source, &cadet_core::NoProgress, steps(2), None)
        .unwrap();
    let waits = t.waits();
    assert!(
        waits.ahead && waits.for_views > waits.for_steps,
        "{waits:?}"
    );
    assert!(waits.training >= waits.for_views, "{waits:?}");
    let summary = waits.summary();
    assert!(summary.contains("data-bound"), "{summary}");
    // Without prefetching, the time is the views' making inside the steps.
    let mut t = trainer(1).with_prefetch(0);
    t.train(&Patterns, &cadet_core::NoProgress, steps(1), None)
        .unwrap();
    assert!(!t.waits().ahead && t.waits().summary().contains("inside the steps"));
}

/// A stop by time with views being made ahead returns (the maker, blocked on a full queue or making views no
/// step will take, ends), and a call from a thread of rayon's pool makes its views in the steps.
#[test]
fn a_time_stop_and_a_rayon_caller_do_not_hang() {
    let slow = Failing {
        fail_at: u64::MAX,
        panic: false,
        delay: std::time::Duration::from_millis(200),
    };
    let mut t = trainer(1).with_prefetch(3);
    let stop = StopAfter {
        steps: None,
        time: Some(std::time::Duration::from_millis(10)),
    };
    t.train(&slow, &cadet_core::NoProgress, stop, None).unwrap();
    assert!(
        t.state().step >= 1 && t.state().step < 12,
        "{:?}",
        t.state().step
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut t = trainer(1);
    pool.install(|| t.train(&Patterns, &cadet_core::NoProgress, steps(2), None))
        .unwrap();
    assert_eq!(t.state().step, 2);
    assert!(
        !t.waits().ahead,
        "views made in the steps on a rayon thread"
    );
    // A panic of views made ahead that no step takes (the run stopped by steps first) fails nothing.
    let mut t = trainer(1).with_prefetch(3);
    let late = Failing {
        fail_at: 2,
        panic: true,
        delay: std::time::Duration::ZERO,
    };
    t.train(&late, &cadet_core::NoProgress, steps(2), None)
        .unwrap();
    assert_eq!(t.state().step, 2);
}
