//! Data-parallel SimCLR: a batch cut into shards trains as the whole batch on one device.
//!
//! Burn 0.22's CPU backend (Flex) has one device and no collectives, so the shards here all live on the CPU:
//! the code is the one that runs shards on several GPUs, the exchanges between shards (SyncBN's statistics,
//! the gathered embeddings) are the same tensor operations, only the transfers between devices are no-ops.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use cadet_model::{
    FeatureModel, LarsConfig, Normalization, ResNetConfig, ShardNorm, SimClr, SimClrConfig,
    SimClrTrainer, TrainConfig, ViewPairs, nt_xent,
};
use ndarray::Array4;

/// SimCLR's CIFAR temperature.
const TEMPERATURE: f64 = 0.5;
/// Largest gap between sharded and one-device results, relative to the largest magnitude in each tensor. f32
/// rounding alone gives about 2e-5 here: 2 against 4 shards of the same batch (both through SyncBN) differ by
/// 1.8e-5 in the gradients; one device against 2 shards by 1.7e-5; the weights after 3 steps by 1.5e-5.
const F32_GAP: f32 = 5e-5;
const SIZE: usize = 16;

/// Eight 8 × 8 images of smooth seeded noise; the two views differ in their noise.
struct Noise;

impl ViewPairs for Noise {
    fn len(&self) -> usize {
        8
    }
    fn pairs(
        &self,
        indices: &[usize],
        seed: u64,
    ) -> cadet_model::Result<(Array4<f32>, Array4<f32>)> {
        let view = |salt: u64| {
            Array4::from_shape_fn((indices.len(), 3, SIZE, SIZE), |(i, c, y, x)| {
                let h = splitmix(
                    seed ^ (salt << 32) ^ (indices[i] * 4096 + c * 256 + y * SIZE + x) as u64,
                );
                let image = splitmix((indices[i] * 4096 + c * 256 + y * SIZE + x) as u64);
                0.6 * (image % 1000) as f32 / 1000.0 + 0.4 * (h % 1000) as f32 / 1000.0
            })
        };
        Ok((view(1), view(2)))
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn model_config() -> SimClrConfig {
    SimClrConfig::new(
        ResNetConfig::new(18)
            .with_cifar_stem(true)
            .with_base_width(4)
            .into(),
    )
    .with_hidden(16)
    .with_output(8)
}

/// A tiny model on the autodiff CPU device, its weights drawn from `seed`.
fn model(seed: u64) -> SimClr {
    model_config()
        .init_seeded(&Device::flex().autodiff(), seed)
        .unwrap()
}

/// The views of images `0..8` as two `(8, 3, 8, 8)` tensors.
fn views() -> (Tensor<4>, Tensor<4>) {
    let (v1, v2) = Noise.pairs(&(0..8).collect::<Vec<_>>(), 5).unwrap();
    let device = Device::flex().autodiff();
    (
        cadet_model::array_to_tensor(v1, &device),
        cadet_model::array_to_tensor(v2, &device),
    )
}

/// The views cut into `shards` equal shards of consecutive images.
fn shards_of(views: &(Tensor<4>, Tensor<4>), shards: usize) -> Vec<(Tensor<4>, Tensor<4>)> {
    let k = views.0.dims()[0] / shards;
    (0..shards)
        .map(|s| {
            (
                views.0.clone().narrow(0, s * k, k),
                views.1.clone().narrow(0, s * k, k),
            )
        })
        .collect()
}

/// Every float parameter (and running statistic) of a module, by id, as numbers.
#[derive(Default)]
struct Values(Vec<(u64, Vec<f32>)>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data().convert::<f32>();
        self.0
            .push((param.id.val(), data.try_to_vec::<f32>().unwrap()));
    }
}

fn values(m: &SimClr) -> Vec<(u64, Vec<f32>)> {
    // Brings the running statistics up to date (Burn keeps the latest update pending until synchronised).
    let _ = m.valid();
    let mut v = Values::default();
    m.visit(&mut v);
    v.0
}

/// The loss and the gradient of every parameter of `m` (by the order of `values`).
fn loss_and_grads(m: &SimClr, loss: Tensor<1>) -> (f32, Vec<Vec<f32>>) {
    let value = loss.clone().into_scalar::<f32>();
    let grads = GradientsParams::from_grads(loss.backward(), m);
    struct Grads<'a>(&'a GradientsParams, Vec<Vec<f32>>);
    impl ModuleVisitor for Grads<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(param.id) {
                self.1
                    .push(g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
            }
        }
    }
    let mut g = Grads(&grads, Vec::new());
    m.visit(&mut g);
    (value, g.1)
}

