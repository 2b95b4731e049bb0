//! Counting the mappings of a space: factorisations × loop orders × keep patterns, by a DP
//! over the levels or, where its key does not fit, over the factorisation DAG.

use super::{divisors, factorial, Count, KeepChoice, Mapspace, SpatialDir};
use crate::model::Problem;
use itertools::Itertools;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

/// The most states either count of loop orders keeps at a time ([`Mapspace::size`]): the
/// counts are reports, so they must not take the memory and the time of the search itself
/// (an unconstrained space took ten seconds and 400 MB to count). Above it, or above
/// [`COUNT_OPS`] steps, the size is unknown.
pub(super) const COUNT_STATES: usize = 1 << 20;

/// The most steps (state × option pairs) either count of loop orders takes: about half a
/// second here. Measured: Eyeriss, a 3x3 ResNet-50 layer without constraints, 1.2e7 steps
/// (0.3-0.8 s); the unconstrained Timeloop exercise `simple_weight_stationary` runs past it.
pub(super) const COUNT_OPS: usize = 1 << 24;

/// The work left to the counts of loop orders: [`COUNT_OPS`] steps in all (for both), and a
/// deadline.
pub(super) struct CountBudget {
    ops: usize,
    deadline: Option<Instant>,
    /// Whether the deadline, not the step limit, stopped a count.
    late: bool,
}

impl CountBudget {
    pub(super) fn new(deadline: Option<Instant>) -> CountBudget {
        CountBudget {
            ops: 0,
            deadline,
            late: false,
        }
    }
    /// Takes `n` more steps; false when the budget is spent.
    pub(super) fn spend(&mut self, n: usize) -> bool {
        let before = self.ops;
        self.ops = self.ops.saturating_add(n.max(1));
        if self.deadline.is_some() && before >> 12 != self.ops >> 12 {
            self.late |= self.deadline.is_some_and(|d| Instant::now() >= d);
        }
        self.ops <= COUNT_OPS && !self.late
    }
}

impl Mapspace {
    /// Σ over factorisations of the number of loop orders, exactly (saturating) and as f64, by
    /// a DP over the levels: the state is the factor each dim has used so far (a divisor of its
    /// bound per dim); within a level the dims are added one by one, tracking the level's X and
    /// Y products, its number of free non-unit temporal loops (the level weighs count!) and its
    /// X/Y order summary. None when the state does not fit the packed key.
    pub(super) fn count_by_levels(&self, budget: &mut CountBudget) -> Option<Count> {
        let p = &self.problem;
        let dims: Vec<usize> = (0..p.dims.len()).filter(|&d| p.bounds[d] > 1).collect();
        if dims.len() > 63 {
            return None;
        }
        let divs: Vec<Vec<u64>> = dims.iter().map(|&d| divisors(p.bounds[d])).collect();
        let mut stride = Vec::new();
        let mut states: u128 = 1;
        for dv in &divs {
            stride.push(states);
            states *= dv.len() as u128;
            if states >= 1 << 48 {
                return None;
            }
        }
        let fan = |s: Option<usize>| s.map_or(1, |s| self.slots[s].fanout.unwrap());
        if self
            .level_slots
            .iter()
            .any(|ls| fan(ls.x) > 4095 || fan(ls.y) > 4095)
        {
            return None;
        }
        let mut outer = KeyMap::default();
        outer.insert(0, (1, 1.0));
        for (l, ls) in self.level_slots.iter().enumerate() {
            let fxy = (fan(ls.x) as u128, fan(ls.y) as u128);
            let mut inner: KeyMap = outer
                .iter()
                .map(|(&k, &w)| (k | 1 << 48 | 1 << 60 | 255 << 86, w))
                .collect();
            for (k, &d) in dims.iter().enumerate() {
                let opts = self.level_options(l, d, &divs[k], stride[k], fxy);
                let digits = (stride[k], divs[k].len() as u128);
                inner = add_dim(inner, &opts, digits, fxy, budget)?;
            }
            outer = close_level(inner);
        }
        let full: u128 = (0..dims.len())
            .map(|k| (divs[k].len() as u128 - 1) * stride[k])
            .sum();
        Some(outer.get(&full).copied().unwrap_or((0, 0.0)))
    }

