//! Mixed precision (`Precision::Bf16`): bf16 forward passes with f32 weights, batch norm and loss; close to f32.

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::DType;
use cadet_core::Embedder;
use cadet_model::{
    BurnEmbedder, LarsConfig, Normalization, Precision, ResNetConfig, SimClr, SimClrConfig,
    SimClrTrainer, StopAfter, TrainConfig, ViewPairs,
};
use ndarray::Array4;

/// Smooth random images: the views of an image are it plus a little seeded noise.
struct Smooth;

fn hash(z: u64) -> f32 {
    let z = z.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (z >> 29);
    (z.wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 40) as f32 / (1u64 << 24) as f32
}

impl ViewPairs for Smooth {
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
                let image = indices[i] as u64 * 7 + c as u64;
                let base = 0.5 + 0.4 * ((x + y) as f32 / 7.0 + hash(image)).sin();
                base + 0.05 * hash(seed ^ (salt << 40) ^ (i * 512 + c * 64 + y * 8 + x) as u64)
            })
        };
        Ok((view(1), view(2)))
    }
}

fn model() -> SimClrConfig {
    SimClrConfig::new(
        ResNetConfig::new(18)
            .with_cifar_stem(true)
            .with_base_width(8)
            .into(),
    )
    .with_hidden(32)
    .with_output(16)
}

fn trainer(precision: Precision) -> SimClrTrainer {
    // Temperature 0.5: at 0.1 the loss of a random network, whose embeddings are all alike, magnifies bf16's
    // rounding (relative 2^-8 per operation; features of this network in training mode move by about 5%).
    let config = TrainConfig::new(8, 4, LarsConfig::new())
        .with_seed(5)
        .with_temperature(0.5);
    SimClrTrainer::new(
        model(),
        config,
        Normalization::identity(),
        &Device::flex(),
        16,
    )
    .unwrap()
    .with_precision(precision)
    .unwrap()
}

/// Every float tensor of a module, with the type of the struct that holds it and its dtype; and the values of
/// the running means of its batch norms.
#[derive(Default)]
struct DTypes {
    container: String,
    field: String,
    seen: Vec<(String, DType)>,
    running_means: Vec<f32>,
    /// The values of every parameter outside batch norm (the cast ones), concatenated.
    cast_values: Vec<f32>,
}

impl ModuleVisitor for DTypes {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.container = container_type.to_string();
        self.field = name.to_string();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.seen
            .push((self.container.clone(), param.val().dtype()));
        if self.container != "Struct:BatchNorm" {
            let values = param.val().into_data().convert::<f32>();
            self.cast_values.extend(values.try_to_vec::<f32>().unwrap());
        }
        if self.field == "running_mean" {
            let values = param.val().into_data().convert::<f32>();
            self.running_means
                .extend(values.try_to_vec::<f32>().unwrap());
        }
    }
}

fn visit(model: &SimClr) -> DTypes {
    let mut visitor = DTypes::default();
    model.visit(&mut visitor);
    visitor
}

fn dtypes(model: &SimClr) -> Vec<(String, DType)> {
    visit(model).seen
}

#[test]
fn names() {
    assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
    assert_eq!(" F32 ".parse::<Precision>().unwrap(), Precision::F32);
    assert!("f16".parse::<Precision>().is_err());
    assert_eq!(Precision::Bf16.to_string(), "bf16");
}

#[test]
fn the_compute_copy_casts_all_but_batch_norm() {
    let net = model().init_seeded(&Device::flex(), 1).unwrap();
    let cast = dtypes(&Precision::Bf16.cast_model(net.clone()));
    assert!(cast.len() > 20);
    let (norms, others): (Vec<_>, Vec<_>) = cast.iter().partition(|(c, _)| c == "Struct:BatchNorm");
    assert!(!norms.is_empty() && !others.is_empty());
    assert!(norms.iter().all(|(_, d)| *d == DType::F32), "{norms:?}");
    assert!(others.iter().all(|(_, d)| *d == DType::BF16), "{others:?}");
    // The model itself is untouched, and f32 is the identity.
    assert!(dtypes(&net).iter().all(|(_, d)| *d == DType::F32));
    assert!(
        dtypes(&Precision::F32.cast_model(net))
            .iter()
            .all(|(_, d)| *d == DType::F32)
    );
}

