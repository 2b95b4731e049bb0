//! Bit-widths and the model settings beyond architecture and mapping (packing, partial sums,
//! the seed fork's compatibility switch).

use crate::spec::PackingMode;
use serde::{Deserialize, Serialize};

/// A layer's bit configuration: the bits of its input activations, its weights and its output
/// activations. The one bit-configuration type: instances list them, the table and its cache key
/// entries by them, the front selects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BitConfig {
    pub input_bits: u32,
    pub weight_bits: u32,
    pub output_bits: u32,
}

impl BitConfig {
    /// Inputs, weights and outputs at `i`, `w` and `o` bits.
    pub const fn new(i: u32, w: u32, o: u32) -> BitConfig {
        BitConfig {
            input_bits: i,
            weight_bits: w,
            output_bits: o,
        }
    }

    /// Every tensor at `b` bits.
    pub const fn uniform(b: u32) -> BitConfig {
        BitConfig::new(b, b, b)
    }
}

/// Per-tensor bit-widths (indexed like the problem's tensors).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bits(pub Vec<u32>);

/// What partial sums (Outputs below their outermost level) are stored at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PsumPolicy {
    /// At the output activation width (the seed's choice).
    #[default]
    OutputBits,
    /// At a fixed width (e.g. a 24-bit accumulator).
    Bits(u32),
}

/// Model settings beyond the architecture and the mapping.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelOptions {
    /// Per-tensor bit-widths; None = native (each tensor at each level's word size).
    pub bits: Option<Bits>,
    pub packing: PackingMode,
    pub psum: PsumPolicy,
    /// Reproduce the seed fork's extra inner-level Outputs fill per element.
    pub seed_compat: bool,
}
