//! The Table 1 and Table 2 runners on pools whose answer is known.

mod common;

use cadet_core::NoProgress;
use cadet_mmd::experiments::{RejectionRate, SmallSetAuroc};
use cadet_mmd::{CosineKernel, Error, Method, PermutationTest};
use common::{gaussian, rng};

#[test]
fn rejection_rate_is_alpha_under_h0_and_high_under_a_shift() {
    let mut r = rng(3);
    let (p_pool, q_pool) = (gaussian(&mut r, 600, 6, 0.0), gaussian(&mut r, 300, 6, 1.5));
    for method in [Method::Mmd, Method::MmdCc] {
        let exp = RejectionRate::params(30)
            .repeats(300)
            .method(method)
            .seed(1)
            .test(PermutationTest::params().n_perm(99))
            .check()
            .unwrap();
        let null = exp
            .run_same_pool(p_pool.view(), &CosineKernel, &NoProgress)
            .unwrap();
        // Binomial(300, 0.05): mean 15, sd 3.8; 99.9% interval ≈ [4, 29].
        assert!(
            (4..=29).contains(&null.rejections),
            "{method:?} size: {} of 300",
            null.rejections
        );
        assert!(null.interval.0 <= null.rate && null.rate <= null.interval.1);
        let power = exp
            .run_two_pools(p_pool.view(), q_pool.view(), &CosineKernel, &NoProgress)
            .unwrap();
        assert!(power.rate > 0.9, "{method:?} power {}", power.rate);
        assert_eq!(
            power.rejections,
            power.p_values.iter().filter(|&&p| p <= 0.05).count()
        );
    }
}

#[test]
fn rejection_rate_is_reproducible_across_thread_counts() {
    let mut r = rng(4);
    let pool = gaussian(&mut r, 200, 4, 0.0);
    let exp = RejectionRate::params(10)
        .repeats(20)
        .test(PermutationTest::params().n_perm(49))
        .check()
        .unwrap();
    let run = |threads| {
        let pool_threads = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool_threads.install(|| {
            exp.run_same_pool(pool.view(), &CosineKernel, &NoProgress)
                .unwrap()
        })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn pools_too_small_and_bad_settings() {
    let mut r = rng(5);
    let small = gaussian(&mut r, 50, 3, 0.0);
    let exp = RejectionRate::params(20)
        .method(Method::MmdCc)
        .check()
        .unwrap();
    assert!(matches!(
        exp.run_same_pool(small.view(), &CosineKernel, &NoProgress),
        Err(Error::PoolTooSmall {
            has: 50,
            needs: 60,
            ..
        })
    ));
    assert!(matches!(
        exp.run_two_pools(
            small.view(),
            small.slice(ndarray::s![..10, ..]),
            &CosineKernel,
            &NoProgress
        ),
        Err(Error::PoolTooSmall {
            pool: "Q",
            has: 10,
            needs: 20
        })
    ));
    assert!(matches!(
        RejectionRate::params(1).check(),
        Err(Error::TooFewSamples { .. })
    ));
    assert!(matches!(
        RejectionRate::params(5).alpha(1.5).check(),
        Err(Error::Core(cadet_core::Error::InvalidParameter {
            name: "alpha",
            ..
        }))
    ));
    assert!(matches!(
        RejectionRate::params(5).repeats(0).check(),
        Err(Error::Core(cadet_core::Error::InvalidParameter { .. }))
    ));
    // MMD-CC with n = 10 needs a reference of 40 + S_P2 of 10 + a tested set of 10 = 60 clean samples.
    let t2 = SmallSetAuroc::params()
        .set_sizes(vec![10])
        .reference_size(40)
        .check()
        .unwrap();
    assert!(matches!(
        t2.run(small.view(), small.view(), &CosineKernel, &NoProgress),
        Err(Error::PoolTooSmall {
            pool: "in-distribution",
            has: 50,
            needs: 60
        })
    ));
    assert!(matches!(
        SmallSetAuroc::params().set_sizes(vec![]).check(),
        Err(Error::Core(cadet_core::Error::InvalidParameter { .. }))
    ));
    assert!(matches!(
        SmallSetAuroc::params().trials(0).check(),
        Err(Error::Core(cadet_core::Error::InvalidParameter { .. }))
    ));
}

#[test]
fn small_set_auroc_grows_with_set_size_and_is_chance_without_shift() {
    let mut r = rng(6);
    let (in_pool, out_pool, same) = (
        gaussian(&mut r, 400, 6, 0.0),
        gaussian(&mut r, 200, 6, 1.5),
        gaussian(&mut r, 200, 6, 0.0),
    );
    let exp = SmallSetAuroc::params()
        .set_sizes(vec![3, 20])
        .reference_size(60)
        .trials(150)
        .test(PermutationTest::params().n_perm(99))
        .check()
        .unwrap();
    let rows = exp
        .run(in_pool.view(), out_pool.view(), &CosineKernel, &NoProgress)
        .unwrap();
    assert!(rows[0].auroc > 0.6, "{rows:?}");
    assert!(
        rows[1].auroc > 0.95 && rows[1].auroc > rows[0].auroc,
        "{rows:?}"
    );
    let chance = exp
        .run(in_pool.view(), same.view(), &CosineKernel, &NoProgress)
        .unwrap();
    // 150 vs 150 trials: AUROC's sd under no difference is about 0.033.
    for row in chance {
        assert!(
            (row.auroc - 0.5).abs() < 0.15 && (row.auroc_statistic - 0.5).abs() < 0.15,
            "{row:?}"
        );
    }
}
