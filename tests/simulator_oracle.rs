//! An independent oracle for `qmap::eval::evaluate`: a simulator that walks the loop nest point
//! by point on tiny problems and counts every transfer from explicit point sets, then compares
//! its per-instance reads / fills / updates at every level × tensor, and the energy recomputed
//! from those counts, with the evaluator's closed forms. It shares no logic with `eval.rs`: only
//! the model types (problem, architecture, mapping) are common.
//!
//! # The semantics simulated (DESIGN.md §2, the rules verified on Timeloop v3.0.3)
//!
//! * The nest, innermost first: for each storage level (innermost first) its spatial loops (X then
//!   Y: the fanout to the level below, or to the MACs), then its temporal loops (innermost first).
//!   Bound-1 loops are dropped: they never change an index.
//! * The tile of tensor t at level ℓ at a moment = the points of t touched by every loop at levels
//!   ≤ ℓ with the indices of all loops above ℓ fixed: each iteration point is projected
//!   (Σ coef·index per rank) into a `HashSet`. Timeloop represents point sets as axis-aligned
//!   hyper-rectangles (AAHRs), so each projected set is closed to the box spanned by its own
//!   points' per-rank minima and maxima (this is where the holes of a stride-2 Inputs tile are
//!   counted, as the references show); all differences and unions below are set operations.
//! * For each child keeper c of t (or the MACs) and its parent keeper p, every child instance
//!   (the spatial loops above c) walks the temporal loops above c as Timeloop v3.0.3's nest
//!   analysis does ([`Walk::Timeloop`], `nest-analysis.cpp`): with its default temporal
//!   extrapolation only iterations 0 and 1 of each loop are simulated, in odometer order, and a
//!   step at index 1 of loop i counts N_i − 1 times. Each step's tile is compared with the last
//!   tile walked ([`ChildState::need`]): the first is loaded whole; a translation equal to the
//!   one recorded (or the first one after a reset, which is recorded) loads `new \ old`; any
//!   other translation reloads the whole tile and clears the record. The MACs need their operand
//!   on every step. [`Walk::Exact`] (every step, `new \ old`) is the physically exact count,
//!   used only to show where Timeloop departs from it.
//! * Parent accesses (docs/model.md §2, commit 2fb46c2): the children of one parent instance
//!   (spatial loops at levels c+1..=p; for the MACs, levels 0..=c0) are grouped fanout by fanout,
//!   as Timeloop groups the children of each spatial fanout by identical tiles: a child's group
//!   is the sequence, over the fanouts with spatial loops between p and c, of the point set of
//!   the subtree under that fanout it descends from (the tile at the level below the fanout; for
//!   the MACs' own fanout, the operand point). Each group costs the parent one access per point
//!   it needs: multicast for read-only tensors, spatial reduction for Outputs. Loops over dims
//!   the tensor does not use give identical subtrees, and so do different indices whose offsets
//!   coincide (spatial P and R in one fanout). Overlapping halos of different subtrees are NOT
//!   merged (two neighbouring P-children of an Inputs tile with R > 1 share points, yet each is
//!   charged in full), and coincidence is judged per fanout, never across fanouts.
//! * Read-only tensors: child fills += points needed × the step's weight; parent reads += points
//!   needed per group × weight. Outputs: a child's fills are the points it received less the
//!   distinct elements it holds over the whole run (the first arrival of each needs no
//!   read-back); the parent counts an update per point per group (the drain); per parent
//!   instance reads = updates − distinct elements it ever saw updated. The outermost keeper has
//!   no fills.
//! * Packing (with bit-widths, the seed's rule): each per-instance count becomes
//!   ⌈count / ⌊16 / bits⌋⌉ words (levels here have 16-bit words), or ⌈count · bits / 16⌉ under
//!   ideal packing; energies are charged per ⌈words / block⌉ vector accesses.
//!
//! # Where Timeloop's walk departs from exact counting
//!
//! Timeloop does not ask whether the new tile equals the old one: it compares translations.
//! A step whose moves cancel out (W = P + R: from (R=1, P=0) to (R=0, P=1), translation 0 after
//! +1) reloads the whole unchanged tile; and because only iterations 0 and 1 are walked, the
//! step of an outer loop is compared with index 1 of the loops inside it, not their last index:
//! R3 M2 P4 above an Inputs tile, P moving 2 and R 1, walks (r, m, p) = (1, 1, 0) → (0, 0, 1), a
//! translation of +1 like R's own step, so Timeloop loads only the new column there, where the
//! full walk moves by −1 and reloads (`hand_window_across_wrap`). The evaluator follows Timeloop;
//! the property test counts how often the exact count differs.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use qmap::eval::{evaluate, Evaluation};
use qmap::model::{
    conv_problem, grouped_problem, matmul_problem, Arch, Bits, Level, LevelMapping, Loop, Mac,
    Mapping, ModelOptions, Problem, Tensor,
};
use qmap::spec::PackingMode;
use std::cell::RefCell;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

type Point = Vec<u64>;
type PointSet = HashSet<Point>;

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

/// How a child's steps are walked and what each step costs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Timeloop v3.0.3's nest analysis: iterations 0 and 1 of every temporal loop (the second
    /// weighing N − 1), each tile compared with the last one walked by its translation
    /// ([`ChildState::need`]). The evaluator must equal this exactly.
    Timeloop,
    /// Every step, each costing what the last tile lacks: the physically exact count, which
    /// Timeloop's extrapolation departs from (for the coverage counts only).
    Exact,
}

/// One non-unit loop of the flattened nest.
#[derive(Debug, Clone, Copy)]
struct SimLoop {
    level: usize,
    dim: usize,
    factor: u64,
    spatial: bool,
    /// Product of the factors of loops over the same dim inside this one: one step of this loop
    /// moves the dim by `stride`.
    stride: u64,
}

/// The nest innermost first (per level: spatial X, spatial Y, then temporal innermost first).
fn sim_nest(mapping: &Mapping, ndims: usize) -> Vec<SimLoop> {
    let mut inside = vec![1u64; ndims];
    let mut nest = Vec::new();
    for (level, lm) in mapping.levels.iter().enumerate() {
        let spatial = lm.spatial_x.iter().chain(&lm.spatial_y).map(|l| (*l, true));
        let temporal = lm.temporal.iter().map(|l| (*l, false));
        for (lp, spatial) in spatial.chain(temporal) {
            if lp.factor == 1 {
                continue;
            }
            nest.push(SimLoop {
                level,
                dim: lp.dim,
                factor: lp.factor,
                spatial,
                stride: inside[lp.dim],
            });
            inside[lp.dim] *= lp.factor;
        }
    }
    nest
}

/// Every index vector of loops with these factors, position 0 fastest.
fn odometer(factors: &[u64]) -> Vec<Vec<u64>> {
    let total: u64 = factors.iter().product();
    let mut out = Vec::with_capacity(total as usize);
    let mut idx = vec![0u64; factors.len()];
    for _ in 0..total {
        out.push(idx.clone());
        for (i, &f) in factors.iter().enumerate() {
            idx[i] += 1;
            if idx[i] < f {
                break;
            }
            idx[i] = 0;
        }
    }
    out
}

fn factors(loops: &[SimLoop]) -> Vec<u64> {
    loops.iter().map(|l| l.factor).collect()
}

fn project(tensor: &Tensor, dims: &[u64]) -> Point {
    tensor
        .ranks
        .iter()
        .map(|rank| rank.iter().map(|t| t.coef * dims[t.dim]).sum())
        .collect()
}

fn uses_dim(tensor: &Tensor, dim: usize) -> bool {
    tensor.ranks.iter().flatten().any(|t| t.dim == dim)
}

