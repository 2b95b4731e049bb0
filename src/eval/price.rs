//! Pricing counted transfers at some bit-widths: words, capacity checks, energy and cycles
//! (Timeloop v3.0.3's `src/model/buffer.cpp` for the cycles), per tensor and combined.

use super::counts::Counts;
use super::packing::{div_ceil, Packer};
use super::{Evaluation, LevelStats, TensorStats};
use crate::model::{Arch, ModelOptions, Problem, PsumPolicy};
use crate::spec::PackingMode;

/// Why pricing rejects counted transfers at some bit-widths.
pub(super) enum PriceInvalid {
    Width { level: usize, tensor: usize },
    Capacity { level: usize, used: u64, cap: u64 },
}

/// Energy of the mapping's MACs at the bit-widths of `opts` (pJ).
pub(super) fn mac_energy(problem: &Problem, arch: &Arch, c: &Counts, opts: &ModelOptions) -> f64 {
    c.macs as f64 * mac_energy_per_op(arch, problem, opts)
}

/// Words, capacity checks, energy and cycles of counted transfers at the bit-widths of `opts`
/// (`prices` is scratch).
pub(super) fn price(
    problem: &Problem,
    arch: &Arch,
    c: &Counts,
    prices: &mut Vec<TensorPrice>,
    opts: &ModelOptions,
) -> Evaluation {
    let macs = c.macs;
    match price_core(problem, arch, c, prices, opts, true) {
        Err(PriceInvalid::Width { level, tensor }) => {
            let (level, bits) = (
                &arch.levels[level],
                opts.bits.as_ref().map_or(0, |b| b.0[tensor]),
            );
            Evaluation::invalid(
                Some(&level.name),
                format!(
                    "{} at {bits} bits does not fit a {}-bit word",
                    problem.tensors[tensor].name, level.word_bits
                ),
                macs,
            )
        }
        Err(PriceInvalid::Capacity { level, used, cap }) => Evaluation::invalid(
            Some(&arch.levels[level].name),
            format!("mapped tile size {used} exceeds buffer capacity {cap}"),
            macs,
        ),
        Ok((energy, cycles, levels)) => {
            let mac_energy = mac_energy(problem, arch, c, opts);
            Evaluation {
                valid: true,
                invalid: None,
                energy_pj: energy + mac_energy,
                cycles,
                macs,
                utilization: c.mac_instances_used as f64 / arch.mac.instances as f64
                    * c.compute_cycles as f64
                    / cycles as f64,
                mac_instances_used: c.mac_instances_used,
                mac_energy_pj: mac_energy,
                compute_cycles: c.compute_cycles,
                levels,
            }
        }
    }
}

/// How tensor `t`'s counts at level `l` become words under `opts` (partial sums below the
/// outermost Outputs level at `psum_bits` when set).
pub(super) fn packer(
    problem: &Problem,
    arch: &Arch,
    c: &Counts,
    opts: &ModelOptions,
    l: usize,
    t: usize,
) -> Packer {
    let level = &arch.levels[l];
    let bits = match &opts.bits {
        None => level.word_bits,
        Some(b) => match opts.psum {
            PsumPolicy::Bits(pb) if problem.tensors[t].read_write && l < c.outer_keeper[t] => {
                pb as u64
            }
            _ => b.0[t] as u64,
        },
    };
    Packer::new(opts.packing, bits, level.word_bits)
}

/// One tensor's transfers at one level, priced.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LevelPrice {
    reads: u64,
    fills: u64,
    updates: u64,
    energy: f64,
    /// What its tile takes of the level: words, or bits under ideal packing.
    capacity_use: u64,
}

/// One tensor's transfers priced at one bit-width, per level (zeros where it is not kept).
/// A mapping's price is the combination of its tensors' prices, so a batch search prices each
/// tensor at each of its own packing classes and combines them per bit choice.
#[derive(Debug, Clone, Default)]
pub struct TensorPrice {
    levels: Vec<LevelPrice>,
    /// Storage energy over all levels (the sum of `levels[..].energy`).
    energy: f64,
}

impl TensorPrice {
    /// The tensor's storage energy over all levels (pJ). The sum over tensors equals the
    /// mapping's storage energy up to rounding (the evaluator sums level by level).
    pub fn energy(&self) -> f64 {
        self.energy
    }
}

/// Whether capacities are summed in bits (ideal packing of sub-word bit-widths).
pub(super) fn capacity_in_bits(opts: &ModelOptions) -> bool {
    opts.packing == PackingMode::Ideal && opts.bits.is_some()
}

