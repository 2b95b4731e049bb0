//! How bit-widths become words: the seed's operands-per-word rule, the packers of the two
//! packing modes and the packing signatures that say when two option sets price alike.

use super::price::capacity_in_bits;
use crate::model::{Arch, ModelOptions, Problem, PsumPolicy};
use crate::spec::PackingMode;

/// Operands per word of a `bits`-wide value in `word_bits`-wide words (the seed's rule): words
/// of one bit are placeholders and never pack.
pub fn operands_per_word(word_bits: u64, bits: u64) -> u64 {
    if word_bits > 1 && bits < word_bits {
        div_floor(word_bits, bits)
    } else {
        1
    }
}

/// What the evaluator does with bit-widths, apart from MAC energy, as comparable data.
pub type PackingSignature = Vec<(u8, u64)>;

/// What pricing does with tensor `t`'s bit-width at every level: two option sets with equal
/// signatures for `t` price its transfers identically.
pub fn tensor_packing_signature(
    arch: &Arch,
    problem: &Problem,
    opts: &ModelOptions,
    t: usize,
) -> PackingSignature {
    let psum = match opts.psum {
        PsumPolicy::Bits(b) if problem.tensors[t].read_write => b as u64,
        _ => 0,
    };
    let mut sig = vec![(4, psum), (6, capacity_in_bits(opts) as u64)];
    for level in &arch.levels {
        let p = Packer::new(
            opts.packing,
            opts.bits
                .as_ref()
                .map_or(level.word_bits, |b| b.0[t] as u64),
            level.word_bits,
        );
        sig.push(if p.word_bits <= 1 || p.bits == p.word_bits {
            (0, 0)
        } else {
            match p.mode {
                PackingMode::Seed if p.bits > p.word_bits => (1, p.bits.div_ceil(p.word_bits)),
                PackingMode::Seed => (2, p.k()),
                PackingMode::Ideal => (3, p.bits),
            }
        });
    }
    sig
}

/// What the evaluator does with every tensor's bit-width, apart from MAC energy: two option
/// sets with equal signatures give every mapping the same storage counts, capacities and
/// storage energy (their energies differ only by MACs × the per-MAC energy difference).
pub fn packing_signature(arch: &Arch, problem: &Problem, opts: &ModelOptions) -> PackingSignature {
    let mut sig = vec![(5, opts.seed_compat as u64)];
    for t in 0..problem.tensors.len() {
        sig.extend(tensor_packing_signature(arch, problem, opts, t));
    }
    sig
}

/// How one tensor's counts at one level become words.
#[derive(Debug, Clone, Copy)]
pub(super) struct Packer {
    mode: PackingMode,
    pub(super) bits: u64,
    word_bits: u64,
    /// Operands per word ([`operands_per_word`]).
    k: u64,
}

impl Packer {
    pub(super) fn new(mode: PackingMode, bits: u64, word_bits: u64) -> Packer {
        Packer {
            mode,
            bits,
            word_bits,
            k: operands_per_word(word_bits, bits),
        }
    }
    pub(super) fn k(&self) -> u64 {
        self.k
    }
    /// Words for `n` scalars.
    pub(super) fn words(&self, n: u64) -> u64 {
        if self.word_bits <= 1 || self.bits == self.word_bits {
            return n;
        }
        match self.mode {
            PackingMode::Seed => {
                if self.bits > self.word_bits {
                    n * self.bits.div_ceil(self.word_bits)
                } else {
                    div_ceil(n, self.k)
                }
            }
            PackingMode::Ideal => div_ceil(n * self.bits, self.word_bits),
        }
    }
}

/// `n / d`, by a shift when `d` is a power of two.
pub(super) fn div_floor(n: u64, d: u64) -> u64 {
    if d.is_power_of_two() {
        n >> d.trailing_zeros()
    } else {
        n / d
    }
}

/// `n.div_ceil(d)`, by a shift when `d` is a power of two (word and block sizes usually are).
pub(super) fn div_ceil(n: u64, d: u64) -> u64 {
    if d.is_power_of_two() {
        let s = d.trailing_zeros();
        (n >> s) + (n & (d - 1) != 0) as u64
    } else {
        n.div_ceil(d)
    }
}