/// The AAHR Timeloop keeps for a projected point set: every point between the per-rank minima
/// and maxima of the points themselves.
fn hull(points: &PointSet, order: usize) -> PointSet {
    let mut lo = vec![u64::MAX; order];
    let mut hi = vec![0u64; order];
    for p in points {
        for r in 0..order {
            lo[r] = lo[r].min(p[r]);
            hi[r] = hi[r].max(p[r]);
        }
    }
    let spans: Vec<u64> = (0..order).map(|r| hi[r] - lo[r] + 1).collect();
    odometer(&spans)
        .into_iter()
        .map(|off| off.iter().zip(&lo).map(|(o, l)| o + l).collect())
        .collect()
}

/// Per-instance access counts of one tensor at one level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    reads: u64,
    fills: u64,
    updates: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.reads += o.reads;
        self.fills += o.fills;
        self.updates += o.updates;
    }
}

/// What a run exercised (for the coverage counts).
#[derive(Debug, Clone, Default)]
struct Observed {
    /// A step filled a non-empty proper part of the new tile (reuse of an overlap).
    overlap_advance: bool,
    /// ... for Inputs.
    inputs_overlap: bool,
    /// A read-only tensor served several children with one parent read.
    multicast: bool,
    /// Several children's Outputs were reduced into one parent update.
    reduction: bool,
    /// A child keeper and its parent keeper have levels between them that do not keep the tensor.
    bypass: bool,
    /// Children with different indices on relevant spatial loops had identical tiles (spatial
    /// offsets coincide, e.g. spatial P and R of one fanout) and shared a parent access.
    coincident: bool,
    /// A step of a loop other than the innermost (its inner loops wrapping) filled a non-empty
    /// proper part of the new tile: the sliding window carried across a wrap-around.
    slide_after_wrap: bool,
    /// A tile's AAHR holds points no iteration touches (stride-2 holes).
    holes: bool,
}

struct SimResult {
    /// counts[level][tensor]: instance id (indices of the spatial loops above the level) → counts.
    counts: Vec<Vec<BTreeMap<Vec<u64>, Counts>>>,
    /// Points of the tile of each (level, tensor) (the largest seen; all are equal here).
    tile_points: Vec<Vec<u64>>,
    mac_instances: u64,
    compute_steps: u64,
    obs: Observed,
}

fn simulate(problem: &Problem, mapping: &Mapping, walk: Walk) -> SimResult {
    let nd = problem.dims.len();
    let nl = mapping.levels.len();
    let nt = problem.tensors.len();
    let nest = sim_nest(mapping, nd);
    let mut res = SimResult {
        counts: vec![vec![BTreeMap::new(); nt]; nl],
        tile_points: vec![vec![0; nt]; nl],
        mac_instances: nest
            .iter()
            .filter(|l| l.spatial)
            .map(|l| l.factor)
            .product(),
        compute_steps: nest
            .iter()
            .filter(|l| !l.spatial)
            .map(|l| l.factor)
            .product(),
        obs: Observed::default(),
    };
    for t in 0..nt {
        let keepers: Vec<usize> = (0..nl).filter(|&l| mapping.levels[l].keep[t]).collect();
        let mut child = None;
        for &parent in &keepers {
            walk_pair(problem, &nest, t, child, parent, walk, &mut res);
            child = Some(parent);
        }
        for &l in &keepers {
            res.tile_points[l][t] = tile_at(problem, &nest, t, l).len() as u64;
        }
    }
    res
}

/// Computes tiles as explicit point sets. A tile "at cutoff ℓ" is what every loop at levels ≤ ℓ
/// touches with the indices of all other loops fixed; cutoff None enumerates no loop (the single
/// operand of one MAC at one step).
struct Tiler<'a> {
    tensor: &'a Tensor,
    nest: &'a [SimLoop],
    ndims: usize,
    /// Per cutoff, the dim offsets of every iteration of the loops it enumerates.
    offsets: HashMap<Option<usize>, Vec<Vec<u64>>>,
}

fn enumerated(l: &SimLoop, cutoff: Option<usize>) -> bool {
    cutoff.is_some_and(|c| l.level <= c)
}

impl<'a> Tiler<'a> {
    fn new(problem: &Problem, tensor: &'a Tensor, nest: &'a [SimLoop]) -> Self {
        Tiler {
            tensor,
            nest,
            ndims: problem.dims.len(),
            offsets: HashMap::new(),
        }
    }

    /// Dim values fixed by the loops above the cutoff (`idx` holds one index per nest loop).
    fn base(&self, idx: &[u64], cutoff: Option<usize>) -> Vec<u64> {
        let mut d = vec![0u64; self.ndims];
        for (l, &i) in self.nest.iter().zip(idx) {
            if !enumerated(l, cutoff) {
                d[l.dim] += i * l.stride;
            }
        }
        d
    }

    /// The tile (closed to its AAHR) and the number of points iterations really touch.
    fn tile_from_base(&mut self, base: &[u64], cutoff: Option<usize>) -> (PointSet, usize) {
        let (nest, nd) = (self.nest, self.ndims);
        let offsets = self.offsets.entry(cutoff).or_insert_with(|| {
            let inner: Vec<SimLoop> = nest
                .iter()
                .filter(|l| enumerated(l, cutoff))
                .copied()
                .collect();
            odometer(&factors(&inner))
                .into_iter()
                .map(|ix| {
                    let mut d = vec![0u64; nd];
                    for (l, i) in inner.iter().zip(&ix) {
                        d[l.dim] += i * l.stride;
                    }
                    d
                })
                .collect()
        });
        let exact: PointSet = offsets
            .iter()
            .map(|off| {
                let d: Vec<u64> = base.iter().zip(off).map(|(b, o)| b + o).collect();
                project(self.tensor, &d)
            })
            .collect();
        (hull(&exact, self.tensor.ranks.len()), exact.len())
    }
}

/// The tile of tensor t at level l with every loop above l at index 0.
fn tile_at(problem: &Problem, nest: &[SimLoop], t: usize, l: usize) -> PointSet {
    let mut tiler = Tiler::new(problem, &problem.tensors[t], nest);
    let idx = vec![0u64; nest.len()];
    let base = tiler.base(&idx, Some(l));
    tiler.tile_from_base(&base, Some(l)).0
}

fn sorted(set: &PointSet) -> Vec<Point> {
    let mut v: Vec<Point> = set.iter().cloned().collect();
    v.sort_unstable();
    v
}

/// The steps of a child's walk: the index vectors of the temporal loops above it (position 0
/// fastest) and each one's weight. [`Walk::Exact`]: every step, weight 1. [`Walk::Timeloop`]:
/// iterations 0 and 1 of each loop only, in odometer order, the corners at index 1 of loop i
/// weighing its N_i − 1 (Timeloop's temporal extrapolation).
fn visits(factors: &[u64], walk: Walk) -> Vec<(Vec<u64>, u64)> {
    match walk {
        Walk::Exact => odometer(factors).into_iter().map(|s| (s, 1)).collect(),
        Walk::Timeloop => {
            let two: Vec<u64> = factors.iter().map(|&f| f.min(2)).collect();
            odometer(&two)
                .into_iter()
                .map(|s| {
                    let w = s
                        .iter()
                        .zip(factors)
                        .map(|(&i, &f)| if i == 1 { f - 1 } else { 1 })
                        .product();
                    (s, w)
                })
                .collect()
        }
    }
}

/// The per-rank translation from one box to another of the same shape (their minima's
/// difference).
fn translation(from: &PointSet, to: &PointSet) -> Vec<i64> {
    let min = |s: &PointSet| -> Vec<i64> {
        let order = s.iter().next().map_or(0, |p| p.len());
        (0..order)
            .map(|r| s.iter().map(|p| p[r] as i64).min().unwrap())
            .collect()
    };
    min(to).iter().zip(min(from)).map(|(a, b)| a - b).collect()
}

/// What one child instance remembers between the steps of its walk: its last tile and, under
/// Timeloop's rule, the translation recorded (None: none yet, or reset).
#[derive(Default)]
struct ChildState {
    last: Option<PointSet>,
    recorded: Option<Vec<i64>>,
}

