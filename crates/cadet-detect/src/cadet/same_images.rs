//! Which images of a set are images a calibration kept numbers of: equal to the rounding of a sum taken in
//! another order (tolerances per number type below) (an image's transform views reordered changes the last bits of its statistics, and bit
//! equality then missed most of a calibration's own X⁽²⁾ scored as a test set).

/// Relative tolerance for statistics computed in `f64` (X⁽²⁾'s): 1e-10 of the row's largest magnitude. Sums in
/// another order differ by about 1e-15 relative; a looser tolerance matched unseen images to X⁽²⁾ by chance
/// where a method keeps one number per image (1e-6: 14 of 2,400 pool images under `local`).
pub(crate) const F64_TOLERANCE: f64 = 1e-10;

/// Relative tolerance for features kept in `f32` (X⁽¹⁾'s mean unit features, one number per dimension: a
/// chance match of every dimension is out of the question): 1e-5, above `f32` rounding of a mean over views.
pub(crate) const F32_TOLERANCE: f64 = 1e-5;

/// How many of `probes` match a row of `kept`: every number within `tolerance` times the larger row's largest
/// magnitude. Rows of different lengths never match.
pub(crate) fn count_matches(kept: &[Vec<f64>], probes: &[Vec<f64>], tolerance: f64) -> usize {
    let scale = |row: &[f64]| row.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    // Rows sorted by their first number: the candidates of a probe lie in a window around its own.
    let mut sorted: Vec<(&[f64], f64)> = kept
        .iter()
        .filter(|row| !row.is_empty() && row.iter().all(|v| v.is_finite()))
        .map(|row| (row.as_slice(), scale(row)))
        .collect();
    sorted.sort_by(|a, b| a.0[0].total_cmp(&b.0[0]));
    let widest = sorted.iter().fold(0.0f64, |m, (_, s)| m.max(*s));
    probes
        .iter()
        .filter(|probe| {
            let Some(&first) = probe.first() else {
                return false;
            };
            let own = scale(probe);
            let window = tolerance * own.max(widest);
            let start = sorted.partition_point(|(row, _)| row[0] < first - window);
            sorted[start..]
                .iter()
                .take_while(|(row, _)| row[0] <= first + window)
                .any(|(row, s)| {
                    let tolerance = tolerance * own.max(*s);
                    row.len() == probe.len()
                        && row
                            .iter()
                            .zip(probe.iter())
                            .all(|(a, b)| (a - b).abs() <= tolerance)
                })
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_matches_and_other_rows_do_not() {
        let kept = vec![
            vec![0.5, -2.0, 3.0],
            vec![1.5, 0.0, 1e-9],
            vec![-0.25, 4.0, 4.0],
        ];
        // The same rows, one with last-bit differences, one in another order of sums.
        let near = |row: &[f64]| row.iter().map(|v| v * (1.0 + 1e-13)).collect::<Vec<_>>();
        let probes = vec![near(&kept[0]), kept[1].clone(), near(&kept[2])];
        assert_eq!(count_matches(&kept, &probes, F64_TOLERANCE), 3);
        // One number a millionth away matches f32's tolerance, not f64's.
        let far = vec![vec![0.5 * (1.0 + 1e-6), -2.0, 3.0]];
        assert_eq!(count_matches(&kept, &far, F64_TOLERANCE), 0);
        assert_eq!(count_matches(&kept, &far, F32_TOLERANCE), 1);
        // Rows that differ in one number by more than the tolerance, or in length.
        let others = vec![
            vec![0.5, -2.0, 3.0001],
            vec![1.5, 0.0],
            vec![9.0, 9.0, 9.0],
            vec![],
        ];
        assert_eq!(count_matches(&kept, &others, F32_TOLERANCE), 0);
        assert_eq!(count_matches(&[], &probes, F32_TOLERANCE), 0);
    }

    #[test]
    fn many_rows_agree_with_brute_force() {
        // A grid of rows with close first numbers: the window search against comparing every pair.
        let kept: Vec<Vec<f64>> = (0..200)
            .map(|i| vec![(i / 10) as f64 * 1e-7, i as f64, (i % 7) as f64])
            .collect();
        let probes: Vec<Vec<f64>> = (0..300)
            .map(|i| vec![(i / 10) as f64 * 1e-7, (i % 250) as f64, (i % 7) as f64])
            .collect();
        let brute = probes
            .iter()
            .filter(|p| {
                kept.iter().any(|k| {
                    let t = F32_TOLERANCE
                        * k.iter().chain(p.iter()).fold(0.0f64, |m, v| m.max(v.abs()));
                    k.iter().zip(p.iter()).all(|(a, b)| (a - b).abs() <= t)
                })
            })
            .count();
        assert_eq!(count_matches(&kept, &probes, F32_TOLERANCE), brute);
        assert!(brute > 0 && brute < probes.len());
    }

    /// One number per image (a single local statistic), thousands of images: unseen images must not match by
    /// chance (at 1e-6, 14 of 2,400 unseen pool images were taken for X2's in hostile pass 14).
    #[test]
    fn single_numbers_of_other_images_do_not_collide() {
        let draw = |seed: u64, n: usize| -> Vec<Vec<f64>> {
            let mut z = seed;
            (0..n)
                .map(|_| {
                    z = z
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    vec![0.2 + 0.3 * (z >> 11) as f64 / (1u64 << 53) as f64]
                })
                .collect()
        };
        let (kept, probes) = (draw(1, 2000), draw(2, 2400));
        assert_eq!(count_matches(&kept, &probes, F64_TOLERANCE), 0);
        assert!(
            count_matches(&kept, &probes, 1e-6) > 0,
            "the old tolerance collides"
        );
    }
}
