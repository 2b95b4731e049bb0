//! Exact hypervolume of minimised objective vectors against an explicit reference point.
//!
//! [`hypervolume`] is exact in any dimension (slicing along the last objective); it compares the
//! NSGA-II baseline with the exact front (`qmap front --method nsga2`).

use super::{Criterion, FrontPoint};

/// The hypervolume dominated by `points` (minimised objective vectors) and bounded by
/// `reference`, exact in any dimension (slicing along the last objective; O(n^d log n), meant for
/// d ≤ 3). Points not strictly better than the reference in every objective contribute nothing.
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> f64 {
    let d = reference.len();
    let pts: Vec<&[f64]> = points
        .iter()
        .map(Vec::as_slice)
        .filter(|p| p.len() == d && p.iter().zip(reference).all(|(x, r)| x < r))
        .collect();
    hv(&pts, reference)
}

fn hv(points: &[&[f64]], reference: &[f64]) -> f64 {
    let d = reference.len();
    if points.is_empty() {
        return 0.0;
    }
    if d == 1 {
        let m = points.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
        return reference[0] - m;
    }
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a[d - 1].total_cmp(&b[d - 1]));
    let mut vol = 0.0;
    for i in 0..sorted.len() {
        let z = sorted[i][d - 1];
        let next = sorted.get(i + 1).map_or(reference[d - 1], |p| p[d - 1]);
        if next <= z {
            continue;
        }
        let slice: Vec<&[f64]> = sorted[..=i].iter().map(|p| &p[..d - 1]).collect();
        vol += hv(&slice, &reference[..d - 1]) * (next - z);
    }
    vol
}

/// The hypervolume of points over `criteria` (see [`hypervolume`]).
pub fn front_hypervolume(points: &[FrontPoint], criteria: &[Criterion], reference: &[f64]) -> f64 {
    let v: Vec<Vec<f64>> = points.iter().map(|p| p.costs(criteria)).collect();
    hypervolume(&v, reference)
}
