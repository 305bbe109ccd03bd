//! Same seed, same result, whatever the number of threads or the chunking.

mod common;

use cadet_mmd::{CosineKernel, GaussianKernel, PermutationTest};
use common::{gaussian, rng};

#[test]
fn independent_of_threads_and_chunks() {
    let mut r = rng(1);
    let (x, y) = (gaussian(&mut r, 40, 16, 0.0), gaussian(&mut r, 35, 16, 0.2));
    let run = |chunk: Option<usize>, threads: usize| {
        let mut params = PermutationTest::params()
            .n_perm(137)
            .seed(99)
            .keep_null(true);
        if let Some(c) = chunk {
            params = params.chunk_size(c);
        }
        let test = params.check().unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            (
                test.two_sample(x.view(), y.view(), &CosineKernel).unwrap(),
                test.two_sample(x.view(), y.view(), &GaussianKernel::median_heuristic())
                    .unwrap(),
            )
        })
    };
    let reference = run(None, 1);
    for (chunk, threads) in [(Some(1), 2), (Some(7), 3), (Some(500), 1), (None, 4)] {
        let other = run(chunk, threads);
        for (a, b) in [(&reference.0, &other.0), (&reference.1, &other.1)] {
            assert_eq!(a.p_value, b.p_value);
            assert_eq!(a.statistic, b.statistic);
            let (na, nb) = (a.null.as_ref().unwrap(), b.null.as_ref().unwrap());
            for (u, v) in na.iter().zip(nb) {
                assert!((u - v).abs() <= 1e-9 * u.abs().max(1e-6), "{u} vs {v}");
            }
        }
    }
    let other_seed = PermutationTest::params()
        .n_perm(137)
        .seed(100)
        .keep_null(true)
        .check()
        .unwrap();
    let changed = other_seed
        .two_sample(x.view(), y.view(), &CosineKernel)
        .unwrap();
    assert_ne!(changed.null, reference.0.null);
}
