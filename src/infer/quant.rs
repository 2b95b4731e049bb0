//! Fake quantisation exactly as `tools/accuracy/README.md` ("The quantisation conventions")
//! states it: weights per output channel, symmetric, narrow range; activations per tensor from
//! calibration statistics, unsigned when the calibrated minimum is >= 0, else signed symmetric;
//! x / s by a float32 division, round half to even, clamp, times s.

use serde::Serialize;

/// A layer input's calibration statistics: min and max |x| over the calibration images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InputRange {
    pub min: f32,
    pub maxabs: f32,
}

impl Default for InputRange {
    fn default() -> Self {
        InputRange {
            min: f32::INFINITY,
            maxabs: 0.0,
        }
    }
}

impl InputRange {
    /// Widens the range by `values`.
    pub fn observe(&mut self, values: &[f32]) {
        for &v in values {
            self.min = self.min.min(v);
            self.maxabs = self.maxabs.max(v.abs());
        }
    }

    /// Whether the input's levels are signed (its calibrated minimum is negative).
    pub fn signed(&self) -> bool {
        self.min < 0.0
    }
}

/// `round(x / s)` clamped to [lo, hi], times s (float32; round half to even).
fn fake(x: f32, s: f32, lo: f32, hi: f32) -> f32 {
    (x / s).round_ties_even().clamp(lo, hi) * s
}

/// Weights `[M, rest]` (row = output channel) quantised per row to `bits`: qmax = 2^(b−1) − 1,
/// s = max|w| / qmax; an all-zero row stays zero.
pub fn quantise_weights(weights: &[f32], rows: usize, bits: u32) -> Vec<f32> {
    let qmax = ((1u32 << (bits - 1)) - 1) as f32;
    let per_row = weights.len() / rows;
    let mut out = Vec::with_capacity(weights.len());
    for row in weights.chunks_exact(per_row) {
        let s = row.iter().fold(0.0f32, |m, v| m.max(v.abs())) / qmax;
        if s > 0.0 {
            out.extend(row.iter().map(|&w| fake(w, s, -qmax, qmax)));
        } else {
            out.extend(row.iter().map(|_| 0.0));
        }
    }
    out
}

/// Activations quantised in place to `bits` with the input's calibrated range: unsigned levels
/// 0..2^b − 1 with s = max|x| / (2^b − 1), or signed −(2^(b−1) − 1)..2^(b−1) − 1 with
/// s = max|x| / (2^(b−1) − 1); a zero range gives zeros.
pub fn quantise_activations(values: &mut [f32], range: &InputRange, bits: u32) {
    let (lo, hi) = if range.signed() {
        let q = ((1u32 << (bits - 1)) - 1) as f32;
        (-q, q)
    } else {
        (0.0, ((1u32 << bits) - 1) as f32)
    };
    let s = range.maxabs / hi;
    if s == 0.0 {
        values.fill(0.0);
        return;
    }
    for v in values {
        *v = fake(*v, s, lo, hi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_narrow_range_per_channel() {
        // Row 0: max 1.0 at 2 bits → ternary {−1, 0, 1}; 0.5 is a tie → 0 (half to even).
        // Row 1: all zero stays zero. Row 2: max 3.0 at 3 bits: qmax 3, s 1: 1.5 → 2, 2.5 → 2.
        let w = [1.0, -0.6, 0.5, 0.0, 0.0, 0.0, 3.0, 1.5, 2.5];
        assert_eq!(&quantise_weights(&w, 3, 2)[..3], &[1.0, -1.0, 0.0]);
        assert_eq!(
            &quantise_weights(&w, 3, 3)[3..],
            &[0.0, 0.0, 0.0, 3.0, 2.0, 2.0]
        );
    }

    #[test]
    fn activations_unsigned_or_signed_by_the_calibrated_minimum() {
        let unsigned = InputRange {
            min: 0.0,
            maxabs: 3.0,
        };
        let mut x = [-1.0, 0.4, 1.6, 5.0];
        quantise_activations(&mut x, &unsigned, 2); // s = 1, levels 0..3
        assert_eq!(x, [0.0, 0.0, 2.0, 3.0]);
        let signed = InputRange {
            min: -1.0,
            maxabs: 2.0,
        };
        let mut x = [-5.0, -0.9, 0.9, 1.0];
        quantise_activations(&mut x, &signed, 2); // s = 2, levels −1..1
        assert_eq!(x, [-2.0, 0.0, 0.0, 0.0]);
    }
}
