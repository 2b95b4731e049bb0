//! Bit-widths and the model settings beyond architecture and mapping (packing, partial sums,
//! the seed fork's compatibility switch).

use crate::spec::PackingMode;

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
