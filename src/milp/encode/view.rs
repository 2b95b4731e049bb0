//! The mapspace as the model builder reads it (`View`): its tables, the energy coefficients,
//! and every per-dim quantity as an expression linear in the dims' one-hots.

use crate::mapspace::{Mapspace, Slot, SlotKind};
use crate::milp::encode::{cumulative, words_per_scalar, DimCols, Vars};
use crate::milp::lin::Lin;
use crate::model::{Arch, ModelOptions, Problem};

/// The read-only side of the model builder: one bypass pattern of a mapspace.
pub(in crate::milp) struct View<'a> {
    pub(in crate::milp) space: &'a Mapspace,
    pub(in crate::milp) opts: &'a ModelOptions,
    pub(in crate::milp) keep: &'a [Vec<bool>],
    pub(in crate::milp) problem: &'a Problem,
    pub(in crate::milp) arch: &'a Arch,
    pub(in crate::milp) nd: usize,
    pub(in crate::milp) nl: usize,
    pub(in crate::milp) slots: &'a [Slot],
    /// Per dim, its allowed factor vectors ([`Mapspace::dim_choices`]).
    pub(in crate::milp) choices: Vec<&'a [Vec<u64>]>,
    /// Energies are divided by this so that the MILP works with numbers near 1.
    pub(in crate::milp) scale: f64,
}

pub(in crate::milp) fn ln(v: u64) -> f64 {
    (v as f64).ln()
}