impl TensorPrice {
    /// Prices tensor `t`'s counted transfers at the bit-widths of `opts` into `self`.
    fn price(
        &mut self,
        problem: &Problem,
        arch: &Arch,
        c: &Counts,
        t: usize,
        opts: &ModelOptions,
    ) -> Result<(), PriceInvalid> {
        let out = self;
        out.levels.clear();
        out.levels.resize(arch.levels.len(), LevelPrice::default());
        for (l, level) in arch.levels.iter().enumerate() {
            let i = c.at(l, t);
            if !c.keep[i] {
                continue;
            }
            let p = packer(problem, arch, c, opts, l, t);
            // Bit-widths above the word size are invalid (except partial sums, which span words).
            if opts.bits.is_some() && level.word_bits > 1 && p.bits > level.word_bits {
                let is_psum = matches!(opts.psum, PsumPolicy::Bits(_))
                    && problem.tensors[t].read_write
                    && l < c.outer_keeper[t];
                if !is_psum {
                    return Err(PriceInvalid::Width {
                        level: l,
                        tensor: t,
                    });
                }
            }
            let (r, f, u) = (
                p.words(c.reads[i]),
                p.words(c.fills[i]),
                p.words(c.updates[i]),
            );
            let b = level.block_size;
            let e_inst = div_ceil(r, b) as f64 * level.read_energy
                + div_ceil(f, b) as f64 * level.write_energy
                + div_ceil(u, b) as f64 * level.update_energy;
            // A cluster of instances shares one physical vector: its energy is spread over the
            // utilized instances of each utilized cluster (Timeloop's cluster utilisation).
            let energy = e_inst * utilized_clusters(level, c.spatial_above[l]) as f64;
            let capacity_use = if capacity_in_bits(opts) {
                c.tile_points[i] * p.bits
            } else {
                p.words(c.tile_points[i])
            };
            out.levels[l] = LevelPrice {
                reads: r,
                fills: f,
                updates: u,
                energy,
                capacity_use,
            };
        }
        out.energy = out.levels.iter().map(|lp| lp.energy).sum();
        Ok(())
    }
}

/// Prices tensor `t`'s transfers at the bit-widths of `opts` into `out` (whose buffers are
/// reused); false when its bit-width does not fit the words of a level keeping it.
pub fn tensor_price(
    problem: &Problem,
    arch: &Arch,
    c: &Counts,
    t: usize,
    opts: &ModelOptions,
    out: &mut TensorPrice,
) -> bool {
    out.price(problem, arch, c, t, opts).is_ok()
}

/// Capacity checks and storage energy (MACs excluded) of a mapping whose tensors are priced by
/// `part(t)` (for each tensor index t). Energies are summed level by level, tensors inner,
/// whichever way the parts were computed.
pub(super) fn combine<'p>(
    arch: &Arch,
    c: &Counts,
    part: impl Fn(usize) -> &'p TensorPrice,
    in_bits: bool,
) -> Result<f64, PriceInvalid> {
    let mut total = 0.0;
    for (l, level) in arch.levels.iter().enumerate() {
        let (mut energy, mut used) = (0.0, 0u64);
        for t in 0..c.nt {
            if c.keep[c.at(l, t)] {
                let lp = &part(t).levels[l];
                energy += lp.energy;
                used += lp.capacity_use;
            }
        }
        if !level.dummy {
            if let Some(cap) = level.capacity_words() {
                let used = if in_bits {
                    div_ceil(used, level.word_bits)
                } else {
                    used
                };
                if used > cap {
                    return Err(PriceInvalid::Capacity {
                        level: l,
                        used,
                        cap,
                    });
                }
            }
        }
        total += energy;
    }
    Ok(total)
}

/// Cycles of level `l` for a mapping whose tensors are priced by `part(t)`
/// ([`level_cycles`] over the words each tensor it keeps reads and writes per instance).
pub(super) fn level_cycles_of<'p>(
    level: &crate::model::Level,
    c: &Counts,
    part: impl Fn(usize) -> &'p TensorPrice,
    l: usize,
) -> u64 {
    let words = (0..c.nt).filter(|&t| c.keep[c.at(l, t)]).map(|t| {
        let lp = &part(t).levels[l];
        (lp.reads, lp.fills + lp.updates)
    });
    level_cycles(level, c.compute_cycles, words)
}

/// Cycles of a mapping whose tensors are priced by `part(t)`: the compute cycles stretched by
/// the slowest level's bandwidth.
pub fn combined_cycles<'p>(
    arch: &Arch,
    c: &Counts,
    part: impl Fn(usize) -> &'p TensorPrice + Copy,
) -> u64 {
    let mut cycles = c.compute_cycles;
    for (l, level) in arch.levels.iter().enumerate() {
        cycles = cycles.max(level_cycles_of(level, c, part, l));
    }
    cycles
}