/// The largest difference between `a` and `b` relative to the largest magnitude in `a`.
fn relative_gap(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    let gap = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    gap / scale
}

/// The largest relative gap over a list of tensors.
fn worst_gap(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| relative_gap(x, y))
        .fold(0f32, f32::max)
}

fn sharded(m: &SimClr, shards: usize, norm: ShardNorm) -> (f32, Vec<Vec<f32>>) {
    let replicas = vec![m; shards];
    let loss = SimClr::sharded_loss(&replicas, shards_of(&views(), shards), TEMPERATURE, norm);
    loss_and_grads(m, loss.unwrap())
}

#[test]
fn two_shards_with_sync_bn_give_the_loss_and_gradients_of_one_device() {
    let (v1, v2) = views();
    let single = model(11);
    let (loss, grads) = loss_and_grads(&single, single.loss(v1, v2, TEMPERATURE));
    let (loss2, grads2) = sharded(&model(11), 2, ShardNorm::Synchronized);
    assert!(
        grads.len() > 40,
        "every parameter has a gradient: {}",
        grads.len()
    );
    assert!(
        (loss - loss2).abs() <= 1e-5 * loss.abs(),
        "{loss} vs {loss2}"
    );
    let gap = worst_gap(&grads, &grads2);
    assert!(gap < F32_GAP, "largest relative gradient gap {gap}");
}

#[test]
fn the_split_does_not_change_the_result() {
    let (loss2, grads2) = sharded(&model(12), 2, ShardNorm::Synchronized);
    let (loss4, grads4) = sharded(&model(12), 4, ShardNorm::Synchronized);
    assert!(
        (loss2 - loss4).abs() <= 1e-5 * loss2.abs(),
        "{loss2} vs {loss4}"
    );
    let gap = worst_gap(&grads2, &grads4);
    assert!(gap < F32_GAP, "largest relative gradient gap {gap}");
    // Without SyncBN the split is part of the model: 2 and 4 shards normalise differently.
    let (per2, _) = sharded(&model(12), 2, ShardNorm::PerShard);
    let (per4, _) = sharded(&model(12), 4, ShardNorm::PerShard);
    assert!((per2 - per4).abs() > 1e-3, "{per2} vs {per4}");
    assert!((per2 - loss2).abs() > 1e-3, "{per2} vs {loss2}");
}

/// Without SyncBN, the loss is that of a reference built by hand from one-device passes: each shard through
/// the encoder and head on its own (batch norm with its own statistics), the embeddings stacked, NT-Xent.
#[test]
fn per_shard_bn_matches_a_reference_of_separate_passes() {
    let reference = model(13);
    let mut z1 = Vec::new();
    let mut z2 = Vec::new();
    for (v1, v2) in shards_of(&views(), 2) {
        let n = v1.dims()[0];
        let features = reference
            .encoder
            .forward_features(Tensor::cat(vec![v1, v2], 0));
        let z = reference.head.forward(features);
        z1.push(z.clone().narrow(0, 0, n));
        z2.push(z.narrow(0, n, n));
    }
    let loss = nt_xent(Tensor::cat(z1, 0), Tensor::cat(z2, 0), TEMPERATURE);
    let (loss_ref, grads_ref) = loss_and_grads(&reference, loss);
    let (loss, grads) = sharded(&model(13), 2, ShardNorm::PerShard);
    assert!(
        (loss - loss_ref).abs() <= 1e-6 * loss.abs(),
        "{loss} vs {loss_ref}"
    );
    let gap = worst_gap(&grads_ref, &grads);
    assert!(gap < 1e-5, "largest relative gradient gap {gap}");
}

