//! Images two feature sets share, whatever their order: a two-sample test, a drift check or a validity split
//! between sets that share images promises nothing, and a reordered copy of a file is the same set.

use std::collections::HashSet;

use ndarray::{ArrayView2, ArrayView3};

/// An image's identity from its features: a 64-bit hash of the hashes of its views' rows (their bit
/// patterns), sorted (its views reordered are the same image). Hashes rather than the features themselves: a
/// pool of thousands of images with 51 views of 2048 features is gigabytes.
type Fingerprint = u64;

fn fingerprints(set: ArrayView3<'_, f32>) -> Vec<Fingerprint> {
    use std::hash::{Hash, Hasher};
    let hash = |value: &dyn Fn(&mut std::hash::DefaultHasher)| {
        // DefaultHasher::new() has fixed keys: the same fingerprint in every process.
        let mut h = std::hash::DefaultHasher::new();
        value(&mut h);
        h.finish()
    };
    set.outer_iter()
        .map(|image| {
            let mut views: Vec<u64> = image
                .outer_iter()
                .map(|view| hash(&|h| view.iter().for_each(|v| v.to_bits().hash(h))))
                .collect();
            views.sort_unstable();
            hash(&|h| views.hash(h))
        })
        .collect()
}

/// How many images of `b` (`images × views × features`) are images of `a`: bit-equal features, each image's
/// views in any order.
pub fn shared_images(a: ArrayView3<'_, f32>, b: ArrayView3<'_, f32>) -> usize {
    let known: HashSet<Fingerprint> = fingerprints(a).into_iter().collect();
    fingerprints(b)
        .into_iter()
        .filter(|f| known.contains(f))
        .count()
}

/// How many rows of `b` are rows of `a` (bit-equal), in any order.
pub fn shared_rows(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> usize {
    shared_images(
        a.insert_axis(ndarray::Axis(1)),
        b.insert_axis(ndarray::Axis(1)),
    )
}

/// How many images of `set` repeat an earlier one (bit-equal features, views in any order).
pub fn repeated_images(set: ArrayView3<'_, f32>) -> usize {
    let mut seen = HashSet::new();
    fingerprints(set)
        .into_iter()
        .filter(|f| !seen.insert(*f))
        .count()
}

/// The check the programs make of two sets that must be different samples: refused when `shared` of `b`'s
/// `b_len` rows are rows of `a` and they are at least half of the smaller set (a copy, a reordered copy or a
/// large part of one); otherwise `Some(warning)` when any are shared, `None` when none.
///
/// ```
/// use cadet_report::overlap::{shared_rows, two_samples};
/// let x = ndarray::array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let reordered = ndarray::array![[5.0f32, 6.0], [1.0, 2.0], [3.0, 4.0]];
/// let shared = shared_rows(x.view(), reordered.view());
/// assert_eq!(shared, 3);
/// assert!(two_samples(("X", 3), ("Y", 3), shared).is_err());
/// assert!(two_samples(("X", 30), ("Y", 30), 1).unwrap().is_some()); // one row in common: said
/// assert_eq!(two_samples(("X", 30), ("Y", 30), 0), Ok(None));
/// ```
pub fn two_samples(
    (a_name, a_len): (&str, usize),
    (b_name, b_len): (&str, usize),
    shared: usize,
) -> Result<Option<String>, String> {
    if shared == 0 {
        return Ok(None);
    }
    let smaller = a_len.min(b_len).max(1);
    if 2 * shared >= smaller {
        let what = if shared == a_len && shared == b_len {
            "the same rows (in another order)".to_string()
        } else {
            format!("{shared} of their rows in common")
        };
        return Err(format!(
            "{a_name} and {b_name} hold {what}: the test needs two different samples"
        ));
    }
    Ok(Some(format!(
        "warning: {shared} of the {b_len} rows of {b_name} are rows of {a_name}; the test assumes two \
         independent samples"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_match_with_their_views_in_any_order() {
        let a = ndarray::Array3::from_shape_fn((4, 3, 2), |(i, t, k)| (i * 10 + t * 3 + k) as f32);
        let mut b = a.clone();
        // Image 0 with its views reordered, image 1 changed in one number.
        b.slice_mut(ndarray::s![0, .., ..]).assign(&ndarray::array![
            [6.0f32, 7.0],
            [0.0, 1.0],
            [3.0, 4.0]
        ]);
        b[[1, 0, 0]] += 0.5;
        assert_eq!(shared_images(a.view(), b.view()), 3);
        assert_eq!(repeated_images(a.view()), 0);
        let doubled = ndarray::concatenate![ndarray::Axis(0), a, a.slice(ndarray::s![..2, .., ..])];
        assert_eq!(repeated_images(doubled.view()), 2);
    }
}