/// Cycles of a level: its compute cycles stretched by its read, write and shared bandwidths,
/// computed as Timeloop v3.0.3 does (`BufferLevel::ComputePerformance`, `src/model/buffer.cpp`):
/// per tensor kept (in the problem's tensor order), the demands `reads / C` and
/// `(fills + updates) / C` words per cycle per instance in double precision (C = compute
/// cycles), summed over tensors into DR and DW; the slowdown is the least of 1, `read_bw / DR`,
/// `write_bw / DW` and `shared_bw / (DR + DW)` (each only where the bandwidth is below the
/// demand), and the level takes `ceil(C / slowdown)` cycles, also in double precision, so
/// floating-point rounding can add a cycle to the exact `ceil(words / bandwidth)` (eyeriss
/// exercise, C=M=64 P=Q=14 3×3: 206,193 where the exact quotient gives 206,192).
pub(super) fn level_cycles(
    level: &crate::model::Level,
    compute_cycles: u64,
    words: impl Iterator<Item = (u64, u64)>,
) -> u64 {
    if level.read_bandwidth.is_none()
        && level.write_bandwidth.is_none()
        && level.shared_bandwidth.is_none()
    {
        return compute_cycles;
    }
    let cc = compute_cycles as f64;
    let (mut dr, mut dw) = (0.0f64, 0.0f64);
    for (r, w) in words {
        dr += r as f64 / cc;
        dw += w as f64 / cc;
    }
    let mut slowdown = 1.0f64;
    if let Some(bw) = level.read_bandwidth.filter(|&bw| bw < dr) {
        slowdown = slowdown.min(bw / dr);
    }
    if let Some(bw) = level.write_bandwidth.filter(|&bw| bw < dw) {
        slowdown = slowdown.min(bw / dw);
    }
    if let Some(bw) = level.shared_bandwidth.filter(|&bw| bw < dr + dw) {
        slowdown = slowdown.min(bw / (dr + dw));
    }
    (cc / slowdown).ceil() as u64
}

/// Storage energy (pJ, MACs excluded) of a mapping from its tensors' prices `part(t)` at the
/// bit-widths of `opts` (the parts must be priced at `opts`' classes); None when the tiles do
/// not fit. Add MACs × [`mac_energy_per_op`] for the mapping's energy, [`combined_cycles`] for
/// cycles.
pub fn combine_storage<'p>(
    arch: &Arch,
    c: &Counts,
    part: impl Fn(usize) -> &'p TensorPrice,
    opts: &ModelOptions,
) -> Option<f64> {
    combine(arch, c, part, capacity_in_bits(opts)).ok()
}

/// Storage energy (MACs excluded), cycles and, with `detail`, the per-level breakdown
/// (`prices` is scratch).
pub(super) fn price_core(
    problem: &Problem,
    arch: &Arch,
    c: &Counts,
    prices: &mut Vec<TensorPrice>,
    opts: &ModelOptions,
    detail: bool,
) -> Result<(f64, u64, Vec<LevelStats>), PriceInvalid> {
    let nt = problem.tensors.len();
    prices.resize_with(nt, TensorPrice::default);
    for (t, out) in prices.iter_mut().enumerate() {
        out.price(problem, arch, c, t, opts)?;
    }
    let parts = &*prices;
    let part = |t: usize| &parts[t];
    let energy = combine(arch, c, part, capacity_in_bits(opts))?;
    let cycles = combined_cycles(arch, c, part);
    if !detail {
        return Ok((energy, cycles, vec![]));
    }
    let mut levels = Vec::with_capacity(arch.levels.len());
    for (l, level) in arch.levels.iter().enumerate() {
        let inst = c.spatial_above[l];
        let (mut tensors, mut level_energy, mut utilized_words) = (vec![], 0.0, 0);
        for (t, tensor) in problem.tensors.iter().enumerate() {
            let i = c.at(l, t);
            if !c.keep[i] {
                continue;
            }
            let lp = parts[t].levels[l];
            let p = packer(problem, arch, c, opts, l, t);
            let tile_points = c.tile_points[i];
            let tile_words = p.words(tile_points);
            level_energy += lp.energy;
            utilized_words += tile_words;
            tensors.push(TensorStats {
                name: tensor.name.clone(),
                tile_points,
                tile_words,
                partition_size: c.partition[i],
                packing: p.k(),
                instances: inst,
                reads: lp.reads * inst,
                fills: lp.fills * inst,
                updates: lp.updates * inst,
                reads_per_instance: lp.reads,
                fills_per_instance: lp.fills,
                updates_per_instance: lp.updates,
                energy_pj: lp.energy,
            });
        }
        levels.push(LevelStats {
            name: level.name.clone(),
            instances_used: inst,
            energy_pj: level_energy,
            cycles: level_cycles_of(level, c, part, l),
            utilized_words,
            capacity_words: level.capacity_words(),
            tensors,
        });
    }
    Ok((energy, cycles, levels))
}

/// Energy of one MAC at the model's bit-widths (weights × input activations; native widths use
/// the MAC's default energy).
pub fn mac_energy_per_op(arch: &Arch, problem: &Problem, opts: &ModelOptions) -> f64 {
    match &opts.bits {
        Some(b) => {
            let w = problem
                .tensor_index("Weights")
                .map(|t| b.0[t])
                .unwrap_or(16);
            let a = problem.tensor_index("Inputs").map(|t| b.0[t]).unwrap_or(16);
            arch.mac.energy_at(w, a)
        }
        None => arch.mac.energy_at(u32::MAX, u32::MAX),
    }
}

/// Clusters in use when `used` instances of `level` hold data: with a cluster size of 1, one per
/// instance; otherwise at most the number of clusters the level has.
pub(super) fn utilized_clusters(level: &crate::model::Level, used: u64) -> u64 {
    if level.cluster_size <= 1 {
        used
    } else {
        used.min((level.instances / level.cluster_size).max(1))
    }
}