    /// Per factor dim `d` has used below level `l` (an index into its bound's divisors
    /// `divs`, whose digit in the key has weight `stride`), the ways it can take its factors
    /// at level `l` under the fanouts `(fx, fy)` and the constraints.
    fn level_options(
        &self,
        l: usize,
        d: usize,
        divs: &[u64],
        stride: u128,
        (fx, fy): (u128, u128),
    ) -> Vec<Vec<LevelOption>> {
        let bound = self.problem.bounds[d];
        let dir = self.spatial_rules[l].dir[d];
        let order = self.spatial_rules[l].order.as_ref();
        let [rt, rs] = self.rules[d][l];
        divs.iter()
            .enumerate()
            .map(|(i, &u)| {
                let mut v = Vec::new();
                for g in divisors(bound / u) {
                    let j = divs.binary_search(&(u * g)).unwrap();
                    for x in divisors(g) {
                        if x as u128 > fx || (x > 1 && dir == SpatialDir::YOnly) {
                            continue;
                        }
                        for y in divisors(g / x) {
                            let t = g / x / y;
                            let ok = y as u128 <= fy
                                && (y == 1 || dir != SpatialDir::XOnly)
                                && !(dir == SpatialDir::OneOf && x > 1 && y > 1)
                                && rt.admits(t)
                                && rs.admits(x * y);
                            if !ok {
                                continue;
                            }
                            let free =
                                self.enumerate_orders[l] && t > 1 && !self.prefix[l].contains(&d);
                            let pos = order.map(|o| o[d] as u128);
                            v.push(LevelOption {
                                delta: (j - i) as u128 * stride,
                                x: x as u128,
                                y: y as u128,
                                free: u128::from(free),
                                xpos: pos.filter(|_| x > 1),
                                ypos: pos.filter(|_| y > 1),
                            });
                        }
                    }
                }
                v
            })
            .collect()
    }

    /// The number of factorisations × loop orders computed by both DPs (a cross-check for
    /// tests; the second is None when the first method's key does not fit).
    #[doc(hidden)]
    pub fn order_counts(&self) -> (Option<Count>, Result<Count, String>) {
        let budget = || CountBudget::new(None);
        (
            self.count_by_levels(&mut budget()),
            self.count_by_dims(&mut budget()),
        )
    }