impl ChildState {
    /// The points a child must receive to hold `tile` now. Exact: what its last tile lacks.
    /// Timeloop (`OperationSpace::SaveAndSubtractIfSameStride`): the first tile whole; then the
    /// set difference when the translation from the last tile equals the recorded one, or
    /// nothing is recorded (it is recorded then); any other translation reloads the whole tile
    /// and clears the record. Also returns whether the difference was taken.
    fn need(&mut self, tile: &PointSet, walk: Walk) -> (PointSet, bool) {
        let Some(last) = self.last.replace(tile.clone()) else {
            return (tile.clone(), false);
        };
        let diff = || tile.difference(&last).cloned().collect();
        match walk {
            Walk::Exact => (diff(), true),
            Walk::Timeloop => {
                let t = translation(&last, tile);
                match &self.recorded {
                    None => {
                        self.recorded = Some(t);
                        (diff(), true)
                    }
                    Some(r) if *r == t => (diff(), true),
                    Some(_) => {
                        self.recorded = None;
                        (tile.clone(), false)
                    }
                }
            }
        }
    }
}

/// Walks the transfers of tensor `t` from `parent` (a keeper) to `child` (the next keeper below
/// it, or the MACs when None): every step of the child's walk ([`visits`]) and child instance.
fn walk_pair(
    problem: &Problem,
    nest: &[SimLoop],
    t: usize,
    child: Option<usize>,
    parent: usize,
    walk: Walk,
    res: &mut SimResult,
) {
    let tensor = &problem.tensors[t];
    let rw = tensor.read_write;
    let above = |l: &SimLoop| child.is_none_or(|c| l.level > c);
    let positions = |f: &dyn Fn(&SimLoop) -> bool| -> Vec<usize> {
        (0..nest.len()).filter(|&i| f(&nest[i])).collect()
    };
    let temporal = positions(&|l| above(l) && !l.spatial);
    let within = positions(&|l| above(l) && l.spatial && l.level <= parent);
    let across = positions(&|l| above(l) && l.spatial && l.level > parent);
    let factors_at = |pos: &[usize]| -> Vec<u64> { pos.iter().map(|&i| nest[i].factor).collect() };
    if parent > child.map_or(0, |c| c + 1) {
        res.obs.bypass = true;
    }
    // The fanouts between parent and child that have spatial loops. At each of them, Timeloop
    // groups that fanout's children by identical tiles (the whole subtree below each child);
    // a child instance's group is the sequence of its ancestors' subtree tiles, one per fanout.
    let fanouts: Vec<usize> = (child.map_or(0, |c| c + 1)..=parent)
        .filter(|&l| within.iter().any(|&i| nest[i].level == l))
        .collect();

    let steps = visits(&factors_at(&temporal), walk);
    let every_step = odometer(&factors_at(&temporal));
    let kids = odometer(&factors_at(&within));
    let mut tiler = Tiler::new(problem, tensor, nest);
    let index = |step: &[u64], kid: &[u64], outer: &[u64]| {
        let mut idx = vec![0u64; nest.len()];
        for (&i, &v) in temporal
            .iter()
            .zip(step)
            .chain(within.iter().zip(kid))
            .chain(across.iter().zip(outer))
        {
            idx[i] = v;
        }
        idx
    };
    for outer in odometer(&factors_at(&across)) {
        let mut states: Vec<ChildState> = (0..kids.len()).map(|_| ChildState::default()).collect();
        let mut child_counts = vec![Counts::default(); kids.len()];
        let mut par = Counts::default();
        for (k, (step, weight)) in steps.iter().enumerate() {
            // The outermost loop this step advanced (every loop inside it went back to 0).
            let moved: Option<usize> = (k > 0).then(|| {
                (0..temporal.len())
                    .rfind(|&i| step[i] != steps[k - 1].0[i])
                    .unwrap()
            });
            let mut subtrees: HashMap<(Option<usize>, Vec<u64>), Vec<Point>> = HashMap::new();
            let mut groups: BTreeMap<Vec<Vec<Point>>, (PointSet, usize, Vec<u64>)> =
                BTreeMap::new();
            for (ci, kid) in kids.iter().enumerate() {
                let idx = index(step, kid, &outer);
                let base = tiler.base(&idx, child);
                let (tile, exact) = tiler.tile_from_base(&base, child);
                if tile.len() > exact {
                    res.obs.holes = true;
                }
                // The MACs need their operand on every step.
                let need = match child {
                    None => tile.clone(),
                    Some(_) => states[ci].need(&tile, walk).0,
                };
                if child.is_some() {
                    if !need.is_empty() && need.len() < tile.len() {
                        res.obs.overlap_advance = true;
                        if tensor.name == "Inputs" {
                            res.obs.inputs_overlap = true;
                        }
                        if moved.is_some_and(|j| j > 0) {
                            res.obs.slide_after_wrap = true;
                        }
                    }
                    child_counts[ci].fills += weight * need.len() as u64;
                }
                // The tile of the subtree under fanout level l: loops at levels below l.
                let key: Vec<Vec<Point>> = fanouts
                    .iter()
                    .map(|&l| {
                        let cutoff = l.checked_sub(1);
                        let b = tiler.base(&idx, cutoff);
                        subtrees
                            .entry((cutoff, b))
                            .or_insert_with_key(|(c, b)| sorted(&tiler.tile_from_base(b, *c).0))
                            .clone()
                    })
                    .collect();
                // The child's indices on spatial loops over dims the tensor uses.
                let relevant_ix: Vec<u64> = within
                    .iter()
                    .zip(kid)
                    .filter(|(&i, _)| uses_dim(tensor, nest[i].dim))
                    .map(|(_, &v)| v)
                    .collect();
                match groups.entry(key) {
                    Entry::Vacant(e) => {
                        e.insert((need, 1, relevant_ix));
                    }
                    Entry::Occupied(mut e) => {
                        assert_eq!(
                            e.get().0,
                            need,
                            "one group's children need different points"
                        );
                        if e.get().2 != relevant_ix {
                            res.obs.coincident = true;
                        }
                        e.get_mut().1 += 1;
                    }
                }
            }
            for (need, members, _) in groups.values() {
                if *members > 1 && !need.is_empty() {
                    if rw {
                        res.obs.reduction = true;
                    } else {
                        res.obs.multicast = true;
                    }
                }
                if rw {
                    par.updates += weight * need.len() as u64;
                } else {
                    par.reads += weight * need.len() as u64;
                }
            }
        }
        if rw {
            // Read-modify-write: the first arrival of each element at a child is not a fill
            // (nothing to read back), and the first update of each element at the parent is
            // not read. Both counts are the elements held over the whole run (every step).
            let mut par_touched = PointSet::new();
            for (ci, kid) in kids.iter().enumerate() {
                let mut held = PointSet::new();
                for step in &every_step {
                    let base = tiler.base(&index(step, kid, &outer), child);
                    held.extend(tiler.tile_from_base(&base, child).0);
                }
                if child.is_some() {
                    child_counts[ci].fills -= held.len() as u64;
                }
                par_touched.extend(held);
            }
            par.reads += par.updates - par_touched.len() as u64;
        }
        if let Some(c) = child {
            for (kid, counts) in kids.iter().zip(&child_counts) {
                let id: Vec<u64> = kid.iter().chain(&outer).copied().collect();
                res.counts[c][t].entry(id).or_default().add(*counts);
            }
        }
        res.counts[parent][t].entry(outer).or_default().add(par);
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison with the evaluator
// ---------------------------------------------------------------------------------------------

/// Checks the evaluator against the simulator; Err describes the first difference.
fn compare(
    problem: &Problem,
    arch: &Arch,
    mapping: &Mapping,
    sim: &SimResult,
    ev: &Evaluation,
    opts: &ModelOptions,
) -> Result<(), String> {
    if !ev.valid {
        return Err(format!("evaluator rejected the mapping: {:?}", ev.invalid));
    }
    let mut diffs = Vec::new();
    if ev.macs != problem.bounds.iter().product::<u64>() {
        diffs.push(format!("macs {}", ev.macs));
    }
    if ev.compute_cycles != sim.compute_steps {
        diffs.push(format!(
            "compute cycles: eval {} sim {}",
            ev.compute_cycles, sim.compute_steps
        ));
    }
    if ev.mac_instances_used != sim.mac_instances {
        diffs.push(format!(
            "MAC instances: eval {} sim {}",
            ev.mac_instances_used, sim.mac_instances
        ));
    }
    let mut energy = ev.macs as f64 * arch.mac.energy;
    // Scalars to words at a level of `word` bits for a tensor at `bits`.
    let words = |n: u64, bits: u64, word: u64| -> u64 {
        match opts.packing {
            _ if bits >= word => n,
            PackingMode::Seed => n.div_ceil(word / bits),
            PackingMode::Ideal => (n * bits).div_ceil(word),
        }
    };
    for (l, level) in arch.levels.iter().enumerate() {
        let ls = &ev.levels[l];
        let kept: Vec<usize> = (0..problem.tensors.len())
            .filter(|&t| mapping.levels[l].keep[t])
            .collect();
        let names: Vec<&str> = ls.tensors.iter().map(|s| s.name.as_str()).collect();
        let want: Vec<&str> = kept
            .iter()
            .map(|&t| problem.tensors[t].name.as_str())
            .collect();
        if names != want {
            diffs.push(format!(
                "{}: eval lists {names:?}, kept {want:?}",
                level.name
            ));
            continue;
        }
        for (&t, ts) in kept.iter().zip(&ls.tensors) {
            let per = &sim.counts[l][t];
            let first = *per.values().next().expect("a keeper has instances");
            if per.values().any(|c| *c != first) {
                diffs.push(format!(
                    "{} {}: simulated instances differ: {per:?}",
                    level.name, ts.name
                ));
            }
            let inst = per.len() as u64;
            let bits = opts
                .bits
                .as_ref()
                .map_or(level.word_bits, |b| b.0[t] as u64);
            let pack = |n| words(n, bits, level.word_bits);
            let first = Counts {
                reads: pack(first.reads),
                fills: pack(first.fills),
                updates: pack(first.updates),
            };
            let got = Counts {
                reads: ts.reads_per_instance,
                fills: ts.fills_per_instance,
                updates: ts.updates_per_instance,
            };
            if got != first
                || ts.instances != inst
                || ts.reads != first.reads * inst
                || ts.fills != first.fills * inst
                || ts.updates != first.updates * inst
            {
                diffs.push(format!(
                    "{} {}: eval {got:?} ×{} / sim {first:?} ×{inst}",
                    level.name, ts.name, ts.instances
                ));
            }
            if ts.tile_points != sim.tile_points[l][t] {
                diffs.push(format!(
                    "{} {}: tile points eval {} sim {}",
                    level.name, ts.name, ts.tile_points, sim.tile_points[l][t]
                ));
            }
            let b = level.block_size;
            energy += inst as f64
                * (first.reads.div_ceil(b) as f64 * level.read_energy
                    + first.fills.div_ceil(b) as f64 * level.write_energy
                    + first.updates.div_ceil(b) as f64 * level.update_energy);
        }
    }
    if (energy - ev.energy_pj).abs() > 1e-9 * energy.abs().max(1.0) {
        diffs.push(format!("energy: eval {} sim {}", ev.energy_pj, energy));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}

// ---------------------------------------------------------------------------------------------
// Building blocks for cases
// ---------------------------------------------------------------------------------------------

const TENSORS: [&str; 3] = ["Weights", "Inputs", "Outputs"];

fn level(name: &str, mesh: (u64, u64), block: u64, e: (f64, f64, f64), dummy: bool) -> Level {
    Level {
        name: name.into(),
        instances: mesh.0 * mesh.1,
        mesh_x: mesh.0,
        mesh_y: mesh.1,
        depth: None,
        width: 16 * block,
        word_bits: 16,
        block_size: block,
        cluster_size: 1,
        dummy,
        must_keep: vec![],
        must_bypass: vec![],
        read_energy: e.0,
        write_energy: e.1,
        update_energy: e.2,
        read_bandwidth: None,
        write_bandwidth: None,
        shared_bandwidth: None,
    }
}

fn arch(levels: Vec<Level>, mac_mesh: (u64, u64), mac_energy: f64) -> Arch {
    let a = Arch {
        name: "oracle".into(),
        levels,
        mac: Mac {
            name: "mac".into(),
            instances: mac_mesh.0 * mac_mesh.1,
            mesh_x: mac_mesh.0,
            mesh_y: mac_mesh.1,
            energy: mac_energy,
            energy_table: vec![],
        },
    };
    a.check_fanouts().expect("fanouts");
    a
}

fn loops(l: &[(usize, u64)]) -> Vec<Loop> {
    l.iter()
        .map(|&(dim, factor)| Loop { dim, factor })
        .collect()
}

fn lm(temporal: &[(usize, u64)], sx: &[(usize, u64)], keep: [bool; 3]) -> LevelMapping {
    LevelMapping {
        temporal: loops(temporal),
        spatial_x: loops(sx),
        spatial_y: vec![],
        keep: keep.to_vec(),
    }
}

// conv dims and tensors
const P: usize = 3;
const R: usize = 5;
const M: usize = 1;
const C: usize = 2;
const W: usize = 0;
const I: usize = 1;
const O: usize = 2;

fn eval_counts(ev: &Evaluation, l: usize, name: &str) -> Counts {
    let ts = ev.levels[l]
        .tensors
        .iter()
        .find(|s| s.name == name)
        .unwrap();
    Counts {
        reads: ts.reads_per_instance,
        fills: ts.fills_per_instance,
        updates: ts.updates_per_instance,
    }
}

fn sim_counts(sim: &SimResult, l: usize, t: usize) -> Counts {
    let per = &sim.counts[l][t];
    let first = *per.values().next().unwrap();
    assert!(per.values().all(|c| *c == first));
    first
}

/// Both the simulator and the evaluator give the hand-worked counts `(level, tensor, counts)`.
fn assert_hand(sim: &SimResult, ev: &Evaluation, hand: &[(usize, usize, Counts)]) {
    for &(l, t, want) in hand {
        assert_eq!(sim_counts(sim, l, t), want, "sim L{l} {}", TENSORS[t]);
        assert_eq!(
            eval_counts(ev, l, TENSORS[t]),
            want,
            "eval L{l} {}",
            TENSORS[t]
        );
    }
}

fn c(reads: u64, fills: u64, updates: u64) -> Counts {
    Counts {
        reads,
        fills,
        updates,
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-written cases (numbers worked out by hand in the comments)
// ---------------------------------------------------------------------------------------------

/// A 1-D sliding window. conv P4 R3 (all other dims 1), stride 1, so Inputs W = P + R (6 points).
/// L0 (1 instance, block 1, energies r/w/u 1/2/3): temporal R3, keeps everything.
/// L1 (block 2, energies 10/20/30): temporal P4, keeps everything. One MAC (0.5 pJ); 12 MACs.
///
/// * Weights: L0 tile = R3 = 3 points; P is irrelevant → filled once: L0 fills 3, L1 reads 3.
///   L0 serves the MAC on every one of the 12 steps: L0 reads 12.
/// * Inputs: L0 tile = W[p..p+3) = 3 points; P advances by 1 (the innermost loop above L0):
///   3 + 1 + 1 + 1 = 6 fills at L0 = 6 reads at L1; L0 reads 12.
/// * Outputs: MACs update L0 12 times; L0 touches 4 elements → reads 12 − 4 = 8. The L0 tile is
///   one element, a new one per P step, each delivered for the first time → L0 fills 0; L1 gets
///   4 updates (the drains), reads 4 − 4 = 0; L1 is the outermost keeper: no fills.
///
/// Energy: L0 = (12+12+8)·1 + (3+6)·2 + 12·3 = 86; L1 (vectors of 2): reads ⌈3/2⌉+⌈6/2⌉ = 5 → 50,
/// updates ⌈4/2⌉ = 2 → 60; MACs 12·0.5 = 6. Total 202 pJ.
#[test]
fn hand_sliding_window() {
    let problem = conv_problem("hand", false, [1, 1, 1, 4, 1, 3, 1], [1, 1, 1, 1]);
    let a = arch(
        vec![
            level("L0", (1, 1), 1, (1.0, 2.0, 3.0), false),
            level("L1", (1, 1), 2, (10.0, 20.0, 30.0), false),
        ],
        (1, 1),
        0.5,
    );
    let mapping = Mapping {
        levels: vec![lm(&[(R, 3)], &[], [true; 3]), lm(&[(P, 4)], &[], [true; 3])],
    };
    let ev = evaluate(&problem, &a, &mapping, &ModelOptions::default());
    let sim = simulate(&problem, &mapping, Walk::Timeloop);
    let hand = [
        (0, W, c(12, 3, 0)),
        (0, I, c(12, 6, 0)),
        (0, O, c(8, 0, 12)),
        (1, W, c(3, 0, 0)),
        (1, I, c(6, 0, 0)),
        (1, O, c(0, 0, 4)),
    ];
    assert_hand(&sim, &ev, &hand);
    assert!((ev.energy_pj - 202.0).abs() < 1e-9, "{}", ev.energy_pj);
    compare(&problem, &a, &mapping, &sim, &ev, &ModelOptions::default()).unwrap();
}

/// Multicast and spatial reduction. conv M2 C2 P2 (others 1). Four MACs (mesh 4×1), each under
/// its own L0 (4 instances, energies 1/2/3); L1 (1 instance, energies 10/20/30) fans out 4×1 with
/// spatial X = M2 C2 and runs temporal P2. L0 keeps Weights only; L1 keeps everything. 8 MACs.
///
/// * Weights at L0: one element per instance (M, C fixed), P irrelevant → 1 fill; the MAC reads
///   it on both P steps → 2 reads. L1: M and C both relevant → 4 groups × 1 point = 4 reads.
/// * Inputs (MACs → L1): M is irrelevant, so the 4 MACs form 2 groups (by C): 2 steps × 2 = 4
///   reads (multicast factor 2).
/// * Outputs (MACs → L1): C is irrelevant → 2 groups (by M) reduce spatially: 2 × 2 = 4 updates;
///   L1 touches M2 × P2 = 4 elements → reads 0.
///
/// Energy: L0 = 4 instances × (2·1 + 1·2) = 16; L1 = (4 + 4)·10 + 4·30 = 200; MACs 8·0.5 = 4.
/// Total 220 pJ.
#[test]
fn hand_multicast_and_reduction() {
    let problem = conv_problem("hand", false, [1, 2, 2, 2, 1, 1, 1], [1, 1, 1, 1]);
    let a = arch(
        vec![
            level("L0", (4, 1), 1, (1.0, 2.0, 3.0), false),
            level("L1", (1, 1), 1, (10.0, 20.0, 30.0), false),
        ],
        (4, 1),
        0.5,
    );
    let mapping = Mapping {
        levels: vec![
            lm(&[], &[], [true, false, false]),
            lm(&[(P, 2)], &[(M, 2), (C, 2)], [true; 3]),
        ],
    };
    let ev = evaluate(&problem, &a, &mapping, &ModelOptions::default());
    let sim = simulate(&problem, &mapping, Walk::Timeloop);
    let hand = [
        (0, W, c(2, 1, 0)),
        (1, W, c(4, 0, 0)),
        (1, I, c(4, 0, 0)),
        (1, O, c(0, 0, 4)),
    ];
    assert_hand(&sim, &ev, &hand);
    assert_eq!(sim.counts[0][W].len(), 4);
    assert!(sim.obs.multicast && sim.obs.reduction);
    assert!((ev.energy_pj - 220.0).abs() < 1e-9, "{}", ev.energy_pj);
    compare(&problem, &a, &mapping, &sim, &ev, &ModelOptions::default()).unwrap();
}

/// Coinciding spatial offsets. conv P2 R2 (others 1), stride 1: W = P + R.
///
/// (a) One fanout unrolls both: L0 (1 instance, energies 1/2/3) fans out 2×2 to four MACs with
/// X = P2, Y = R2 and keeps everything; L1 (energies 10/20/30) keeps everything, no loops.
/// * Inputs: the MACs' W offsets p + r are {0, 1, 1, 2}: 3 distinct operands → L0 reads 3 (the
///   children (P1,R0) and (P0,R1) share one read although their indices differ). L0's tile is
///   W 0..=2 = 3 points → L0 fills 3 = L1 reads 3.
/// * Weights: only R is relevant → 2 reads at L0; L0 tile 2 → fills 2 = L1 reads 2.
/// * Outputs: only P relevant → 2 updates at L0, partition 2 → reads 0; L0's tile (2 elements)
///   arrives once, first delivery → fills 0; L1 updates 2, reads 0.
///
/// Energy: L0 (3+2)·1 + (3+2)·2 + 2·3 = 21; L1 (3+2)·10 + 2·30 = 110; MACs 4·0.5 = 2 → 133.
///
/// (b) The same unrolling split over two fanouts: L1 fans out X = R2 to two L0 instances, each L0
/// fans out Y = P2 to two MACs; L0 keeps nothing, L1 everything. Identity is judged per fanout:
/// the L0 subtrees' tiles W {r, r+1} differ (2), the MACs under one L0 differ (2) → L1 reads 4
/// Inputs operands, not the 3 distinct leaf operands. Weights 2 (R), Outputs 2 updates (P).
/// Energy: L1 (4+2)·10 + 2·30 = 120; MACs 2 → 122.
#[test]
fn hand_coinciding_offsets() {
    let problem = conv_problem("hand", false, [1, 1, 1, 2, 1, 2, 1], [1, 1, 1, 1]);
    let a = arch(
        vec![
            level("L0", (1, 1), 1, (1.0, 2.0, 3.0), false),
            level("L1", (1, 1), 1, (10.0, 20.0, 30.0), false),
        ],
        (2, 2),
        0.5,
    );
    let mut l0 = lm(&[], &[(P, 2)], [true; 3]);
    l0.spatial_y = loops(&[(R, 2)]);
    let mapping = Mapping {
        levels: vec![l0, lm(&[], &[], [true; 3])],
    };
    let ev = evaluate(&problem, &a, &mapping, &ModelOptions::default());
    let sim = simulate(&problem, &mapping, Walk::Timeloop);
    let hand = [
        (0, W, c(2, 2, 0)),
        (0, I, c(3, 3, 0)),
        (0, O, c(0, 0, 2)),
        (1, W, c(2, 0, 0)),
        (1, I, c(3, 0, 0)),
        (1, O, c(0, 0, 2)),
    ];
    assert_hand(&sim, &ev, &hand);
    assert!(sim.obs.coincident);
    assert!((ev.energy_pj - 133.0).abs() < 1e-9, "{}", ev.energy_pj);
    compare(&problem, &a, &mapping, &sim, &ev, &ModelOptions::default()).unwrap();

    let a = arch(
        vec![
            level("L0", (2, 1), 1, (1.0, 2.0, 3.0), false),
            level("L1", (1, 1), 1, (10.0, 20.0, 30.0), false),
        ],
        (2, 2),
        0.5,
    );
    let mut l0 = lm(&[], &[], [false; 3]);
    l0.spatial_y = loops(&[(P, 2)]);
    let mapping = Mapping {
        levels: vec![l0, lm(&[], &[(R, 2)], [true; 3])],
    };
    let ev = evaluate(&problem, &a, &mapping, &ModelOptions::default());
    let sim = simulate(&problem, &mapping, Walk::Timeloop);
    for (l, t, want) in [(1, W, c(2, 0, 0)), (1, I, c(4, 0, 0)), (1, O, c(0, 0, 2))] {
        assert_eq!(sim_counts(&sim, l, t), want, "sim L{l} {}", TENSORS[t]);
        assert_eq!(
            eval_counts(&ev, l, TENSORS[t]),
            want,
            "eval L{l} {}",
            TENSORS[t]
        );
    }
    assert!((ev.energy_pj - 122.0).abs() < 1e-9, "{}", ev.energy_pj);
    compare(&problem, &a, &mapping, &sim, &ev, &ModelOptions::default()).unwrap();
}

/// The smallest cancellation step. conv P2 R2 (others 1), stride 1: W = P + R. L0 keeps Inputs
/// only (tile: one point); L1 runs temporal R2 (innermost) then P2 and keeps everything.
/// Inputs point at L0 per step: (R0,P0) w=0 → 1 fill; (R1,P0) w=1, translation +1 → 1;
/// (R0,P1) w=1: the tile is unchanged, but the translation is 0 after +1 → Timeloop reloads it
/// (1) and clears its record; (R1,P1) w=2, +1 recorded anew → 1. Timeloop: 4 fills; the exact
/// count ("an unchanged tile costs nothing") gives 3.
#[test]
fn hand_cancellation_step() {
    let problem = conv_problem("hand", false, [1, 1, 1, 2, 1, 2, 1], [1, 1, 1, 1]);
    let a = arch(
        vec![
            level("L0", (1, 1), 1, (1.0, 2.0, 3.0), false),
            level("L1", (1, 1), 1, (10.0, 20.0, 30.0), false),
        ],
        (1, 1),
        0.5,
    );
    let mapping = Mapping {
        levels: vec![
            lm(&[], &[], [false, true, false]),
            lm(&[(R, 2), (P, 2)], &[], [true; 3]),
        ],
    };
    let ev = evaluate(&problem, &a, &mapping, &ModelOptions::default());
    let exact = simulate(&problem, &mapping, Walk::Exact);
    let timeloop = simulate(&problem, &mapping, Walk::Timeloop);
    assert_eq!(sim_counts(&exact, 0, I), c(4, 3, 0));
    assert_eq!(sim_counts(&exact, 1, I), c(3, 0, 0));
    assert_eq!(sim_counts(&timeloop, 0, I), c(4, 4, 0));
    assert_eq!(sim_counts(&timeloop, 1, I), c(4, 0, 0));
    assert_eq!(eval_counts(&ev, 0, "Inputs"), c(4, 4, 0));
    let native = ModelOptions::default();
    compare(&problem, &a, &mapping, &timeloop, &ev, &native).unwrap();
    assert!(compare(&problem, &a, &mapping, &exact, &ev, &native).is_err());
}

/// The window carried across a wrap-around (issue 21's VGG case, scaled down). conv M2 P8 R3
/// (others 1), stride 1: W = P + R. L0 keeps Inputs only and runs temporal P2: its tile is W
/// 2 points wide. L1 keeps everything and runs R3 M2 P4 (innermost first): R moves the tile by
/// 1, M by 0, P by 2. 48 MACs.
///
/// Timeloop walks the corners (r, m, p) ∈ {0,1}³, a corner at index 1 weighing R: 2, M: 1,
/// P: 3 (N − 1): (0,0,0) whole tile 2 ×1; (1,0,0) +1 recorded, new column 1 ×2; (0,1,0) −1:
/// reload 2 ×1; (1,1,0) +1 recorded anew, 1 ×2; (0,0,1) from W 1 to W 2: +1 as recorded, 1 ×3;
/// (1,0,1) 1 ×6; (0,1,1) −1: reload 2 ×3; (1,1,1) 1 ×6 → 2+2+2+2+3+6+6+6 = 29 fills at L0 and
/// 29 Inputs reads at L1. In closed form: 2·24 − 1·(16 + 3), the innermost loop R and the loop P
/// (v_P = 2 = v_R + (v_R + v_M)) loading only the overlap's complement (docs/model.md).
/// Reloading at every wrap-around (qmap before issue 21) gives 8·2 + 16·1 = 32; the exact count
/// (every step, `new \ old`) 26: the full walk enters each P step from (r, m) = (2, 1), where
/// the tile is already at the new position.
///
/// The rest: L0 reads the operand of every MAC (48); Weights and Outputs go between the MACs
/// and L1 (48 reads; 48 updates, 48 − 16 = 32 reads). Energy (block 1; L0 1/2/3, L1 10/20/30,
/// MAC 0.5): L0 48 + 29·2 = 106; L1 (48 + 29 + 32)·10 + 48·30 = 2,530; MACs 24 → 2,660 pJ.
/// With 4-bit Inputs (4 per 16-bit word): L0 reads ⌈48/4⌉ = 12 and fills ⌈29/4⌉ = 8, L1 reads 8.
#[test]
fn hand_window_across_wrap() {
    let problem = conv_problem("hand", false, [1, 2, 1, 8, 1, 3, 1], [1, 1, 1, 1]);
    let a = arch(
        vec![
            level("L0", (1, 1), 1, (1.0, 2.0, 3.0), false),
            level("L1", (1, 1), 1, (10.0, 20.0, 30.0), false),
        ],
        (1, 1),
        0.5,
    );
    let mapping = Mapping {
        levels: vec![
            lm(&[(P, 2)], &[], [false, true, false]),
            lm(&[(R, 3), (M, 2), (P, 4)], &[], [true; 3]),
        ],
    };
    let native = ModelOptions::default();
    let ev = evaluate(&problem, &a, &mapping, &native);
    let sim = simulate(&problem, &mapping, Walk::Timeloop);
    let hand = [
        (0, I, c(48, 29, 0)),
        (1, W, c(48, 0, 0)),
        (1, I, c(29, 0, 0)),
        (1, O, c(32, 0, 48)),
    ];
    assert_hand(&sim, &ev, &hand);
    assert!(sim.obs.slide_after_wrap);
    assert_eq!(
        sim_counts(&simulate(&problem, &mapping, Walk::Exact), 0, I),
        c(48, 26, 0)
    );
    assert!((ev.energy_pj - 2660.0).abs() < 1e-9, "{}", ev.energy_pj);
    compare(&problem, &a, &mapping, &sim, &ev, &native).unwrap();
    // Packed: 4-bit Inputs, 16-bit Weights and Outputs.
    let packed = ModelOptions {
        bits: Some(Bits(vec![16, 4, 16])),
        ..Default::default()
    };
    let ev = evaluate(&problem, &a, &mapping, &packed);
    assert_eq!(eval_counts(&ev, 0, "Inputs"), c(12, 8, 0));
    assert_eq!(eval_counts(&ev, 1, "Inputs"), c(8, 0, 0));
    compare(&problem, &a, &mapping, &sim, &ev, &packed).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Random cases
// ---------------------------------------------------------------------------------------------

/// Draws choices from a proptest-generated vector; a zero always means the simplest option, so
/// shrinking the vector towards zeros shrinks the case.
struct Choices<'a> {
    v: &'a [u32],
    i: usize,
}

impl Choices<'_> {
    fn pick(&mut self, n: u64) -> u64 {
        let x = self.v.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        x as u64 % n
    }
    /// True with probability num/den (false when the choice is 0).
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.pick(den) >= den - num
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.pick(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

const MAX_MACS: u64 = 4000;
const NCHOICES: usize = 400;

struct Case {
    problem: Problem,
    arch: Arch,
    mapping: Mapping,
    /// Stride 2 along a rank whose filter dim is > 1.
    stride2_filter: bool,
    dilation: bool,
    depthwise: bool,
    grouped: bool,
    matmul: bool,
    dummy: bool,
    /// A window dim (R or S) iterates inside its output dim (P or Q) at one level.
    window_inside: bool,
    /// Bit-widths and packing (None: native words).
    opts: ModelOptions,
}

fn prime_factors(mut n: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut p = 2;
    while n > 1 {
        while n.is_multiple_of(p) {
            out.push(p);
            n /= p;
        }
        p += 1;
    }
    out
}

fn gen_case(ch: &mut Choices) -> Case {
    // Problem.
    let depthwise = ch.chance(1, 5);
    let mut b = [
        1 + ch.pick(2),
        1 + ch.pick(4),
        1 + ch.pick(4),
        1 + ch.pick(6),
        1 + ch.pick(4),
        1 + ch.pick(3),
        1 + ch.pick(3),
    ];
    if depthwise {
        b[2] = 1; // depthwise: G = b[1], b[2] unused
    }
    // Sometimes one fanout unrolls an output dim and its filter dim together (P and R, or Q and
    // S): their spatial offsets can coincide, so children with different indices share tiles.
    let window = ch.chance(1, 3).then(|| {
        let (out, filt) = if ch.chance(1, 2) { (4, 6) } else { (3, 5) };
        b[out] = 2 * (1 + ch.pick(3));
        b[filt] = 2 + ch.pick(2);
        (out, filt)
    });
    // Sometimes one level's temporal loops run a window dim inside its output dim (R inside P,
    // or S inside Q), loops between them or not: Timeloop carries the window across the inner
    // loop's wrap-around when the outer loop's move matches (docs/model.md).
    let inside = (window.is_none() && ch.chance(1, 2)).then(|| {
        let (out, filt) = if ch.chance(1, 2) { (3, 5) } else { (4, 6) };
        b[out] = [4, 8, 4, 6][ch.pick(4) as usize];
        b[filt] = 2 + ch.pick(2);
        (out, filt)
    });
    while b.iter().product::<u64>() > MAX_MACS {
        let i = (0..3).max_by_key(|&i| b[i]).unwrap();
        b[i] -= 1;
    }
    let mut ws = 1 + ch.pick(2);
    let mut hs = 1 + ch.pick(2);
    let wd = if ch.chance(1, 5) { 2 } else { 1 };
    let hd = if ch.chance(1, 5) { 2 } else { 1 };
    // A window inside its output dim mostly at stride 1, where windows overlap most.
    match inside {
        Some((3, _)) if ch.chance(3, 4) => ws = 1,
        Some((4, _)) if ch.chance(3, 4) => hs = 1,
        _ => {}
    }
    // Sometimes a grouped conv: 2 or 3 groups of these channels.
    let grouped = !depthwise && ch.chance(1, 5);
    // Sometimes a matmul of two activations: 1-3 heads (N, a rank of the second operand too).
    let matmul = !depthwise && !grouped && window.is_none() && inside.is_none() && ch.chance(1, 2);
    let problem = if grouped {
        let [n, m, c, p, q, r, s] = b;
        let g = 2 + ch.pick(2);
        grouped_problem("rand", [n, g, m, c, p, q, r, s], [ws, hs, wd, hd])
    } else if matmul {
        let [_, m, c, p, ..] = b;
        matmul_problem("rand", [1 + ch.pick(3), m, c, p])
    } else {
        conv_problem("rand", depthwise, b, [ws, hs, wd, hd])
    };
    let nd = problem.dims.len();

    // Architecture: 2-4 levels, outermost 1 instance, each level fanning out to the one below.
    let nl = 2 + ch.pick(3) as usize;
    let dummy_level = (nl >= 3 && ch.chance(1, 3)).then(|| 1 + ch.pick(nl as u64 - 2) as usize);
    const FAN: [(u64, u64); 8] = [
        (1, 1),
        (2, 1),
        (1, 2),
        (2, 2),
        (4, 1),
        (1, 4),
        (3, 1),
        (2, 3),
    ];
    let mut mesh = vec![(1u64, 1u64); nl + 1]; // mesh[l] for levels, mesh[nl] unused; MACs below
    let mut fan = vec![(1u64, 1u64); nl];
    let window_level = ch.pick(nl as u64) as usize;
    // The level whose temporal loops hold the window inside its output dim (not level 0: no
    // child below it).
    let inside_level = 1 + ch.pick(nl as u64 - 1) as usize;
    let mut cur = (1u64, 1u64);
    for l in (0..nl).rev() {
        mesh[l] = cur;
        let mut f = FAN[ch.pick(FAN.len() as u64) as usize];
        if cur.0 * f.0 * cur.1 * f.1 > 16 {
            f = (1, 1);
        }
        if let (Some((_, filt)), true) = (window, l == window_level) {
            f = (2, b[filt]);
        }
        fan[l] = f;
        cur = (cur.0 * f.0, cur.1 * f.1);
    }
    let mac_mesh = cur;
    let levels: Vec<Level> = (0..nl)
        .map(|l| {
            let block = [1, 2, 4][ch.pick(3) as usize];
            let e = |ch: &mut Choices| (1 + ch.pick(40)) as f64 * 0.125;
            let energies = (e(ch), e(ch), e(ch));
            level(
                &format!("L{l}"),
                mesh[l],
                block,
                energies,
                dummy_level == Some(l),
            )
        })
        .collect();
    let mac_energy = (1 + ch.pick(8)) as f64 * 0.25;
    let arch = arch(levels, mac_mesh, mac_energy);

    // Mapping: each prime factor of each bound goes to a temporal, X or Y slot of some level.
    let mut tf = vec![vec![1u64; nd]; nl];
    let mut xf = vec![vec![1u64; nd]; nl];
    let mut yf = vec![vec![1u64; nd]; nl];
    let mut xused = vec![1u64; nl];
    let mut yused = vec![1u64; nl];
    let name = ["N", "M", "C", "P", "Q", "R", "S"];
    let dim = |i: usize| problem.dim_index(name[i]).unwrap();
    let window = window.map(|(out, filt)| (dim(out), dim(filt), window_level));
    let inside = inside.map(|(out, filt)| (dim(out), dim(filt)));
    // The window's dims go first, before other dims take the fanout.
    let mut order: Vec<usize> = (0..nd).collect();
    if let Some((out, filt, _)) = window {
        order.sort_by_key(|&d| d != out && d != filt);
    }
    for d in order {
        for (i, p) in prime_factors(problem.bounds[d]).into_iter().enumerate() {
            if let Some((out, filt)) = inside {
                // The first factor of each at the inside level's temporal slot; the output
                // dim's second factor, if any, below it (its move then exceeds 1).
                if i == 0 && (d == out || d == filt) {
                    tf[inside_level][d] *= p;
                    continue;
                }
                if i == 1 && d == out && ch.chance(3, 4) {
                    tf[ch.pick(inside_level as u64) as usize][d] *= p;
                    continue;
                }
            }
            if let Some((out, filt, l)) = window {
                if i == 0 && (d == out || d == filt) {
                    if xused[l] * p <= fan[l].0 {
                        xf[l][d] *= p;
                        xused[l] *= p;
                        continue;
                    }
                    if yused[l] * p <= fan[l].1 {
                        yf[l][d] *= p;
                        yused[l] *= p;
                        continue;
                    }
                }
            }
            let l = ch.pick(nl as u64) as usize;
            match ch.pick(4) {
                2 if xused[l] * p <= fan[l].0 => {
                    xf[l][d] *= p;
                    xused[l] *= p;
                }
                3 if yused[l] * p <= fan[l].1 => {
                    yf[l][d] *= p;
                    yused[l] *= p;
                }
                _ => tf[l][d] *= p,
            }
        }
    }
    let mut mapping = Mapping::default();
    for l in 0..nl {
        let mut temporal: Vec<Loop> = (0..nd)
            .filter(|&d| tf[l][d] > 1 || ch.chance(1, 4))
            .map(|d| Loop {
                dim: d,
                factor: tf[l][d],
            })
            .collect();
        ch.shuffle(&mut temporal);
        if let (Some((out, filt)), true) = (inside, l == inside_level) {
            let pos = |d: usize| temporal.iter().position(|x| x.dim == d).unwrap();
            let (po, pf) = (pos(out), pos(filt));
            if pf > po {
                temporal.swap(po, pf);
            }
        }
        let spatial = |f: &Vec<u64>, ch: &mut Choices| {
            let mut v: Vec<Loop> = (0..nd)
                .filter(|&d| f[d] > 1)
                .map(|d| Loop {
                    dim: d,
                    factor: f[d],
                })
                .collect();
            ch.shuffle(&mut v);
            v
        };
        let spatial_x = spatial(&xf[l], ch);
        let spatial_y = spatial(&yf[l], ch);
        // Under the window-inside level, Inputs is kept (where the level can keep anything).
        let keeps_window = inside.is_some() && l + 1 == inside_level && dummy_level != Some(l);
        let keep = (0..3)
            .map(|t| {
                l == nl - 1
                    || (dummy_level != Some(l) && (ch.chance(1, 2) || (t == I && keeps_window)))
            })
            .collect();
        mapping.levels.push(LevelMapping {
            temporal,
            spatial_x,
            spatial_y,
            keep,
        });
    }
    let (r, s) = (problem.bounds[nd - 2], problem.bounds[nd - 1]);
    // Bit-widths in one case in three (16-bit words: several operands per word).
    let opts = if ch.chance(1, 3) {
        let bits = |ch: &mut Choices| [3, 4, 5, 8, 16][ch.pick(5) as usize];
        ModelOptions {
            bits: Some(Bits(vec![bits(ch), bits(ch), bits(ch)])),
            packing: if ch.chance(1, 2) {
                PackingMode::Ideal
            } else {
                PackingMode::Seed
            },
            ..Default::default()
        }
    } else {
        ModelOptions::default()
    };
    Case {
        stride2_filter: !matmul && ((ws == 2 && r > 1) || (hs == 2 && s > 1)),
        dilation: !matmul && (wd == 2 || hd == 2),
        depthwise,
        grouped,
        matmul,
        dummy: dummy_level.is_some(),
        window_inside: inside.is_some(),
        opts,
        problem,
        arch,
        mapping,
    }
}

fn describe(case: &Case) -> String {
    let p = &case.problem;
    let dims: Vec<String> = p
        .dims
        .iter()
        .zip(&p.bounds)
        .map(|(d, b)| format!("{d}{b}"))
        .collect();
    let coefs: Vec<String> = p.tensors[1]
        .ranks
        .iter()
        .map(|r| {
            r.iter()
                .map(|t| format!("{}·{}", t.coef, p.dims[t.dim]))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    let mut s = format!("problem {} Inputs[{}]\n", dims.join(" "), coefs.join(", "));
    let f = |v: &[Loop]| {
        v.iter()
            .map(|l| format!("{}{}", p.dims[l.dim], l.factor))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (l, (lm, level)) in case
        .mapping
        .levels
        .iter()
        .zip(&case.arch.levels)
        .enumerate()
    {
        let keep: Vec<&str> = TENSORS
            .iter()
            .zip(&lm.keep)
            .filter(|(_, k)| **k)
            .map(|(n, _)| *n)
            .collect();
        s += &format!(
            "L{l} mesh {}x{}{} block {}: T[{}] X[{}] Y[{}] keep {:?}\n",
            level.mesh_x,
            level.mesh_y,
            if level.dummy { " dummy" } else { "" },
            level.block_size,
            f(&lm.temporal),
            f(&lm.spatial_x),
            f(&lm.spatial_y),
            keep
        );
    }
    s + &format!(
        "MACs mesh {}x{}",
        case.arch.mac.mesh_x, case.arch.mac.mesh_y
    )
}

#[derive(Debug, Default)]
struct Coverage {
    cases: u64,
    stride2_sliding: u64,
    overlap_advance: u64,
    multicast: u64,
    reduction: u64,
    bypass: u64,
    three_plus_levels: u64,
    depthwise: u64,
    grouped: u64,
    matmul: u64,
    dilation: u64,
    dummy: u64,
    holes: u64,
    coincident: u64,
    window_inside: u64,
    slide_after_wrap: u64,
    packed: u64,
    packed_slide_after_wrap: u64,
    exact_differs: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Random tiny conv / depthwise problems on random 2-4 level architectures with random
/// factorisations, loop orders, spatial splits and keep sets: the evaluator must equal the
/// simulator exactly. `QMAP_ORACLE_CASES` (default 1000) and `QMAP_ORACLE_SEED` (default 0 =
/// proptest's fixed deterministic seed) vary the run.
#[test]
fn random_cases_match_the_simulator() {
    let cases = env_u64("QMAP_ORACLE_CASES", 1000);
    let seed = env_u64("QMAP_ORACLE_SEED", 0);
    let config = Config {
        cases: cases as u32,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = if seed == 0 {
        TestRng::deterministic_rng(RngAlgorithm::ChaCha)
    } else {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
    };
    let mut runner = TestRunner::new_with_rng(config, rng);
    let cov = RefCell::new(Coverage::default());
    let start = std::time::Instant::now();
    let result = runner.run(
        &prop::collection::vec(0u32..1_000_000, NCHOICES),
        |choices| {
            let case = gen_case(&mut Choices { v: &choices, i: 0 });
            let (p, a, m, o) = (&case.problem, &case.arch, &case.mapping, &case.opts);
            let ev = evaluate(p, a, m, o);
            let sim = simulate(p, m, Walk::Timeloop);
            compare(p, a, m, &sim, &ev, o).map_err(|e| {
                TestCaseError::fail(format!("{}\n--- differences ---\n{e}", describe(&case)))
            })?;
            // How often Timeloop's count departs from the exact one.
            let exact = simulate(p, m, Walk::Exact);
            let exact_ok = compare(p, a, m, &exact, &ev, o).is_ok();
            let mut c = cov.borrow_mut();
            let obs = &sim.obs;
            c.cases += 1;
            c.stride2_sliding += (case.stride2_filter && obs.inputs_overlap) as u64;
            c.overlap_advance += obs.overlap_advance as u64;
            c.multicast += obs.multicast as u64;
            c.reduction += obs.reduction as u64;
            c.bypass += obs.bypass as u64;
            c.three_plus_levels += (case.mapping.levels.len() >= 3) as u64;
            c.depthwise += case.depthwise as u64;
            c.grouped += case.grouped as u64;
            c.matmul += case.matmul as u64;
            c.dilation += case.dilation as u64;
            c.dummy += case.dummy as u64;
            c.holes += obs.holes as u64;
            c.coincident += obs.coincident as u64;
            c.window_inside += case.window_inside as u64;
            c.slide_after_wrap += obs.slide_after_wrap as u64;
            c.packed += o.bits.is_some() as u64;
            c.packed_slide_after_wrap += (o.bits.is_some() && obs.slide_after_wrap) as u64;
            c.exact_differs += !exact_ok as u64;
            Ok(())
        },
    );
    let cov = cov.into_inner();
    eprintln!("{cov:#?}\nin {:.1?}", start.elapsed());
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator must exercise every feature the oracle is for.
    let min = cases / 20;
    for (name, n) in [
        (
            "stride 2 with a filter > 1 and sliding reuse",
            cov.stride2_sliding,
        ),
        (
            "a relevant innermost loop advancing with overlap",
            cov.overlap_advance,
        ),
        ("spatial multicast", cov.multicast),
        ("spatial reduction of Outputs", cov.reduction),
        ("bypassed intermediate levels", cov.bypass),
        ("3+ levels", cov.three_plus_levels),
        ("depthwise", cov.depthwise),
        ("grouped", cov.grouped),
        ("matmul (two activation operands)", cov.matmul),
        ("dilation 2", cov.dilation),
        ("a dummy level", cov.dummy),
        ("stride holes inside a tile", cov.holes),
        ("coinciding spatial offsets", cov.coincident),
        (
            "a window dim inside its output dim at one level",
            cov.window_inside,
        ),
        (
            "the window carried across a wrap-around",
            cov.slide_after_wrap,
        ),
        ("bit-widths packed into words", cov.packed),
        (
            "Timeloop's count departing from the exact one",
            cov.exact_differs,
        ),
    ] {
        assert!(n >= min, "only {n} of {} cases cover {name}", cov.cases);
    }
    assert!(
        cov.packed_slide_after_wrap >= cases / 100,
        "only {} of {} cases pack bit-widths and carry the window across a wrap-around",
        cov.packed_slide_after_wrap,
        cov.cases
    );
    assert_eq!(cov.cases, cases);
}