#[test]
fn bf16_training_keeps_f32_weights_and_statistics_and_follows_f32() {
    let (mut full, mut mixed) = (trainer(Precision::F32), trainer(Precision::Bf16));
    let before = dtypes(mixed.model());
    let untrained = mixed.model().clone();
    for t in [&mut full, &mut mixed] {
        t.train(
            &Smooth,
            &cadet_core::NoProgress,
            StopAfter {
                steps: Some(3),
                time: None,
            },
            None,
        )
        .unwrap();
    }
    // Same weights and views at the first step: the losses differ by bf16's rounding only.
    let (lf, lm) = (full.state().losses.clone(), mixed.state().losses.clone());
    assert!(lm.iter().all(|l| l.is_finite()), "{lm:?}");
    assert!(
        (lf[0] - lm[0]).abs() < 0.05 * lf[0],
        "first losses {lf:?} vs {lm:?}"
    );
    // The later steps follow f32's: the weights (f32, updated through the cast) move as f32's do.
    for (f, m) in lf.iter().zip(&lm).skip(1) {
        assert!((f - m).abs() < 0.15 * f, "losses {lf:?} vs {lm:?}");
    }
    // Master weights and batch norm (running statistics included) stay f32, and were trained.
    let after = dtypes(mixed.model());
    assert!(after.iter().all(|(_, d)| *d == DType::F32), "{after:?}");
    assert_eq!(before.len(), after.len());
    // Gradients reached the f32 weights through the cast: the cast parameters moved (a detached cast would
    // leave them; batch norm's, not cast, train either way).
    let moved = |from: &SimClr, to: &SimClr| {
        let (old, new) = (visit(from).cast_values, visit(to).cast_values);
        old.iter()
            .zip(&new)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
    };
    let (by_mixed, by_full) = (
        moved(&untrained, mixed.model()),
        moved(&untrained, full.model()),
    );
    assert!(
        by_mixed > 0.5 * by_full && by_mixed < 2.0 * by_full,
        "the cast weights moved by {by_mixed} in bf16, {by_full} in f32 (L1)"
    );
    let (rf, rm) = (
        visit(full.model()).running_means,
        visit(mixed.model()).running_means,
    );
    assert!(!rm.is_empty() && rf.len() == rm.len());
    assert!(
        rm.iter().any(|&v| v != 0.0),
        "running statistics updated: {rm:?}"
    );
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let diff: Vec<f32> = rf.iter().zip(&rm).map(|(a, b)| a - b).collect();
    let error = norm(&diff) / norm(&rf);
    assert!(
        error < 0.05,
        "running means differ by {error} (relative L2)"
    );
}

#[test]
fn bf16_features_are_f32_and_close_to_f32_features() {
    let net = model().init_seeded(&Device::flex(), 2).unwrap().encoder;
    let images = Smooth.pairs(&[0, 1, 2, 3, 4, 5], 1).unwrap().0;
    let embed = |p: Precision| {
        BurnEmbedder::new(net.clone(), Device::flex(), Normalization::identity(), "e")
            .with_precision(p)
            .unwrap()
            .embed(images.view())
            .unwrap()
    };
    let (full, mixed) = (embed(Precision::F32), embed(Precision::Bf16));
    let named = BurnEmbedder::new(net.clone(), Device::flex(), Normalization::identity(), "e");
    let named = named.with_precision(Precision::Bf16).unwrap();
    assert_eq!(named.name(), "e@bf16");
    assert!(
        named.with_precision(Precision::F32).is_err(),
        "the cast is one way"
    );
    let error = (&full - &mixed).mapv(|v| v * v).sum().sqrt() / full.mapv(|v| v * v).sum().sqrt();
    assert!(error > 0.0 && error < 0.03, "relative L2 error {error}");
}