    /// Σ over factorisations of the number of loop orders, exactly (saturating) and as f64, by
    /// a DP over the factorisation DAG (dims one by one) whose key also counts, per level, the
    /// non-unit loops whose place in the order is free (a factorisation weighs Π count!). The
    /// key grows as (dims + 1)^levels: used only where [`Mapspace::count_by_levels`] cannot.
    pub(super) fn count_by_dims(&self, budget: &mut CountBudget) -> Result<Count, String> {
        let n = self.dim_order.len();
        let nl = self.arch.levels.len();
        // Counts packed `bpc` bits per level below bit 96, the DAG state above.
        let bpc = (usize::BITS - n.leading_zeros()) as usize;
        if nl * bpc > 96 {
            return Err(format!(
                "{nl} levels × {n} dims is beyond the loop-order counter"
            ));
        }
        let low = (1u128 << 96) - 1;
        type Map = HashMap<u128, (u128, f64), BuildHasherDefault<KeyHasher>>;
        let mut layer = Map::default();
        layer.insert(0, (1, 1.0));
        for i in 0..n {
            let d = self.dim_order[i];
            // Transitions grouped by (next state, count increment), with multiplicities.
            let grouped: Vec<Vec<(u128, u128, u128)>> = self.steps[i]
                .trans
                .iter()
                .map(|ts| {
                    let mut g: HashMap<(u32, u128), u128> = HashMap::new();
                    for t in ts {
                        let free = self.sigs[d][t.choice as usize].free;
                        let inc: u128 = (0..nl)
                            .filter(|l| free >> l & 1 == 1)
                            .map(|l| 1u128 << (l * bpc))
                            .sum();
                        *g.entry((t.next, inc)).or_insert(0) += 1;
                    }
                    g.into_iter()
                        .map(|((ns, inc), m)| ((ns as u128) << 96, inc, m))
                        .sorted()
                        .collect()
                })
                .collect();
            let mut next = Map::default();
            for (key, (a, b)) in layer {
                let cnt = key & low;
                let grouped = &grouped[(key >> 96) as usize];
                if !budget.spend(grouped.len()) {
                    return Err(format!("more than {COUNT_OPS} counter steps"));
                }
                for &(ns, inc, m) in grouped {
                    let e = next.entry(ns | (cnt + inc)).or_insert((0, 0.0));
                    e.0 = e.0.saturating_add(a.saturating_mul(m));
                    e.1 += b * m as f64;
                }
            }
            if next.len() > COUNT_STATES {
                return Err(format!("more than {COUNT_STATES} counter states"));
            }
            layer = next;
        }
        let mut total: u128 = 0;
        let mut total_f = 0.0;
        let field = (1u128 << bpc) - 1;
        for (key, (a, b)) in layer {
            let (mut w, mut wf) = (1u128, 1.0f64);
            for l in 0..nl {
                let c = ((key >> (l * bpc)) & field) as usize;
                w = w.saturating_mul(factorial(c));
                wf *= factorial(c) as f64;
            }
            total = total.saturating_add(a.saturating_mul(w));
            total_f += b * wf;
        }
        Ok((total, total_f))
    }
}

impl Mapspace {
    /// Number of mappings (factorisations × loop orders × bypass patterns), saturating at
    /// u128::MAX, which it also is when the count would take more than `COUNT_OPS` steps
    /// (about half a second). Computed on the first call.
    pub fn size(&self) -> u128 {
        self.count().0
    }
    /// Number of mappings as a float (for spaces beyond u128); infinite when not counted.
    pub fn size_f64(&self) -> f64 {
        self.count().1
    }
    /// The number of mappings as a float, counted by `deadline` at the latest: None when the
    /// deadline stopped the count (it is tried again next time) or it is too large to count.
    pub fn size_until(&self, deadline: Option<Instant>) -> Option<f64> {
        if let Some(c) = self.size.get() {
            return c.1.is_finite().then_some(c.1);
        }
        let mut budget = CountBudget::new(deadline);
        let counted = self
            .count_by_levels(&mut budget)
            .or_else(|| self.count_by_dims(&mut budget).ok());
        if counted.is_none() && budget.late {
            return None;
        }
        let c = self.size.get_or_init(|| self.with_bypass(counted));
        c.1.is_finite().then_some(c.1)
    }
    pub(super) fn count(&self) -> Count {
        *self.size.get_or_init(|| {
            let mut budget = CountBudget::new(None);
            let counted = self
                .count_by_levels(&mut budget)
                .or_else(|| self.count_by_dims(&mut budget).ok());
            self.with_bypass(counted)
        })
    }
    /// Loop-order count × bypass patterns (unknown: saturated and infinite).
    pub(super) fn with_bypass(&self, orders: Option<Count>) -> Count {
        let (orders, orders_f) = orders.unwrap_or((u128::MAX, f64::INFINITY));
        let (bypass, bypass_f) = self.bypass_patterns;
        (orders.saturating_mul(bypass), orders_f * bypass_f)
    }
    /// Number of factorisations (loop orders and bypass not counted).
    pub fn factorisations(&self) -> f64 {
        self.factorisations
    }
    /// Number of bypass patterns.
    pub fn bypass_patterns(&self) -> u128 {
        self.bypass_patterns.0
    }
}