impl<'a> View<'a> {
    pub(in crate::milp) fn new(
        space: &'a Mapspace,
        opts: &'a ModelOptions,
        keep: &'a [Vec<bool>],
    ) -> View<'a> {
        let (problem, arch) = (space.problem(), space.arch());
        let nd = problem.dims.len();
        // Scale: energies are divided by this so that the MILP works with numbers near 1.
        let scale = {
            let e = arch.mac.energy.max(1e-3) * problem.macs() as f64;
            if e > 0.0 {
                e
            } else {
                1.0
            }
        };
        View {
            space,
            opts,
            keep,
            problem,
            arch,
            nd,
            nl: arch.levels.len(),
            slots: space.slots(),
            choices: (0..nd).map(|d| space.dim_choices(d)).collect(),
            scale,
        }
    }

    /// A per-dim quantity of a whole-encoded dim as a linear expression:
    /// Σ_j value(choice j) · x[d][j].
    pub(in crate::milp) fn per_dim(&self, vars: &Vars, d: usize, f: &dyn Fn(&[u64]) -> f64) -> Lin {
        let DimCols::Whole(x) = &vars.x[d] else {
            unreachable!("sliced dims need no per-choice quantity")
        };
        let mut l = Lin::default();
        for (j, ch) in self.choices[d].iter().enumerate() {
            let v = f(ch);
            match x[j] {
                None => l.c += v,
                Some(c) => {
                    if v != 0.0 {
                        l.t.push((c, v))
                    }
                }
            }
        }
        l
    }

    /// Σ over the slots `sel` admits of g(dim d's factor there), linear in either encoding.
    pub(in crate::milp) fn slot_sum(
        &self,
        vars: &Vars,
        d: usize,
        sel: &dyn Fn(usize) -> bool,
        g: &dyn Fn(u64) -> f64,
    ) -> Lin {
        match &vars.x[d] {
            DimCols::Whole(_) => self.per_dim(vars, d, &|c| {
                (0..c.len()).filter(|&s| sel(s)).map(|s| g(c[s])).sum()
            }),
            DimCols::Sliced(groups) => {
                let mut l = Lin::default();
                for grp in groups {
                    for (col, v) in &grp.values {
                        let val: f64 = grp
                            .slots
                            .iter()
                            .zip(v)
                            .filter(|(&s, _)| sel(s))
                            .map(|(_, &f)| g(f))
                            .sum();
                        match col {
                            None => l.c += val,
                            Some(c) => {
                                if val != 0.0 {
                                    l.t.push((*c, val))
                                }
                            }
                        }
                    }
                }
                l
            }
        }
    }

    pub(in crate::milp) fn slot_of(&self, l: usize, k: SlotKind) -> Option<usize> {
        let ls = self.space.level_slots(l);
        match k {
            SlotKind::Temporal => Some(ls.temporal),
            SlotKind::SpatialX => ls.x,
            SlotKind::SpatialY => ls.y,
        }
    }

    /// log factor of dim d in slot s
    pub(in crate::milp) fn lf(&self, vars: &Vars, d: usize, s: usize) -> Lin {
        self.slot_sum(vars, d, &|x| x == s, &|f| ln(f))
    }

    /// Whether dim d's factor in slot s is above 1 (0 or 1).
    pub(in crate::milp) fn nonunit(&self, vars: &Vars, d: usize, s: usize) -> Lin {
        self.slot_sum(vars, d, &|x| x == s, &|f| (f > 1) as u8 as f64)
    }

    pub(in crate::milp) fn can_nonunit(&self, d: usize, s: usize) -> bool {
        self.choices[d].iter().any(|c| c[s] > 1)
    }

    /// The distinct values `key` takes on dim d's factorisations, in order.
    pub(in crate::milp) fn values<K: Ord>(&self, d: usize, key: &dyn Fn(&[u64]) -> K) -> Vec<K> {
        let mut k: Vec<K> = self.choices[d].iter().map(|c| key(c)).collect();
        k.sort_unstable();
        k.dedup();
        k
    }

    /// The largest log factor of dim d in slot s.
    pub(in crate::milp) fn max_log(&self, d: usize, s: usize) -> f64 {
        self.choices[d].iter().map(|c| ln(c[s])).fold(0.0, f64::max)
    }

    pub(in crate::milp) fn temporal_log(&self, vars: &Vars, l: usize) -> Lin {
        let s = self.space.level_slots(l).temporal;
        let mut e = Lin::default();
        for d in 0..self.nd {
            e.add(&self.lf(vars, d, s), 1.0);
        }
        e
    }

    pub(in crate::milp) fn spatial_log_dims(
        &self,
        vars: &Vars,
        l: usize,
        dims: &dyn Fn(usize) -> bool,
    ) -> Lin {
        let mut e = Lin::default();
        for k in [SlotKind::SpatialX, SlotKind::SpatialY] {
            if let Some(s) = self.slot_of(l, k) {
                for d in (0..self.nd).filter(|&d| dims(d)) {
                    e.add(&self.lf(vars, d, s), 1.0);
                }
            }
        }
        e
    }

    /// log instances used of level l
    pub(in crate::milp) fn inst_log(&self, vars: &Vars, l: usize) -> Lin {
        let mut e = Lin::default();
        for l2 in l + 1..self.nl {
            e.add(&self.spatial_log_dims(vars, l2, &|_| true), 1.0);
        }
        e
    }

    pub(in crate::milp) fn cum(&self, c: &[u64], l: usize) -> u64 {
        cumulative(self.space, c, l)
    }

    /// The factors of a product over (dim, its slots) parts, as the parts of a product
    /// one-hot: per one-hot (a whole dim's, or a sliced dim's slot group's), each choice's
    /// column (None: the only choice) and its product over the part's slots.
    pub(in crate::milp) fn part_values(
        &self,
        vars: &Vars,
        parts: &[(usize, Vec<usize>)],
    ) -> Vec<Vec<(Option<usize>, u64)>> {
        let mut out: Vec<Vec<(Option<usize>, u64)>> = vec![];
        for (d, sl) in parts {
            match &vars.x[*d] {
                DimCols::Whole(x) => out.push(
                    self.choices[*d]
                        .iter()
                        .zip(x)
                        .map(|(c, &col)| (col, sl.iter().map(|&s| c[s]).product()))
                        .collect(),
                ),
                DimCols::Sliced(groups) => {
                    for grp in groups
                        .iter()
                        .filter(|g| g.slots.iter().any(|s| sl.contains(s)))
                    {
                        out.push(
                            grp.values
                                .iter()
                                .map(|(col, v)| {
                                    let q = grp
                                        .slots
                                        .iter()
                                        .zip(v)
                                        .filter(|(s, _)| sl.contains(s))
                                        .map(|(_, &f)| f)
                                        .product();
                                    (*col, q)
                                })
                                .collect(),
                        )
                    }
                }
            }
        }
        out
    }

    /// Energy coefficient per counted scalar at (level l, tensor t) for an action energy.
    pub(in crate::milp) fn coef(
        &self,
        l: usize,
        t: usize,
        energy: f64,
        outer_keeper: usize,
    ) -> f64 {
        let level = &self.arch.levels[l];
        energy
            * words_per_scalar(
                self.opts,
                self.problem,
                t,
                level.word_bits,
                l < outer_keeper,
            )
            / level.block_size as f64
            / self.scale
    }

    /// Per selected dim, its product of spatial factors above level l (the parts of a product
    /// one-hot).
    pub(in crate::milp) fn spatial_above_parts(
        &self,
        l: usize,
        dims: &dyn Fn(usize) -> bool,
    ) -> Vec<(usize, Vec<usize>)> {
        let sl: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.level > l && s.kind != SlotKind::Temporal)
            .map(|(i, _)| i)
            .collect();
        (0..self.nd)
            .filter(|&d| dims(d))
            .map(|d| (d, sl.clone()))
            .collect::<Vec<_>>()
    }

    /// The move of dim d's temporal loop at level g along a rank term of coefficient `coef`
    /// (coef × the product of d's factors inside it), 0 when the loop is unit: linear in d's
    /// one-hot.
    pub(in crate::milp) fn moves(&self, vars: &Vars, d: usize, coef: u64, g: usize) -> Lin {
        let s = self.space.level_slots(g).temporal;
        self.per_dim(vars, d, &|ch| {
            if ch[s] <= 1 {
                return 0.0;
            }
            let inner: u64 = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, sl)| sl.level < g || (sl.level == g && sl.kind != SlotKind::Temporal))
                .map(|(i, _)| ch[i])
                .product();
            (coef * inner) as f64
        })
    }

    /// Whether dim d's temporal loop at level g is non-unit (None: it never is).
    pub(in crate::milp) fn temporal_nonunit(&self, vars: &Vars, d: usize, g: usize) -> Option<Lin> {
        let s = self.space.level_slots(g).temporal;
        self.can_nonunit(d, s).then(|| self.nonunit(vars, d, s))
    }

    /// log of dim d's temporal factor at level g, and its largest value.
    pub(in crate::milp) fn log_factor(&self, vars: &Vars, d: usize, g: usize) -> (Lin, f64) {
        let s = self.space.level_slots(g).temporal;
        (self.lf(vars, d, s), self.max_log(d, s))
    }
}
