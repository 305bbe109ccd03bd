//! Batches of views: layout, determinism under a seed, independence from threads and batching.

use cadet_augment::{Transform, cadet_eval, image_rng, simclr_train, views};
use ndarray::{Array4, s};

fn images(n: usize) -> Array4<f32> {
    Array4::from_shape_fn((n, 3, 20, 20), |(i, c, y, x)| {
        ((i * 5 + c * 3 + y * 20 + x) % 31) as f32 / 30.0
    })
}

#[test]
fn layout_matches_per_image_streams() {
    let imgs = images(3);
    let t = simclr_train(16, 1.0);
    let out = views(imgs.view(), 4, &t, 11, 0).unwrap();
    assert_eq!(out.dim(), (12, 3, 16, 16));
    // Image 1's third view is the third draw from stream 1.
    let mut rng = image_rng(11, 1);
    let mut third = None;
    for _ in 0..3 {
        third = Some(t.apply(imgs.slice(s![1, .., .., ..]), &mut rng).unwrap());
    }
    assert_eq!(out.slice(s![6, .., .., ..]), third.unwrap());
}

#[test]
fn same_seed_same_views_whatever_the_threads_and_batching() {
    let imgs = images(6);
    let t = cadet_eval(16);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| views(imgs.view(), 5, &t, 3, 0).unwrap())
    };
    let one = run(1);
    assert_eq!(one, run(4));
    // The last three images as their own batch, with their global index.
    let tail = views(imgs.slice(s![3.., .., .., ..]), 5, &t, 3, 3).unwrap();
    assert_eq!(tail, one.slice(s![15.., .., .., ..]));
    assert_ne!(one, views(imgs.view(), 5, &t, 4, 0).unwrap());
}

#[test]
fn empty_input_is_an_error() {
    let imgs = images(0);
    assert!(views(imgs.view(), 5, &cadet_eval(8), 0, 0).is_err());
    assert!(views(images(1).view(), 0, &cadet_eval(8), 0, 0).is_err());
}