/// Number of keep patterns (exact, saturating; and as f64): per tensor 2^free, less the one
/// that keeps it nowhere when no level must keep it.
pub(super) fn count_bypass_patterns(
    problem: &Problem,
    keep: &[Vec<KeepChoice>],
) -> Result<Count, String> {
    let mut n = 1u128;
    let mut f = 1.0f64;
    for (t, tensor) in problem.tensors.iter().enumerate() {
        let free = keep.iter().filter(|row| row[t] == KeepChoice::Free).count() as u32;
        let kept = keep.iter().any(|row| row[t] == KeepChoice::Fixed(true));
        let c = 2u128.saturating_pow(free) - u128::from(!kept);
        if c == 0 {
            return Err(format!("{} can be kept at no level", tensor.name));
        }
        n = n.saturating_mul(c);
        f *= 2f64.powi(free as i32) - f64::from(u8::from(!kept));
    }
    Ok((n, f))
}

/// A fast hasher for the packed u128 keys of the loop-order DP.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u128(&mut self, v: u128) {
        let x = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
        self.0 = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// One way a dim can take its factors at one level in [`Mapspace::count_by_levels`]: the step
/// of the used-factor index, the X and Y factors, whether its temporal loop's place is free,
/// and its position in the level's spatial permutation where it uses X or Y.
struct LevelOption {
    delta: u128,
    x: u128,
    y: u128,
    free: u128,
    xpos: Option<u128>,
    ypos: Option<u128>,
}

/// The states of [`Mapspace::count_by_levels`] and their weights. Key: used-factor index (48
/// bits) | x (12) | y (12) | count (6) | max X pos + 1 (8) | min Y pos (8, 255 = none).
type KeyMap = HashMap<u128, (u128, f64), BuildHasherDefault<KeyHasher>>;

/// The states after one more dim takes its factors at a level (`opts` per digit of the dim,
/// `(stride, digits)` where its digit stands in the key, fanouts `(fx, fy)`); None when the
/// budget runs out or the states pass [`COUNT_STATES`].
fn add_dim(
    inner: KeyMap,
    opts: &[Vec<LevelOption>],
    (stride, nk): (u128, u128),
    (fx, fy): (u128, u128),
    budget: &mut CountBudget,
) -> Option<KeyMap> {
    let low = (1u128 << 48) - 1;
    let mut next = KeyMap::default();
    next.reserve(inner.len());
    for (key, (a, b)) in inner {
        let idx = key & low;
        let digit = ((idx / stride) % nk) as usize;
        let (x, y) = ((key >> 48) & 0xfff, (key >> 60) & 0xfff);
        let (cnt, mx, my) = ((key >> 72) & 0x3f, (key >> 78) & 0xff, (key >> 86) & 0xff);
        if !budget.spend(opts[digit].len()) {
            return None;
        }
        for o in &opts[digit] {
            let (x2, y2) = (x * o.x, y * o.y);
            if x2 > fx || y2 > fy {
                continue;
            }
            let (mut mx2, mut my2) = (mx, my);
            if let Some(q) = o.xpos {
                if q > my2 {
                    continue;
                }
                mx2 = mx2.max(q + 1);
            }
            if let Some(q) = o.ypos {
                if mx2 > q + 1 {
                    continue;
                }
                my2 = my2.min(q);
            }
            let key2 = (idx + o.delta)
                | x2 << 48
                | y2 << 60
                | (cnt + o.free) << 72
                | mx2 << 78
                | my2 << 86;
            let e = next.entry(key2).or_insert((0, 0.0));
            e.0 = e.0.saturating_add(a);
            e.1 += b;
        }
    }
    (next.len() <= COUNT_STATES).then_some(next)
}

/// The states at the end of a level: the used-factor index only, each weighed by count! (the
/// orders of the level's free loops).
fn close_level(inner: KeyMap) -> KeyMap {
    let low = (1u128 << 48) - 1;
    let mut outer = KeyMap::default();
    for (key, (a, b)) in inner {
        let c = ((key >> 72) & 0x3f) as usize;
        let e = outer.entry(key & low).or_insert((0, 0.0));
        e.0 = e.0.saturating_add(a.saturating_mul(factorial(c)));
        e.1 += b * factorial(c) as f64;
    }
    outer
}
