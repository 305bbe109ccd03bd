//! MMD-CC on small sets: 100 random sets of 20 images from each scored set against the in-distribution images
//! of the MMD pool (the clean sets S_P, S_P⁽²⁾), each test at α; the single-view features it embeds are reused
//! by the baselines.

use cadet::data::Dataset;
use cadet::mmd::experiments::RejectionRate;
use cadet::mmd::{CosineKernel, Method, PermutationTest};
use cadet_core::{Embedder, NoProgress};
use ndarray::{Array2, ArrayView4};

use super::attacks::Attacked;
use super::{Args, BoxError};

/// Prints the share of MMD-CC tests that reject for the in-distribution test images, the held-out shapes and
/// each adversarial set against `pool`; returns those sets' single-view features, named, in that order.
pub(super) fn small_sets(
    args: &Args,
    embedder: &dyn Embedder,
    pool: &Dataset,
    [test, unseen]: [ArrayView4<'_, f32>; 2],
    attacked: &Attacked,
) -> Result<Vec<(String, Array2<f32>)>, BoxError> {
    let n = 20;
    println!(
        "\nMMD-CC on sets of {n} (encoder features, cosine kernel, 500 permutations): share of 100 tests with p ≤ {}",
        args.alpha
    );
    let pool = embedder.embed(pool.images_f32().view())?;
    let experiment = RejectionRate::params(n)
        .repeats(100)
        .alpha(args.alpha)
        .method(Method::MmdCc)
        .seed(3)
        .test(PermutationTest::params().n_perm(500))
        .check()?;
    let mut mmd_sets = vec![
        (
            "in-distribution test (the null holds)".to_string(),
            embedder.embed(test)?,
        ),
        ("held-out shapes".to_string(), embedder.embed(unseen)?),
    ];
    for (name, adversarial) in attacked {
        mmd_sets.push((
            format!("{name} adversarial"),
            embedder.embed(adversarial.view())?,
        ));
    }
    for (name, q) in &mmd_sets {
        let r = experiment.run_two_pools(pool.view(), q.view(), &CosineKernel, &NoProgress)?;
        println!(
            "  {name:<40} {:>5.1}%  (95% interval {:.1}–{:.1}%)",
            100.0 * r.rate,
            100.0 * r.interval.0,
            100.0 * r.interval.1
        );
    }
    Ok(mmd_sets)
}
