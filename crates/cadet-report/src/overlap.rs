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
                // As numbers: -0.0 is 0.0 (a copy with its zeros' signs flipped is the same set to every
                // kernel; hostile pass 18).
                .map(|view| hash(&|h| view.iter().for_each(|v| (v + 0.0).to_bits().hash(h))))
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

/// How many rows of `set` repeat an earlier one (bit-equal), counted where repeats mean a set given more than
/// once: rows of two or more columns with a fractional value somewhere (features). Data of one column, or of
/// whole numbers (counts, categories), repeat by nature: 0 for them.
///
/// ```
/// use cadet_report::overlap::repeated_rows;
/// let features = ndarray::array![[0.5f32, 1.25], [0.1, 0.2], [0.5, 1.25]];
/// assert_eq!(repeated_rows(features.view()), 1);
/// let counts = ndarray::array![[1.0f32, 2.0], [1.0, 2.0]];
/// assert_eq!(repeated_rows(counts.view()), 0);
/// ```
pub fn repeated_rows(set: ArrayView2<'_, f32>) -> usize {
    let continuous = set.ncols() >= 2 && set.iter().any(|v| v.fract() != 0.0);
    match continuous {
        true => repeated_images(set.insert_axis(ndarray::Axis(1))),
        false => 0,
    }
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

/// The check the programs make of one sample whose rows must be distinct draws (an X⁽²⁾, each side of a
/// two-sample test): refused when `repeated` of its `len` rows repeat earlier ones and they are at least half
/// of it (a set given twice over); otherwise `Some(warning)` when any repeat, `None` when none. A repeated row
/// counts twice in a test that assumes independent draws: a calibration set of 50 images given twice claims
/// |X⁽²⁾| = 100 and p-values twice as fine as its images allow.
///
/// ```
/// use cadet_report::overlap::one_sample;
/// assert!(one_sample("X2", 100, 50).is_err()); // every image twice
/// assert!(one_sample("X2", 100, 1).unwrap().is_some()); // one repeat: said
/// assert_eq!(one_sample("X2", 100, 0), Ok(None));
/// ```
pub fn one_sample(name: &str, len: usize, repeated: usize) -> Result<Option<String>, String> {
    if repeated == 0 {
        return Ok(None);
    }
    if 2 * repeated >= len.max(1) {
        return Err(format!(
            "{repeated} of the {len} rows of {name} repeat other rows (equal values): the same images given more \
             than once; each image once"
        ));
    }
    Ok(Some(format!(
        "warning: {repeated} of the {len} rows of {name} repeat other rows (equal values); the test assumes \
         independent draws"
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
        // Zeros signed either way are one number.
        let (mut plus, mut minus) = (a.clone(), a.clone());
        plus[[2, 1, 0]] = 0.0;
        minus[[2, 1, 0]] = -0.0;
        assert_eq!(shared_images(plus.view(), minus.view()), 4);
    }
}