/// The running statistics after a sharded pass: with SyncBN those of one device on the whole batch; without,
/// those of shard 0 alone (as when each replica keeps its own and shard 0's are broadcast).
#[test]
fn running_statistics_follow_the_batch_or_shard_0() {
    let strip = |m: &SimClr| values(m).into_iter().map(|(_, v)| v).collect::<Vec<_>>();
    let (v1, v2) = views();
    let whole = model(15);
    let _ = whole.loss(v1, v2, TEMPERATURE);
    let synced = model(15);
    let _ = sharded(&synced, 2, ShardNorm::Synchronized);
    let gap = worst_gap(&strip(&whole), &strip(&synced));
    assert!(gap < F32_GAP, "largest relative gap {gap}");

    let first = model(15);
    let (s1, s2) = shards_of(&views(), 2).swap_remove(0);
    let _ = first.loss(s1, s2, TEMPERATURE);
    let per_shard = model(15);
    let _ = sharded(&per_shard, 2, ShardNorm::PerShard);
    let gap = worst_gap(&strip(&first), &strip(&per_shard));
    assert!(gap < 1e-6, "largest relative gap {gap}");
    // (And the two differ: the test can fail.)
    assert!(worst_gap(&strip(&whole), &strip(&first)) > 1e-3);
}

#[test]
fn mismatched_shards_are_errors() {
    let m = model(14);
    let views = shards_of(&views(), 2);
    assert!(SimClr::sharded_loss(&[&m], views.clone(), TEMPERATURE, ShardNorm::PerShard).is_err());
    assert!(SimClr::sharded_loss(&[], Vec::new(), TEMPERATURE, ShardNorm::PerShard).is_err());
    let odd = vec![(views[0].0.clone(), views[1].1.clone().narrow(0, 0, 3))];
    assert!(SimClr::sharded_loss(&[&m], odd, TEMPERATURE, ShardNorm::PerShard).is_err());
}

fn trainer(shards: usize, sync_batch_norm: bool) -> SimClrTrainer {
    let config = TrainConfig::new(8, 3, LarsConfig::new())
        .with_shards(shards)
        .with_sync_batch_norm(sync_batch_norm)
        .with_base_lr(Some(0.01))
        .with_temperature(0.5)
        .with_warmup_epochs(0.0)
        .with_seed(4);
    SimClrTrainer::new(
        model_config(),
        config,
        Normalization::identity(),
        &Device::flex(),
        8,
    )
    .unwrap()
}

/// Three LARS steps of the trainer with 2 shards and SyncBN: the losses and every weight and running statistic
/// are those of the one-device run.
#[test]
fn the_trainer_with_two_shards_follows_the_one_device_run() {
    let (mut one, mut two) = (trainer(1, true), trainer(2, true));
    for _ in 0..3 {
        one.step(&Noise).unwrap();
        two.step(&Noise).unwrap();
    }
    let (a, b) = (&one.state().losses, &two.state().losses);
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 * x.abs(), "{a:?} vs {b:?}");
    }
    let (wa, wb) = (values(one.model()), values(two.model()));
    let gap = worst_gap(
        &wa.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        &wb.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
    );
    assert!(gap < F32_GAP, "largest relative weight gap {gap}");
    // Without SyncBN the run differs (the test above can fail).
    let mut per = trainer(2, false);
    for _ in 0..3 {
        per.step(&Noise).unwrap();
    }
    assert!(
        (per.state().losses[2] - a[2]).abs() > 1e-4,
        "{:?} vs {a:?}",
        per.state().losses
    );
}

#[test]
fn a_sharded_run_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut straight = trainer(2, false);
    for _ in 0..3 {
        straight.step(&Noise).unwrap();
    }
    let mut first = trainer(2, false);
    for _ in 0..2 {
        first.step(&Noise).unwrap();
    }
    first.save_checkpoint(dir.path()).unwrap();
    let mut resumed = SimClrTrainer::resume(dir.path(), &Device::flex()).unwrap();
    assert_eq!(
        (resumed.config().shards, resumed.config().sync_batch_norm),
        (2, false)
    );
    resumed.step(&Noise).unwrap();
    let (a, b) = (&straight.state().losses, &resumed.state().losses);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-6 * x.abs(), "{a:?} vs {b:?}");
    }
    let strip = |m: &SimClr| values(m).into_iter().map(|(_, v)| v).collect::<Vec<_>>();
    let gap = worst_gap(&strip(straight.model()), &strip(resumed.model()));
    assert!(gap < 1e-6, "largest relative weight gap {gap}");
}

#[test]
fn bad_shard_settings_are_errors() {
    let config = TrainConfig::new(8, 1, LarsConfig::new()).with_shards(3);
    let new = |config| {
        SimClrTrainer::new(
            model_config(),
            config,
            Normalization::identity(),
            &Device::flex(),
            8,
        )
    };
    assert!(new(config).is_err());
    assert!(new(TrainConfig::new(8, 1, LarsConfig::new()).with_shards(0)).is_err());
    let two = new(TrainConfig::new(8, 1, LarsConfig::new()).with_shards(2)).unwrap();
    assert_eq!(two.shard_devices().len(), 2);
    assert!(two.with_shard_devices(&[Device::flex()]).is_err());
    // Per-shard batch norm over one image per shard (its two views alone) is refused; synchronised is fine,
    // and so are two images per shard.
    let one_each = || TrainConfig::new(8, 1, LarsConfig::new()).with_shards(8);
    assert!(new(one_each().with_sync_batch_norm(false)).is_err());
    assert!(new(one_each()).is_ok());
    assert!(
        new(TrainConfig::new(8, 1, LarsConfig::new())
            .with_shards(4)
            .with_sync_batch_norm(false))
        .is_ok()
    );
    // SimCLRv2 encoders have no sharded forward: more than one shard is refused up front.
    let v2 = SimClrConfig::new(
        cadet_model::SimClrV2Config::new(18)
            .with_base_width(4)
            .into(),
    )
    .with_hidden(16)
    .with_output(8);
    let refused = SimClrTrainer::new(
        v2.clone(),
        TrainConfig::new(8, 1, LarsConfig::new()).with_shards(2),
        Normalization::identity(),
        &Device::flex(),
        8,
    );
    assert!(
        matches!(
            refused,
            Err(cadet_model::Error::InvalidConfig { name: "shards", .. })
        ),
        "{:?}",
        refused.err()
    );
    let replica = v2.init(&Device::flex()).unwrap();
    let views = || Tensor::<4>::zeros([2, 3, 16, 16], &Device::flex());
    assert!(
        SimClr::sharded_loss(
            &[&replica, &replica],
            vec![(views(), views()), (views(), views())],
            0.5,
            ShardNorm::Synchronized
        )
        .is_err()
    );
    // A source giving fewer views than images is an error, not a panic while cutting shards.
    struct Short;
    impl ViewPairs for Short {
        fn len(&self) -> usize {
            8
        }
        fn pairs(
            &self,
            indices: &[usize],
            seed: u64,
        ) -> cadet_model::Result<(Array4<f32>, Array4<f32>)> {
            let (v1, v2) = Noise.pairs(&indices[1..], seed)?;
            Ok((v1, v2))
        }
    }
    let mut t = trainer(2, true);
    assert!(matches!(
        t.step(&Short),
        Err(cadet_model::Error::ImageShape { .. })
    ));
    assert_eq!(t.state().step, 0);
}

/// What Burn 0.22 offers for data parallelism on the CPU: its collectives (`burn::tensor::distributed`:
/// `DistributedContext`, `all_reduce`, gradient sync) are implemented for the CubeCL (CUDA) and Remote backends
/// only, and on Flex, the CPU backend (which has a single device), starting them panics ("Distributed
/// operations are not supported"). Should this test fail, Burn has gained CPU collectives.
#[test]
fn burn_collectives_are_not_available_on_the_cpu() {
    use burn::tensor::distributed::{
        DistributedConfig, DistributedContext, ReduceOperation, all_reduce,
    };
    let started = std::panic::catch_unwind(|| {
        let config = DistributedConfig {
            all_reduce_op: ReduceOperation::Mean,
        };
        DistributedContext::init(vec![Device::flex(), Device::flex()], config)
    });
    assert!(started.is_err());
    let reduced = std::panic::catch_unwind(|| {
        let device = Device::flex();
        let ones = Tensor::<1>::ones([2], &device);
        all_reduce(ones, ReduceOperation::Sum, vec![device.clone(), device]).resolve()
    });
    assert!(reduced.is_err());
}
